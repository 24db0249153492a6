// The MCP server (/functions/v1/mcp) through the official SDK client (v2) over Streamable HTTP, at
// the current protocol revision (2026-07-28: server/discover, a per-request envelope) and at the
// 2025 ones (the initialize handshake): the advertised tools with their input and output schemas,
// each tool's structured result checked against its schema (by the client, and here against the
// shared contracts), the narrative at conversation start (fallback, then the generated narrative),
// per-user isolation, bad arguments as tool errors, and the HTTP edges (no token and its
// WWW-Authenticate challenge, the RFC 9728 metadata, wrong method, CORS, malformed JSON,
// batches). Functions use the fake Gemini.
import fs from 'node:fs';
import path from 'node:path';
import { type Client, ProtocolError } from '@modelcontextprotocol/client';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { LOG_DIR } from '../local/config.ts';
import { MCP_PROTOCOL_VERSIONS, MCP_TOOL_OUTPUTS } from '../shared/mcp.ts';
import { fakeGeminiControl } from '../local/fakes/gemini.ts';
import { callTool as call, MCP_URL, mcpClients, mcpToken, toolOk as ok } from './helpers/mcp.ts';
import { DEMO_MCP_CLIENT, oauthRefresh, oauthSignIn } from '../local/fakes/oauth.ts';
import { addMemories, marker } from './helpers/pipeline.ts';
import { API_URL, FAKE_GEMINI_URL } from '../local/config.ts';
import { authJwtMode, db, eventually, keys } from './helpers/stack.ts';
import { signToken } from './helpers/tokens.ts';
import { createUser } from './helpers/users.ts';

const METADATA_URL = `${MCP_URL}/.well-known/oauth-protected-resource`;
const sql = db(4);
const fake = fakeGeminiControl(FAKE_GEMINI_URL);
const session = mcpClients('mcp-test');
const connect = session.connect;
afterAll(async () => {
  await session.close();
  await sql.end({ timeout: 2 });
});

/** A refused call: a tool error result or an MCP error, never a crash. */
async function refused(client: Client, name: string, args: Record<string, unknown>): Promise<string> {
  try {
    const r = await call(client, name, args);
    expect(r.isError, `${name}(${JSON.stringify(args).slice(0, 80)}) is a tool error`).toBe(true);
    return (r.content[0] as { text: string }).text;
  } catch (err) {
    expect(err, `${name}(${JSON.stringify(args).slice(0, 80)}) is an MCP error, not a transport failure`).toBeInstanceOf(ProtocolError);
    return (err as Error).message;
  }
}

const memoryCount = async (userId: string) =>
  (await sql<{ n: number }[]>`select count(*)::int as n from memories where user_id = ${userId}`)[0].n;

async function userWith(memories: number, text = 'I like hiking and write Go services') {
  const user = await createUser();
  if (memories) await addMemories(sql, user.id, memories, text);
  return { user, client: await connect(user) };
}

