// Official MCP client (v2) sessions against /functions/v1/mcp, for the suites that talk MCP.
import { type CallToolResult, Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { expect } from 'vitest';
import { mcpToken as oauthToken } from '../../local/fakes/oauth.ts';
import type { MCP_PROTOCOL_VERSIONS } from '../../shared/mcp.ts';
import { API_URL } from '../../local/config.ts';
import { keys } from './stack.ts';
import type { TestUser } from './users.ts';

export const MCP_URL = `${API_URL}/functions/v1/mcp`;

/** The user's access token for MCP: the demo MCP client's (OAuth, allowed by tests/functions.env),
 *  since the mcp function refuses a plain session token. */
export const mcpToken = (user: TestUser) => oauthToken(user, keys().anonKey);
export type McpVersion = (typeof MCP_PROTOCOL_VERSIONS)[number];

/** Connects clients and closes every one of them at the end (call close() in afterAll). */
export function mcpClients(name: string) {
  const clients: Client[] = [];
  return {
    /** A client at `version`: 2026-07-28 pinned through server/discover, a 2025 one by initialize. */
    async connect(user: TestUser, version: McpVersion = '2026-07-28'): Promise<Client> {
      const client = version === '2026-07-28'
        ? new Client({ name, version: '1.0.0' }, { versionNegotiation: { mode: { pin: version } } })
        : new Client({ name, version: '1.0.0' }, { supportedProtocolVersions: [version] });
      await client.connect(new StreamableHTTPClientTransport(new URL(MCP_URL), {
        requestInit: { headers: { Authorization: `Bearer ${await mcpToken(user)}` } },
      }));
      clients.push(client);
      return client;
    },
    close: () => Promise.all(clients.map((c) => c.close())),
  };
}

export async function callTool(client: Client, name: string, args: Record<string, unknown> = {}): Promise<CallToolResult> {
  return await client.callTool({ name, arguments: args }) as CallToolResult;
}

/** The structured result of a call that must succeed, with its text content. */
export async function toolOk<T = Record<string, unknown>>(client: Client, name: string, args: Record<string, unknown> = {}): Promise<T & { text: string }> {
  const r = await callTool(client, name, args);
  const text = (r.content[0] as { text?: string } | undefined)?.text ?? '';
  expect(r.isError, `${name} succeeds (${text.slice(0, 300)})`).toBeFalsy();
  expect(r.structuredContent, `${name} returns structured content`).toBeTruthy();
  return { ...(r.structuredContent as T), text };
}
