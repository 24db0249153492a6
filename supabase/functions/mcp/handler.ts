// MCP over Streamable HTTP for the signed-in user (their access token as Bearer). Stateless, as
// suits an edge function: a fresh server and transport per POST, JSON responses, no sessions —
// so there is no SSE stream to GET and no session to DELETE (405, as the transport spec allows).
// The tools and the narrative resource are in _shared/mcp/.
// @ts-types: Deno cannot type this SDK's `.js` subpaths (its `./*` export maps types to `*.js.d.ts`,
// modelcontextprotocol/typescript-sdk#2701), so each import names its declarations.
// @ts-types="@modelcontextprotocol/sdk/server/webStandardStreamableHttp"
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { requireUser } from '../_shared/auth.ts';
import { env } from '../_shared/env.ts';
import { allowMethods, corsHeaders, route } from '../_shared/http.ts';
import { CallLog } from '../_shared/mcp/log.ts';
import { createMcpServer } from '../_shared/mcp/server.ts';

// Browser clients send the MCP headers too, so the preflight must allow them.
const mcpCors = {
  ...corsHeaders,
  'access-control-allow-methods': 'POST, OPTIONS',
  'access-control-allow-headers': `${corsHeaders['access-control-allow-headers']}, accept, mcp-protocol-version, mcp-session-id, last-event-id`,
};

const routed = route('mcp', async (req, ctx) => {
  allowMethods(req, 'POST');
  const claims = await requireUser(req);
  ctx.user_id = claims.sub;
  const calls = new CallLog(claims.sub);
  const server = createMcpServer(claims, calls);
  const transport = new WebStandardStreamableHTTPServerTransport({
    sessionIdGenerator: undefined,
    enableJsonResponse: true,
    maxRequestBodySize: env.maxBodyBytes,
  });
  calls.observe(transport);
  await server.connect(transport);
  try {
    return await transport.handleRequest(req);
  } finally {
    await server.close();
  }
});

export async function handler(req: Request): Promise<Response> {
  const res = await routed(req);
  const headers = new Headers(res.headers);
  for (const [k, v] of Object.entries(mcpCors)) headers.set(k, v);
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}