describe('tools', () => {
  it('lists the eight tools with their input schemas and required fields', async () => {
    const { client } = await userWith(0);
    const { tools } = await client.listTools();
    const byName = new Map(tools.map((t) => [t.name, t]));
    expect([...byName.keys()].sort(), 'the tool names').toEqual(
      ['add_memories', 'ask_memory', 'deep_memory_query', 'get_memory', 'get_narrative', 'jean_memory', 'list_memories', 'search_memory']);
    const required = (name: string) => [...(byName.get(name)?.inputSchema.required ?? [])].sort();
    expect(required('jean_memory'), 'jean_memory needs the message and whether it is new').toEqual(['is_new_conversation', 'user_message']);
    expect(required('add_memories'), 'add_memories needs text').toEqual(['text']);
    expect(required('list_memories'), 'list_memories has only an optional limit').toEqual([]);
    expect(required('search_memory'), 'search_memory needs a query').toEqual(['query']);
    expect(required('ask_memory'), 'ask_memory needs a question').toEqual(['question']);
    expect(required('deep_memory_query'), 'deep_memory_query needs a query').toEqual(['search_query']);
    expect(required('get_narrative'), 'get_narrative takes nothing').toEqual([]);
    expect(required('get_memory'), 'get_memory needs the id').toEqual(['id']);
    const props = (name: string) => byName.get(name)!.inputSchema.properties as Record<string, Record<string, unknown>>;
    expect(props('list_memories').limit, 'list limit bounds are advertised').toMatchObject({ type: 'integer', minimum: 1, maximum: 100, default: 20 });
    expect(props('search_memory').limit, 'search limit bounds are advertised').toMatchObject({ type: 'integer', minimum: 1, maximum: 50 });
    expect(props('add_memories').text, 'text length bounds are advertised').toMatchObject({ type: 'string', minLength: 1, maxLength: 20000 });
    expect(props('jean_memory').is_new_conversation, 'a boolean').toMatchObject({ type: 'boolean' });
    for (const t of tools) expect(t.outputSchema?.type, `${t.name} advertises an output schema`).toBe('object');
  });

  it('add_memories stores a memory for the caller, and search_memory finds it', async () => {
    const { user, client } = await userWith(0);
    const word = `zephyr${marker().slice(8, 20)}`;
    const added = await ok<{ memory: { id: string; content: string } }>(client, 'add_memories', { text: `  I am learning the ${word} framework  ` });
    expect(added.memory.content, 'stored trimmed').toBe(`I am learning the ${word} framework`);
    const [row] = await sql`select user_id, state, content from memories where id = ${added.memory.id}`;
    expect(row?.user_id, 'stored for the token\'s user').toBe(user.id);
    expect(row?.state, 'active').toBe('active');

    const found = await ok<{ results: { id: string; rank: number }[]; count: number }>(client, 'search_memory', { query: `what about ${word}?` });
    expect(found.results.map((r) => r.id), 'search finds the new memory').toEqual([added.memory.id]);
    expect(found.results[0].rank, 'ranked').toBeGreaterThan(0);
    expect(JSON.parse(found.text).count, 'the text content is the JSON of the result').toBe(1);
  });

  it('search_memory ranks memories sharing more words first and respects the limit', async () => {
    const { client } = await userWith(0);
    for (const text of ['We paddled the kayak down the river', 'I bought a kayak last spring', 'Lunch was soup']) {
      await ok(client, 'add_memories', { text });
    }
    const r = await ok<{ results: { content: string }[] }>(client, 'search_memory', { query: 'kayak river', limit: 5 });
    expect(r.results.map((m) => m.content), 'both words first, one word next, unrelated absent').toEqual(
      ['We paddled the kayak down the river', 'I bought a kayak last spring']);
    const one = await ok<{ results: unknown[] }>(client, 'search_memory', { query: 'kayak', limit: 1 });
    expect(one.results.length, 'limit honoured').toBe(1);
    const none = await ok<{ results: unknown[] }>(client, 'search_memory', { query: 'the and of' });
    expect(none.results, 'stopwords alone match nothing').toEqual([]);
  });

  it('list_memories returns active memories newest first, bounded by limit', async () => {
    const { user, client } = await userWith(5, 'note');
    await sql`update memories set state = 'archived' where user_id = ${user.id} and content = 'note #5'`;
    const all = await ok<{ memories: { content: string; created_at: string }[]; count: number }>(client, 'list_memories', {});
    expect(all.memories.map((m) => m.content), 'active only, newest first').toEqual(['note #4', 'note #3', 'note #2', 'note #1']);
    expect(all.count, 'count').toBe(4);
    const two = await ok<{ memories: { content: string }[] }>(client, 'list_memories', { limit: 2 });
    expect(two.memories.map((m) => m.content), 'the two newest').toEqual(['note #4', 'note #3']);
  });

  it('ask_memory answers with the model, and falls back to quoting memories when the model fails or hangs', async () => {
    const m = marker();
    const { client } = await userWith(0);
    await ok(client, 'add_memories', { text: `My cat ${m} loves sardines` });
    await ok(client, 'add_memories', { text: 'I work on payment systems' });

    await fake.scenario(m, [{ kind: 'ok', text: 'Their cat loves sardines.' }, { kind: 'error', status: 503 }, { kind: 'hang' }]);
    const answered = await ok<{ answer: string; source: string; model: string | null; memories_used: number }>(client, 'ask_memory', { question: `What does ${m} like?` });
    expect(answered, 'the model\'s answer').toMatchObject({ answer: 'Their cat loves sardines.', source: 'model', model: 'gemini-fake-model' });
    expect(answered.memories_used, 'relevant and recent memories went into the prompt').toBe(2);
    expect(answered.text, 'text content is the answer').toBe('Their cat loves sardines.');

    const failed = await ok<{ answer: string; source: string; fallback_reason: string }>(client, 'ask_memory', { question: `What does ${m} like?` });
    expect(failed.source, 'extractive after a 503').toBe('extractive');
    expect(failed.fallback_reason, 'why').toBe('provider_unavailable');
    expect(failed.answer, 'quotes the relevant memory first, under a lead sentence').toMatch(new RegExp(`^What the user's memories say.*\\n- \\[\\d{4}-\\d\\d-\\d\\d\\] My cat ${m} loves sardines`));

    const hung = await ok<{ source: string; fallback_reason: string }>(client, 'ask_memory', { question: `What does ${m} like?` });
    expect(hung, 'a hanging model times out into the extract').toMatchObject({ source: 'extractive', fallback_reason: 'timeout' });
    expect((await fake.calls(m)).length, 'one model call per question').toBe(3);
  });

  it('deep_memory_query synthesises over relevant and recent memories within the prompt cap', async () => {
    const m = marker();
    const { user, client } = await userWith(0);
    await addMemories(sql, user.id, 70, `Trip journal ${m} ${'about mountains and rivers '.repeat(40)}`);
    await fake.scenario(m, [{ kind: 'ok', text: 'A long synthesis.' }]);
    const r = await ok<{ answer: string; source: string; memories_used: number }>(client, 'deep_memory_query', { search_query: `${m} mountains` });
    expect(r, 'the model\'s synthesis').toMatchObject({ answer: 'A long synthesis.', source: 'model' });
    expect(r.memories_used, 'at most 60 memories, fewer when the character cap is reached').toBeLessThanOrEqual(60);
    expect(r.memories_used, 'but many of them').toBeGreaterThan(10);
    const [c] = await fake.calls(m);
    expect(c.promptChars, 'the prompt stays within the cap (40000 chars of memories plus instructions)').toBeLessThan(45_000);
  });

  it('jean_memory falls back for a new user and queues a job, then serves the generated narrative', async () => {
    const { user, client } = await userWith(6, 'I maintain a Rust compiler plugin');
    const first = await ok<{ source: string; context: string; job: { id: number; status: string } | null; narrative: unknown }>(
      client, 'jean_memory', { user_message: 'Help me with my compiler plugin', is_new_conversation: true });
    expect(first.source, 'no narrative yet: fallback').toBe('fallback');
    expect(first.context, 'built from the memories').toContain('Rust compiler plugin');
    expect(first.text, 'the text content is the context').toBe(first.context);
    expect(['queued', 'running', 'succeeded'], 'a job was enqueued').toContain(first.job?.status);
    expect(first.narrative, 'no narrative metadata').toBeNull();
    const [j] = await sql`select reason from narrative_jobs where id = ${first.job!.id} and user_id = ${user.id}`;
    expect(j?.reason, 'a cache_miss job for this user').toBe('cache_miss');

    const served = await eventually('jean_memory to serve the narrative', async () => {
      const r = await ok<{ source: string; context: string; narrative: { version: number; stale: boolean } }>(
        client, 'jean_memory', { user_message: 'hello', is_new_conversation: true });
      return r.source === 'narrative' ? r : null;
    });
    expect(served.narrative, 'version and freshness').toMatchObject({ version: 1, stale: false });
    expect(served.context, 'the narrative itself').toMatch(/## Who they are/);

    await ok(client, 'add_memories', { text: 'I also started learning Zig' });
    const [n] = await sql`select new_memories_since from user_narratives where user_id = ${user.id}`;
    expect(n?.new_memories_since, 'the memory-change trigger counted the new memory').toBe(1);

    const ongoing = await ok<{ source: string; context: string }>(client, 'jean_memory', { user_message: 'the compiler plugin again', is_new_conversation: false });
    expect(ongoing.source, 'not a new conversation: relevant memories').toBe('fallback');
    expect(ongoing.context, 'related memories').toContain('Rust compiler plugin');
  });

  it('get_narrative and narrative://me report the status, then the narrative', async () => {
    const few = await userWith(2);
    const none = await ok<{ status: string; narrative: string | null }>(few.client, 'get_narrative');
    expect(none, 'too few memories').toMatchObject({ status: 'ineligible', narrative: null });

    const { client } = await userWith(6);
    const pending = await ok<{ status: string }>(client, 'get_narrative');
    expect(['queued', 'running', 'ready'], 'queued by the read').toContain(pending.status);
    const ready = await eventually('the narrative', async () => {
      const r = await ok<{ status: string; narrative: string; version: number; generated_at: string; stale: boolean; model: string }>(client, 'get_narrative');
      return r.status === 'ready' ? r : null;
    });
    expect(ready, 'served with its metadata').toMatchObject({ version: 1, stale: false, model: 'gemini-fake-model' });
    expect(Date.parse(ready.generated_at), 'ISO timestamp').not.toBeNaN();
    expect(ready.text, 'text content is the narrative').toBe(ready.narrative);

    const { resources } = await client.listResources();
    expect(resources.map((r) => r.uri), 'the narrative resource is listed').toContain('narrative://me');
    const res = await client.readResource({ uri: 'narrative://me' });
    expect(res.contents[0], 'markdown').toMatchObject({ uri: 'narrative://me', mimeType: 'text/markdown', text: ready.narrative });
    const other = await few.client.readResource({ uri: 'narrative://me' });
    expect((other.contents[0] as { text: string }).text, 'says why there is none').toMatch(/not have enough memories/);
  });
});

describe.each(MCP_PROTOCOL_VERSIONS)('the official client at %s', (version) => {
  it('connects, lists every tool with its output schema, and every tool\'s structuredContent matches it', async () => {
    const m = marker();
    const user = await createUser();
    await addMemories(sql, user.id, 6, `I sail ${m} boats on weekends`);
    const client = await connect(user, version);
    expect(client.getNegotiatedProtocolVersion(), 'the revision the client and server agreed').toBe(version);
    expect(client.getServerVersion()?.name, 'the server').toBe('narrative-cache');
    if (version === '2026-07-28') {
      expect(client.getProtocolEra(), 'negotiated through server/discover').toBe('modern');
      expect(client.getDiscoverResult()?.supportedVersions, 'discover names the current revision').toContain('2026-07-28');
    } else {
      expect(client.getProtocolEra(), 'the initialize handshake').toBe('legacy');
    }

    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort(), 'every tool, in every revision').toEqual(Object.keys(MCP_TOOL_OUTPUTS).sort());
    for (const t of tools) {
      const contract = MCP_TOOL_OUTPUTS[t.name as keyof typeof MCP_TOOL_OUTPUTS];
      const advertised = t.outputSchema as { type?: string; properties?: Record<string, unknown>; required?: string[] } | undefined;
      expect(advertised?.type, `${t.name} declares an object output schema`).toBe('object');
      expect(Object.keys(advertised?.properties ?? {}).sort(), `${t.name}: the shared contract's fields`).toEqual(Object.keys(contract.shape).sort());
      expect([...(advertised?.required ?? [])].sort(), `${t.name}: all of them required`).toEqual(Object.keys(contract.shape).sort());
    }

    // The client checks each structuredContent against the advertised schema (a mismatch throws);
    // here it is checked again against the shared zod contract.
    await fake.scenario(m, [{ kind: 'ok', text: 'They sail on weekends.' }]);
    const calls: [keyof typeof MCP_TOOL_OUTPUTS, Record<string, unknown>][] = [
      ['add_memories', { text: `I also repair ${m} sails` }],
      ['list_memories', { limit: 3 }],
      ['search_memory', { query: `${m} sails` }],
      ['ask_memory', { question: `When does ${m} sail?` }],
      ['deep_memory_query', { search_query: `${m} hobbies` }],
      ['jean_memory', { user_message: 'hello', is_new_conversation: true }],
      ['get_narrative', {}],
    ];
    for (const [name, args] of calls) {
      const r = await call(client, name, args);
      const text = (r.content[0] as { type: string; text?: string } | undefined);
      expect(r.isError, `${name} succeeds (${text?.text?.slice(0, 200)})`).toBeFalsy();
      expect(text?.type, `${name} also answers as text, for clients without structured output`).toBe('text');
      const parsed = MCP_TOOL_OUTPUTS[name].safeParse(r.structuredContent);
      expect(parsed.success, `${name}: ${parsed.success ? '' : z.prettifyError(parsed.error)}`).toBe(true);
    }
    const found = MCP_TOOL_OUTPUTS.search_memory.parse((await call(client, 'search_memory', { query: `${m} sails` })).structuredContent);
    expect(found.results[0]?.content, 'the added memory is found').toBe(`I also repair ${m} sails`);
  });
});

