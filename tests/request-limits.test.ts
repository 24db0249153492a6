// Request bounds through the real stack: every function caps its body by the bytes it actually
// reads (a chunked upload without content-length included: the local gateway buffers up to
// 20 MiB, so a 100 KiB chunked body reaches the function, and the function's own 413 answers),
// and NUL or unpaired surrogates are a 400 wherever text enters, never a 500. Memory limits as
// a supabase-js caller meets them through MCP add_memories (the Data API's errcode is pgTAP's).
import http from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { callTool, mcpClients, mcpToken } from './helpers/mcp.ts';
import { API_URL } from '../local/config.ts';
import { actAsUser, db, keys } from './helpers/stack.ts';
import { createUser, type TestUser } from './helpers/users.ts';

const sql = db();
const mcp = mcpClients('request-limits');
afterAll(async () => {
  await mcp.close();
  await sql.end();
});

const fn = (name: string) => `${API_URL}/functions/v1/${name}`;

/** Auth headers each function accepts. */
async function authFor(name: string, user: TestUser): Promise<Record<string, string>> {
  if (name === 'generate-narrative') return { authorization: `Bearer ${keys().narrativeServiceSecret}` };
  if (name === 'backfill') return { apikey: keys().secretKey };
  if (name === 'mcp') return { authorization: `Bearer ${await mcpToken(user)}` };
  return { authorization: `Bearer ${user.accessToken}` };
}

const MCP_HEADERS = { accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };
const FUNCTIONS = ['narrative', 'orchestrate', 'backfill', 'generate-narrative', 'mcp'] as const;

/** POST with Transfer-Encoding: chunked and no content-length (node:http), chunk by chunk. */
function postChunked(url: string, headers: Record<string, string>, chunks: number, chunk: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { ...headers, 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    for (let i = 0; i < chunks; i++) req.write(chunk);
    req.end();
  });
}

