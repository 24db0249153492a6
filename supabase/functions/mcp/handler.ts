// MCP over Streamable HTTP for the signed-in user (their access token as Bearer), through the
// official v2 SDK. Stateless, as suits an edge function: a fresh server per POST, JSON responses,
// no sessions — so there is no SSE stream to GET and no session to DELETE (405).
//   - 2026-07-28 clients (`server/discover`, a `_meta` envelope on every request) are served by
//     the SDK's createMcpHandler;
//   - 2025-11-25 and 2025-06-18 clients (the `initialize` handshake) by a stateless transport
//     with JSON responses, which the SDK's own legacy fallback does not offer (it streams SSE).
// Both are built from the same factory (_shared/mcp/server.ts), so every era sees the same tools.
// One JSON-RPC message per POST: batches were removed from the protocol in 2025-06-18 and are
// refused. GET /mcp/.well-known/oauth-protected-resource is the RFC 9728 metadata naming Supabase
// Auth as the authorization server; a 401 points at it in WWW-Authenticate, as the MCP
// authorization spec asks. verify_jwt is off for this function (config.toml) so that the metadata
// and the 401 challenge are reachable; every other request is verified here (requireUser), and
// the token must have been issued for this resource (issuedForMcp).
import {
  type AuthInfo, createMcpHandler, isLegacyRequest, type OAuthProtectedResourceMetadata,
  WebStandardStreamableHTTPServerTransport,
} from '@modelcontextprotocol/server';
import { requireUser, type UserClaims } from '../_shared/auth.ts';
import { bearerToken } from '../_shared/bearer.ts';
import { env } from '../_shared/env.ts';
import { allowMethods, corsWith, HttpError, json, readJsonBody, route } from '../_shared/http.ts';
import { log } from '../_shared/log.ts';
import { takeRequest } from '../_shared/db.ts';
import { CallLog } from '../_shared/mcp/log.ts';
import { createMcpServer } from '../_shared/mcp/server.ts';

const base = env.supabaseUrl.replace(/\/+$/, '');
/** The MCP endpoint's public URL: the protected resource's identifier. */
export const MCP_URL = `${base}/functions/v1/mcp`;
/** Under the function's own path: Supabase routes only /functions/v1/mcp/* to this function. */
export const RESOURCE_METADATA_URL = `${MCP_URL}/.well-known/oauth-protected-resource`;
const METADATA_PATH = '/mcp/.well-known/oauth-protected-resource';

const resourceMetadata: OAuthProtectedResourceMetadata & { bearer_methods_supported: string[] } = {
  resource: MCP_URL,
  authorization_servers: [`${base}/auth/v1`],
  bearer_methods_supported: ['header'],
  resource_name: 'narrative-cache memory (MCP)',
};

// Browser clients send the MCP headers too, so the preflight must allow them, and may read the
// 401 challenge.
const mcpCors = corsWith({
  allowHeaders: ['accept', 'mcp-protocol-version', 'mcp-session-id', 'last-event-id'],
  exposeHeaders: ['www-authenticate', 'mcp-protocol-version'],
});

interface Caller {
  claims: UserClaims;
  calls: CallLog;
}

function callerOf(authInfo: AuthInfo | undefined): Caller {
  const caller = authInfo?.extra?.caller as Caller | undefined;
  if (!caller) throw new Error('MCP server built without a verified caller');
  return caller;
}

// 2026-07-28: the SDK's per-request entry, one instance per process. Only 2025-era traffic is
// classified legacy, and that never reaches it (`reject` is a guard, not a path).
const modern = createMcpHandler(({ authInfo }) => {
  const { claims, calls } = callerOf(authInfo);
  return createMcpServer(claims, calls);
}, {
  legacy: 'reject',
  responseMode: 'json',
  maxRequestBodySize: env.maxBodyBytes,
  onerror: (err) => log({ level: 'warn', msg: 'mcp_rejected', error: err.message }),
});

// 2025-11-25 / 2025-06-18: stateless (no session id), a JSON body instead of an SSE stream.
async function legacy(req: Request, body: unknown, authInfo: AuthInfo): Promise<Response> {
  const { claims, calls } = callerOf(authInfo);
  const server = createMcpServer(claims, calls);
  const transport = new WebStandardStreamableHTTPServerTransport({
    sessionIdGenerator: undefined,
    enableJsonResponse: true,
    maxRequestBodySize: env.maxBodyBytes,
  });
  await server.connect(transport);
  try {
    return await transport.handleRequest(req, { parsedBody: body, authInfo });
  } finally {
    await server.close();
  }
}