describe('isolation', () => {
  it('a token only ever sees its own user\'s memories and narrative, whatever the arguments say', async () => {
    const word = `quokka${marker().slice(8, 20)}`;
    const b = await userWith(6, `Secret plan ${word}`);
    const a = await userWith(1, 'I like tea');
    await eventually('B\'s narrative', async () => (await ok<{ status: string }>(b.client, 'get_narrative')).status === 'ready');

    const search = await ok<{ results: unknown[] }>(a.client, 'search_memory', { query: word });
    expect(search.results, 'A cannot find B\'s memories').toEqual([]);
    const list = await ok<{ memories: { content: string }[] }>(a.client, 'list_memories', { limit: 100 });
    expect(list.memories.map((m) => m.content), 'A lists only A\'s memories').toEqual(['I like tea #1']);
    const narrative = await ok<{ status: string; narrative: string | null }>(a.client, 'get_narrative');
    expect(narrative, 'A gets no narrative of B').toMatchObject({ status: 'ineligible', narrative: null });
    const ask = await ok<{ answer: string }>(a.client, 'ask_memory', { question: `What is the ${word} plan?` });
    expect(ask.answer, 'A\'s answers never quote B').not.toContain(word);

    const sneaky = await call(a.client, 'add_memories', { text: 'mine', user_id: b.user.id });
    const id = (sneaky.structuredContent as { memory?: { id: string } } | undefined)?.memory?.id;
    if (id) {
      const [row] = await sql`select user_id from memories where id = ${id}`;
      expect(row?.user_id, 'an extra user_id argument changes nothing').toBe(a.user.id);
    } else {
      expect(sneaky.isError, 'or the extra argument is refused').toBe(true);
    }
    expect(await memoryCount(b.user.id), 'B\'s memories untouched').toBe(6);
  });
});