describe('request bodies', () => {
  it('answers 413 payload_too_large from the function for a chunked body past the cap, on every function', async () => {
    const user = await createUser();
    for (const name of FUNCTIONS) {
      const headers = { ...(await authFor(name, user)), ...(name === 'mcp' ? MCP_HEADERS : {}) };
      const res = await postChunked(fn(name), headers, 100, ' '.repeat(1024));
      expect(res.status, `${name}: 100 KiB chunked is 413`).toBe(413);
      const body = JSON.parse(res.body);
      if (name === 'mcp') expect(body.error.code, 'mcp: a JSON-RPC error').toBe(-32600);
      else expect(body.error.code, `${name}: the function's own error shape, not the gateway's`).toBe('payload_too_large');
    }
  });

  it('answers 413 for a declared content-length past the cap', async () => {
    const user = await createUser();
    for (const name of FUNCTIONS) {
      const res = await fetch(fn(name), {
        method: 'POST', headers: { ...(await authFor(name, user)), ...(name === 'mcp' ? MCP_HEADERS : {}), 'content-type': 'application/json' },
        body: ' '.repeat(70 * 1024),
      });
      expect(res.status, `${name}: 70 KiB is 413`).toBe(413);
      await res.body?.cancel();
    }
  });

  it('answers 400 (never 500) for NUL, an unpaired surrogate or invalid UTF-8, and changes nothing', async () => {
    const user = await createUser();
    const bodies: Record<(typeof FUNCTIONS)[number], (bad: string) => string> = {
      narrative: (bad) => `{"x":"${bad}"}`,
      orchestrate: (bad) => `{"user_message":"hi ${bad}","is_new_conversation":false}`,
      backfill: (bad) => `{"dry_run":true,"${bad}":1}`,
      'generate-narrative': (bad) => `{"job_id":1,"x":"${bad}"}`,
      mcp: (bad) => JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'add_memories', arguments: { text: 'x' } } })
        .replace('"x"', `"${bad}"`),
    };
    for (const name of FUNCTIONS) {
      for (const [what, bad] of [['NUL', '\\u0000'], ['lone surrogate', '\\ud800']] as const) {
        const res = await fetch(fn(name), {
          method: 'POST', headers: { ...(await authFor(name, user)), ...(name === 'mcp' ? MCP_HEADERS : {}), 'content-type': 'application/json' },
          body: bodies[name](bad),
        });
        expect(res.status, `${name}: ${what} is 400`).toBe(400);
        const body = await res.json();
        if (name !== 'mcp') expect(body.error.code, `${name}: ${what} says invalid_text`).toBe('invalid_text');
        else expect(body.error.message, `mcp: ${what} says why`).toMatch(/NUL|surrogate/);
      }
      const res = await fetch(fn(name), {
        method: 'POST', headers: { ...(await authFor(name, user)), ...(name === 'mcp' ? MCP_HEADERS : {}), 'content-type': 'application/json' },
        body: new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x7d]),
      });
      expect(res.status, `${name}: invalid UTF-8 is 400`).toBe(400);
      await res.body?.cancel();
    }
    const [{ n }] = await sql`select count(*)::int as n from memories where user_id = ${user.id}`;
    expect(n, 'no memory was stored by any refused request').toBe(0);
  });

  it('answers 400 json_too_deep (never 500) for JSON nested 5,000 deep (10 KB), on every JSON route, and changes nothing', async () => {
    // On main the recursive clean-text check overflowed the stack on this: 500 everywhere.
    const user = await createUser();
    const [{ id: memoryId }] = await sql<{ id: string }[]>`
      insert into memories (user_id, content) values (${user.id}, 'I keep bees') returning id::text`;
    const deep = '['.repeat(5_000) + ']'.repeat(5_000);
    const routes: [string, string, string, string][] = [
      ['narrative', 'narrative', 'POST', deep],
      ['narrative', 'narrative/notes', 'POST', `{"content":"call me Sam","pinned":${deep}}`],
      ['orchestrate', 'orchestrate', 'POST', `{"user_message":"hi","is_new_conversation":false,"x":${deep}}`],
      ['backfill', 'backfill', 'POST', `{"dry_run":${deep}}`],
      ['generate-narrative', 'generate-narrative', 'POST', `{"job_id":${deep}}`],
      ['memories', `memories/${memoryId}`, 'DELETE', deep],
      ['mcp', 'mcp', 'POST', `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add_memories","arguments":{"text":"x","more":${deep}}}}`],
    ];
    for (const [name, path, method, body] of routes) {
      const res = await fetch(fn(path), {
        method, headers: { ...(await authFor(name, user)), ...(name === 'mcp' ? MCP_HEADERS : {}), 'content-type': 'application/json' }, body,
      });
      expect(res.status, `${method} ${path}: 400`).toBe(400);
      const answer = await res.json();
      if (name === 'mcp') {
        expect(answer, 'mcp: a JSON-RPC invalid request').toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32600 } });
        expect(answer.error.message, 'mcp: says why').toMatch(/nest at most 64 levels/);
      } else {
        expect(answer.error, `${method} ${path}: a clear code and message`).toEqual({
          code: 'json_too_deep', message: 'JSON arrays and objects may nest at most 64 levels deep',
        });
      }
    }
    const [row] = await sql`select state, (select count(*)::int from memories where user_id = ${user.id}) as memories,
      (select count(*)::int from narrative_notes where user_id = ${user.id}) as notes,
      (select count(*)::int from narrative_jobs where user_id = ${user.id}) as jobs
      from memories where id = ${memoryId}`;
    expect(row, 'the memory is still there, and nothing was added or queued').toEqual({ state: 'active', memories: 1, notes: 0, jobs: 0 });
  });
});

describe('memory limits', () => {
  it('refuses a memory past max_memories_per_user with a clear tool error, as the database says it', async () => {
    const user = await createUser();
    const [{ max }] = await sql`select max_memories_per_user as max from private.settings`;
    await sql`insert into memories (user_id, content) select ${user.id}, 'm' || g from generate_series(1, ${max}) g`;
    const client = await mcp.connect(user);
    const r = await callTool(client, 'add_memories', { text: 'one more' });
    expect(r.isError, 'a tool error').toBe(true);
    expect((r.content[0] as { text: string }).text, 'says the limit').toBe(`memory limit reached: at most ${max} memories per user`);
    expect(r._meta?.error_code, 'with its code').toBe('limit_exceeded');
    const [{ n }] = await sql`select count(*)::int as n from memories where user_id = ${user.id}`;
    expect(n, 'nothing added').toBe(max);
  });

  it('refuses metadata over memory_metadata_max_bytes as the user (Data API role and claims), 23514', async () => {
    const user = await createUser();
    const [{ max }] = await sql`select memory_metadata_max_bytes as max from private.settings`;
    const err = await sql.begin(async (tx) => {
      await actAsUser(tx, user.id);
      await tx`insert into memories (user_id, content, metadata) values (${user.id}, 'x', ${sql.json({ blob: 'y'.repeat(max) })})`;
    }).then(() => null, (e: { code?: string; message?: string }) => e);
    expect(err?.code, 'the errcode PostgREST forwards (HTTP 400)').toBe('23514');
    expect(err?.message, 'a clear message').toMatch(new RegExp(`^memory metadata is \\d+ bytes; at most ${max} are allowed$`));
  });
});