const rpcError = (status: number, code: number, message: string) =>
  json({ jsonrpc: '2.0', id: null, error: { code, message } }, status);

/** The POST body as JSON (read by the shared capped reader), or the JSON-RPC error to send instead. */
async function readMessage(req: Request): Promise<{ body: unknown } | { refused: Response }> {
  if (!/^application\/json\b/i.test(req.headers.get('content-type') ?? '')) {
    return { refused: rpcError(415, -32600, 'Send the JSON-RPC message as application/json') };
  }
  let body: unknown;
  try {
    body = await readJsonBody(req);
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    // Parse error for bytes that are not JSON; invalid request for the rest (too large, NUL, bad text).
    return { refused: rpcError(err.status, err.code === 'invalid_json' ? -32700 : -32600, err.message) };
  }
  if (body === undefined) return { refused: rpcError(400, -32700, 'Parse error: the body is empty') };
  if (Array.isArray(body)) {
    return {
      refused: rpcError(400, -32600, 'JSON-RPC batches are not supported (removed from MCP in 2025-06-18): send one message per POST'),
    };
  }
  return { body };
}

const allowedClients = new Set(env.mcpAllowedClientIds);

/**
 * A user token issued for this resource (MCP authorization spec; RFC 8707 audience binding): its
 * `aud` names the MCP URL (set by Auth once it supports resource indicators, or by a Custom Access
 * Token Hook), or its `client_id` is an OAuth client allowed by MCP_ALLOWED_CLIENT_IDS. A session
 * token of the dashboard (no client_id) or another client's token is not: 401, fail closed.
 */
function issuedForMcp(claims: UserClaims): void {
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (aud.includes(MCP_URL)) return;
  if (typeof claims.client_id === 'string' && allowedClients.has(claims.client_id)) return;
  throw new HttpError(401, 'invalid_token',
    'The access token was not issued for this resource: sign in through an allowed MCP OAuth client');
}

/** The signed-in user, or a 401 carrying the Bearer challenge that leads to the metadata. */
async function authorize(req: Request): Promise<UserClaims> {
  try {
    const claims = await requireUser(req);
    issuedForMcp(claims);
    return claims;
  } catch (err) {
    if (!(err instanceof HttpError) || err.status !== 401) throw err;
    // RFC 6750 §3: no error attribute when the request carried no token at all.
    const error = bearerToken(req) ? `, error="invalid_token", error_description="${err.message.replace(/["\\]/g, '')}"` : '';
    throw new HttpError(401, err.code, err.message, {
      ...err.headers,
      'www-authenticate': `Bearer resource_metadata="${RESOURCE_METADATA_URL}"${error}`,
    });
  }
}

const routed = route('mcp', async (req, ctx) => {
  const path = new URL(req.url).pathname.replace(/\/+$/, '');
  if (path === METADATA_PATH) {
    allowMethods(req, 'GET', 'HEAD');
    return json(resourceMetadata, 200, { 'cache-control': 'public, max-age=3600' });
  }
  if (path !== '/mcp') throw new HttpError(404, 'not_found', 'No such MCP route');
  allowMethods(req, 'POST');
  const claims = await authorize(req);
  ctx.user_id = claims.sub;
  const read = await readMessage(req);
  if ('refused' in read) return read.refused;
  // One request of the user's per-minute MCP budget, once the message is well-formed (429
  // rate_limited with Retry-After past it; refused messages cost no database work).
  await takeRequest(claims.sub, 'mcp');
  const calls = new CallLog(claims.sub);
  calls.started(read.body);
  const authInfo: AuthInfo = {
    token: bearerToken(req)!,
    clientId: typeof claims.client_id === 'string' ? claims.client_id : 'supabase-auth',
    scopes: [],
    expiresAt: claims.exp,
    extra: { caller: { claims, calls } satisfies Caller },
  };
  const res = await isLegacyRequest(req, read.body, { maxRequestBodySize: env.maxBodyBytes })
    ? await legacy(req, read.body, authInfo)
    : await modern.fetch(req, { parsedBody: read.body, authInfo });
  await calls.finished(res);
  return res;
});

export async function handler(req: Request): Promise<Response> {
  const res = await routed(req);
  const headers = new Headers(res.headers);
  for (const [k, v] of Object.entries(mcpCors)) headers.set(k, v);
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}