describe('bad input', () => {
  it('wrong types, out-of-range limits and empty text are tool errors, and the server keeps answering', async () => {
    const { user, client } = await userWith(0);
    const cases: [string, Record<string, unknown>][] = [
      ['list_memories', { limit: 0 }],
      ['list_memories', { limit: 1000 }],
      ['list_memories', { limit: '5' }],
      ['list_memories', { limit: 2.5 }],
      ['search_memory', { query: 'x', limit: 0 }],
      ['search_memory', { query: 'x', limit: 51 }],
      ['search_memory', {}],
      ['add_memories', { text: '' }],
      ['add_memories', { text: '   ' }],
      ['add_memories', { text: 'x'.repeat(20_001) }],
      ['add_memories', { text: 42 }],
      ['jean_memory', { user_message: 'hi', is_new_conversation: 'yes' }],
      ['jean_memory', { user_message: 'x'.repeat(8_001), is_new_conversation: true }],
      ['ask_memory', { question: '' }],
      ['deep_memory_query', { search_query: null }],
      ['no_such_tool', {}],
    ];
    for (const [name, args] of cases) {
      const message = await refused(client, name, args);
      expect(message.length, `${name} says what is wrong`).toBeGreaterThan(0);
    }
    // NUL never reaches a tool: the whole POST is an HTTP 400 (tests/request-limits.test.ts).
    const nul = await client.callTool({ name: 'add_memories', arguments: { text: 'nul \u0000 byte' } }).then(() => null, (e: unknown) => e);
    expect(String(nul), 'add_memories with NUL is refused at HTTP 400, before the JSON-RPC layer').toMatch(/NUL characters/);
    expect(await memoryCount(user.id), 'nothing was stored').toBe(0);
    const after = await ok<{ count: number }>(client, 'list_memories', {});
    expect(after.count, 'still answering').toBe(0);
  });

  it('logs one line per tool call with its outcome, never the memory text', async () => {
    const { user, client } = await userWith(0);
    const word = `wombat${marker().slice(8, 20)}`;
    await ok(client, 'add_memories', { text: `Remember ${word}` });
    await refused(client, 'list_memories', { limit: 0 });
    const lines = await eventually('the tool-call log lines', async () => {
      const mine = fs.readFileSync(path.join(LOG_DIR, 'runtime.log'), 'utf8').split('\n')
        .filter((l) => l.includes('"mcp_call"') && l.includes(user.id)).map((l) => JSON.parse(l));
      return mine.length >= 2 ? mine : null;
    });
    expect(lines.map((l) => [l.tool, l.outcome]), 'one line per call').toEqual([['add_memories', 'ok'], ['list_memories', 'tool_error']]);
    expect(lines[1].error_code, 'the refusal\'s reason').toBe('invalid_arguments');
    expect(typeof lines[0].duration_ms, 'timed').toBe('number');
    expect(fs.readFileSync(path.join(LOG_DIR, 'runtime.log'), 'utf8'), 'memory text is never logged').not.toContain(word);
  });
});

describe('HTTP', () => {
  const initialize = JSON.stringify({
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'fetch', version: '1' } },
  });
  const mcpHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

  it('401 without a token, and for a token that is not a user\'s', async () => {
    const none = await fetch(MCP_URL, { method: 'POST', headers: mcpHeaders, body: initialize });
    expect(none.status, 'no token').toBe(401);
    const anon = await fetch(MCP_URL, { method: 'POST', headers: { ...mcpHeaders, authorization: `Bearer ${keys().anonKey}` }, body: initialize });
    expect(anon.status, 'the anon key is not a user').toBe(401);
    expect((await anon.json()).error?.code, 'the error shape').toBe('user_token_required');
    const forged = await fetch(MCP_URL, { method: 'POST', headers: { ...mcpHeaders, authorization: 'Bearer not.a.jwt' }, body: initialize });
    expect(forged.status, 'a token that does not verify').toBe(401);

    // The MCP authorization spec: the 401 names the protected-resource metadata (RFC 9728 §5.1).
    const challenge = `Bearer resource_metadata="${METADATA_URL}"`;
    expect(none.headers.get('www-authenticate'), 'no token: the challenge, without an error (RFC 6750 §3)').toBe(challenge);
    for (const [what, res] of [['anon', anon], ['forged', forged]] as const) {
      expect(res.headers.get('www-authenticate'), `${what}: the challenge with invalid_token`).toMatch(
        new RegExp(`^${challenge.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}, error="invalid_token"`));
    }
    expect(none.headers.get('access-control-expose-headers'), 'browsers may read the challenge').toMatch(/www-authenticate/);
  });

  it('serves the RFC 9728 protected-resource metadata without a token, naming Supabase Auth', async () => {
    const challenge = (await fetch(MCP_URL, { method: 'POST', headers: mcpHeaders, body: initialize })).headers.get('www-authenticate') ?? '';
    const advertised = /resource_metadata="([^"]+)"/.exec(challenge)?.[1];
    expect(advertised, 'the 401 points at the metadata').toBe(METADATA_URL);
    const res = await fetch(advertised!);
    expect(res.status, 'readable without a token (verify_jwt is off for mcp)').toBe(200);
    expect(res.headers.get('content-type'), 'JSON').toMatch(/application\/json/);
    expect(res.headers.get('access-control-allow-origin'), 'readable by browser clients').toBe('*');
    const doc = await res.json();
    expect(doc, 'the resource is the MCP URL; Supabase Auth is its authorization server').toMatchObject({
      resource: MCP_URL,
      authorization_servers: [`${API_URL}/auth/v1`],
      bearer_methods_supported: ['header'],
    });
    expect(typeof doc.resource_name, 'a name for consent screens').toBe('string');
    const post = await fetch(advertised!, { method: 'POST' });
    expect(post.status, 'the metadata is GET only').toBe(405);
    const elsewhere = await fetch(`${MCP_URL}/no-such-route`);
    expect(elsewhere.status, 'other paths under the function are 404').toBe(404);
  });

  it('refuses JSON-RPC batches with a JSON-RPC error, at every revision, and runs none of them', async () => {
    const user = await createUser();
    const auth = { authorization: `Bearer ${await mcpToken(user)}` };
    const add = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'add_memories', arguments: { text: `batched ${id}` } } });
    for (const batch of [[JSON.parse(initialize), add(2)], [add(1), add(2)], []]) {
      const res = await fetch(MCP_URL, { method: 'POST', headers: { ...mcpHeaders, ...auth }, body: JSON.stringify(batch) });
      expect(res.status, `a batch of ${batch.length} is a 400`).toBe(400);
      const body = await res.json();
      expect(body, 'a JSON-RPC error response').toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32600 } });
      expect(body.error.message, 'says why').toMatch(/batch/i);
    }
    const modern = await fetch(MCP_URL, {
      method: 'POST',
      headers: { ...mcpHeaders, ...auth, 'mcp-protocol-version': '2026-07-28' },
      body: JSON.stringify([{ ...add(1), params: { ...add(1).params, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } } }]),
    });
    expect(modern.status, 'a 2026-07-28 batch too').toBe(400);
    expect(await memoryCount(user.id), 'nothing in any batch ran').toBe(0);
  });

  it('refuses a batch of 100 deep_memory_query calls with no provider call, while one call reaches it', async () => {
    const m = marker();
    const { user, client } = await userWith(0);
    await ok(client, 'add_memories', { text: `My boat ${m} is blue` });
    const deep = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'deep_memory_query', arguments: { search_query: `${m} boat` } } });
    const res = await fetch(MCP_URL, {
      method: 'POST', headers: { ...mcpHeaders, authorization: `Bearer ${await mcpToken(user)}` },
      body: JSON.stringify(Array.from({ length: 100 }, (_, i) => deep(i + 1))),
    });
    expect(res.status, 'the batch is a 400').toBe(400);
    expect((await res.json()).error.code, 'JSON-RPC invalid request').toBe(-32600);
    expect((await fake.calls(m)).length, 'no provider call for any of the 100').toBe(0);
    await fake.scenario(m, [{ kind: 'ok', text: 'A blue boat.' }]);
    const one = await ok<{ source: string }>(client, 'deep_memory_query', { search_query: `${m} boat` });
    expect(one.source, 'control: one call alone reaches the model').toBe('model');
    expect((await fake.calls(m)).length, 'exactly one provider call').toBe(1);
  });

  it('caps one user\'s concurrent provider calls (mcp_llm_calls_per_user, 2): a third answers from the memories', async () => {
    const m = marker();
    const { client } = await userWith(0);
    await ok(client, 'add_memories', { text: `My kite ${m} is red` });
    await fake.scenario(m, [{ kind: 'ok', text: 'A red kite.' }, { kind: 'ok', text: 'A red kite.' }]);
    await fake.hold(m);
    const asks = [1, 2, 3].map(() => ok<{ source: string; fallback_reason: string | null }>(client, 'deep_memory_query', { search_query: `${m} kite` }));
    await fake.waitForCalls(m, 2);
    const first = await Promise.race(asks);
    expect(first, 'the call over the cap answers at once, from the memories').toMatchObject({ source: 'extractive', fallback_reason: 'concurrency_limited' });
    await fake.release(m);
    const all = await Promise.all(asks);
    expect(all.filter((a) => a.source === 'model').length, 'the two within the cap reach the model').toBe(2);
    expect((await fake.calls(m)).length, 'two provider calls, never three').toBe(2);
    const after = await ok<{ source: string; fallback_reason: string | null }>(client, 'deep_memory_query', { search_query: `${m} kite` });
    expect(after.fallback_reason === 'concurrency_limited', 'slots are released when calls end').toBe(false);
  });

  it('answers initialize as JSON, GET and DELETE with 405, preflights with the MCP headers, bad JSON with 400', async () => {
    const user = await createUser();
    const auth = { authorization: `Bearer ${await mcpToken(user)}` };
    const init = await fetch(MCP_URL, { method: 'POST', headers: { ...mcpHeaders, ...auth }, body: initialize });
    expect(init.status, 'initialize').toBe(200);
    expect(init.headers.get('content-type'), 'a JSON response (no SSE stream)').toMatch(/application\/json/);
    expect((await init.json()).result?.serverInfo?.name, 'the server').toBe('narrative-cache');
    expect(init.headers.get('access-control-allow-origin'), 'CORS on responses').toBe('*');

    for (const method of ['GET', 'DELETE']) {
      const res = await fetch(MCP_URL, { method, headers: { ...auth, accept: 'text/event-stream' } });
      expect(res.status, `${method}: stateless, no stream or session`).toBe(405);
      expect((await res.json()).error?.code, `${method}: the error shape`).toBe('method_not_allowed');
    }

    const pre = await fetch(MCP_URL, {
      method: 'OPTIONS',
      headers: { origin: 'https://example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, mcp-protocol-version' },
    });
    expect(pre.status, 'preflight').toBeLessThan(300);
    expect(pre.headers.get('access-control-allow-headers'), 'MCP headers allowed').toMatch(/mcp-protocol-version/);

    const bad = await fetch(MCP_URL, { method: 'POST', headers: { ...mcpHeaders, ...auth }, body: '{not json' });
    expect(bad.status, 'malformed JSON is a 4xx').toBe(400);
    const notRpc = await fetch(MCP_URL, { method: 'POST', headers: { ...mcpHeaders, ...auth }, body: '{"hello":1}' });
    expect(notRpc.status, 'not JSON-RPC is a 4xx').toBe(400);
  });
});

describe('tokens issued for this resource (MCP authorization, RFC 8707 audience)', () => {
  const initialize = JSON.stringify({
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'fetch', version: '1' } },
  });
  const post = (token: string) => fetch(MCP_URL, {
    method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` },
    body: initialize,
  });
  const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
  const headerOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString());
  const challenge = `Bearer resource_metadata="${METADATA_URL}", error="invalid_token", error_description="The access token was not issued for this resource`;

  async function refusedAsNotForUs(res: Response, what: string) {
    expect(res.status, `${what}: 401`).toBe(401);
    expect(res.headers.get('www-authenticate'), `${what}: the MCP challenge says the token is not for this resource`).toMatch(
      new RegExp(`^${challenge.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    expect((await res.json()).error?.code, `${what}: the error shape`).toBe('invalid_token');
  }

  it('a session token (password sign-in, no client_id) is refused with the challenge; the other functions still take it', async () => {
    const user = await createUser();
    expect(claimsOf(user.accessToken).client_id, 'a session token names no OAuth client').toBeUndefined();
    await refusedAsNotForUs(await post(user.accessToken), 'a session token');
    const narrative = await fetch(`${API_URL}/functions/v1/narrative`, { headers: { authorization: `Bearer ${user.accessToken}` } });
    expect(narrative.status, 'GET narrative still accepts the session token').toBe(204);
    await narrative.body?.cancel();
  });

  it('the allowed client\'s OAuth token works, signed as the mode signs, and so does its refreshed token', async () => {
    const user = await createUser();
    const tokens = await oauthSignIn(user.accessToken, keys().anonKey);
    const mode = authJwtMode();
    expect(headerOf(tokens.access_token).alg, 'signed as the mode signs user tokens').toBe(mode === 'es256' ? 'ES256' : 'HS256');
    expect(claimsOf(tokens.access_token), 'Supabase Auth\'s OAuth claims').toMatchObject({
      sub: user.id, role: 'authenticated', aud: 'authenticated', client_id: DEMO_MCP_CLIENT.id, scope: 'email',
      iss: `${API_URL}/auth/v1`, amr: [{ method: 'oauth_provider/authorization_code' }],
    });
    const ok = await post(tokens.access_token);
    expect(ok.status, 'the allowed client\'s token is accepted').toBe(200);
    expect((await ok.json()).result?.serverInfo?.name, 'and served').toBe('narrative-cache');

    const refreshed = await oauthRefresh(tokens.refresh_token);
    expect(claimsOf(refreshed.access_token).client_id, 'a refreshed token keeps the client').toBe(DEMO_MCP_CLIENT.id);
    const again = await post(refreshed.access_token);
    expect(again.status, 'the refreshed token is accepted').toBe(200);
    await again.body?.cancel();
    // The session belongs to the client: supabase-js's refresh (/token) may not rotate it.
    const plain = await fetch(`${API_URL}/auth/v1/token?grant_type=refresh_token`, {
      method: 'POST', headers: { apikey: keys().anonKey, 'content-type': 'application/json' },
      body: JSON.stringify({ refresh_token: refreshed.refresh_token }),
    });
    expect(plain.status, 'no client authentication for an OAuth session: 400').toBe(400);
    expect((await plain.json()).error, 'invalid_client').toBe('invalid_client');
  });

  it('a token of an OAuth client that is not allowed is refused', async () => {
    const user = await createUser();
    const registered = await fetch(`${API_URL}/auth/v1/admin/oauth/clients`, {
      method: 'POST', headers: { apikey: keys().secretKey, authorization: `Bearer ${keys().serviceRoleKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'another app', redirect_uris: ['https://app.example.com/callback'], token_endpoint_auth_method: 'none' }),
    });
    expect(registered.status, 'an admin registers another client').toBe(201);
    const other = await registered.json() as { client_id: string; redirect_uris: string[] };
    const tokens = await oauthSignIn(user.accessToken, keys().anonKey, { client: { id: other.client_id, redirectUri: other.redirect_uris[0] } });
    expect(claimsOf(tokens.access_token).client_id, 'a real OAuth token, of the other client').toBe(other.client_id);
    await refusedAsNotForUs(await post(tokens.access_token), 'another client\'s token');
  });

  it('a token whose audience names the MCP URL (a Custom Access Token Hook\'s) works without an allowed client_id', async () => {
    const user = await createUser();
    const claims = { sub: user.id, email: user.email, session_id: crypto.randomUUID() };
    const bound = await post(await signToken(claims, { aud: ['authenticated', MCP_URL]}));
    expect(bound.status, 'aud [authenticated, MCP URL] is accepted').toBe(200);
    await bound.body?.cancel();
    await refusedAsNotForUs(await post(await signToken(claims, { aud: ['authenticated', `${MCP_URL}/other`]})),
      'an audience naming another resource');
  });
});
