// Grounded narratives (claims and citations, docs/pipeline.md) through the real stack: every stored claim cites
// active memories of its user that were in the prompt (the fake Gemini answers structured output,
// citing the refs it was given); a bogus citation is dropped; too few valid claims is
// invalid_output and retried; deleting, archiving or editing a cited memory removes its claims
// from everything the user can read, inside the changing transaction and after commit (GET
// narrative, orchestrate, MCP get_narrative and jean_memory, a table read under RLS); a user
// left below eligibility keeps no narrative. The local writer's claims go through the same
// validation (acceptClaims) in the unit part.
import type { Client } from '@modelcontextprotocol/client';
import { afterAll, describe, expect, it } from 'vitest';
import { type NarrativeClaim, NARRATIVE_SECTIONS, narrativeResponse, orchestrateResponse, renderClaims } from '../shared/narrative.ts';
import { narrativeStateOutput } from '../shared/mcp.ts';
import { CLAIM_SUPPORT_MIN_DEFAULT } from '../shared/support.ts';
import { acceptClaims } from '../supabase/functions/_shared/narrative/claims.ts';
import { LocalProvider } from '../supabase/functions/_shared/providers/local.ts';
import { ProviderError } from '../supabase/functions/_shared/providers/types.ts';
import { fakeGeminiControl } from '../local/fakes/gemini.ts';
import { mcpClients, toolOk } from './helpers/mcp.ts';
import { addMemories, fastForward, marker, narrative, waitForJob } from './helpers/pipeline.ts';
import { API_URL, FAKE_GEMINI_URL } from '../local/config.ts';
import { actAsUser, db, eventually } from './helpers/stack.ts';
import { createUser, type TestUser } from './helpers/users.ts';

const sql = db(4);
const fake = fakeGeminiControl(FAKE_GEMINI_URL);
const mcpSession = mcpClients('grounded-test');
afterAll(async () => {
  await mcpSession.close();
  await sql.end({ timeout: 2 });
});

const fn = (name: string) => `${API_URL}/functions/v1/${name}`;
const [WHO, WORK, HOW, THEMES] = NARRATIVE_SECTIONS;

/** Six memories (m1 the newest) and a scripted answer: claim k says FACT<k><tag> and cites mk;
 *  one more claim (JOINT<tag>) cites m1 and m2. Each also says what they do ("sails"), so it
 *  rests on what it cites (validation drops a claim that does not). */
async function groundedUser(memories = 6, steps?: Parameters<typeof fake.scenario>[1]) {
  const m = marker();
  const tag = m.slice(8, 20);
  const claims = [
    ...Array.from({ length: memories }, (_, i) => ({
      section: NARRATIVE_SECTIONS[i % 4], text: `FACT${i + 1}X${tag} sails (memory ${i + 1}).`, memory_refs: [`m${i + 1}`],
    })),
    { section: THEMES, text: `JOINT${tag} sails (memories 1 and 2).`, memory_refs: ['m1', 'm2'] },
  ];
  await fake.scenario(m, steps ?? [{ kind: 'ok', text: JSON.stringify({ claims }) }]);
  const user = await createUser();
  await addMemories(sql, user.id, memories, `I sail ${m}`);
  const ids = (await sql<{ id: string }[]>`select id from memories where user_id = ${user.id} order by created_at desc`).map((r) => r.id);
  return { user, tag, ids, marker: m };
}

async function getNarrative(user: TestUser) {
  const res = await fetch(fn('narrative'), { headers: { authorization: `Bearer ${user.accessToken}` } });
  return { status: res.status, header: res.headers.get('narrative-status'), body: res.status === 200 ? await res.json() : null };
}

async function generated(user: TestUser) {
  await getNarrative(user);
  return await eventually('the narrative', async () => {
    const r = await getNarrative(user);
    return r.status === 200 ? r.body : null;
  }, 20_000);
}

async function orchestrate(user: TestUser) {
  const res = await fetch(fn('orchestrate'), {
    method: 'POST',
    headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ user_message: 'hello', is_new_conversation: true }),
  });
  expect(res.status, 'orchestrate answers').toBe(200);
  return orchestrateResponse.parse(await res.json());
}

const mcp = (user: TestUser): Promise<Client> => mcpSession.connect(user);

/** A successful tool call: its text and its structured content. */
async function tool(client: Client, name: string, args: Record<string, unknown> = {}) {
  const { text, ...data } = await toolOk(client, name, args);
  return { text, data: data as Record<string, unknown> };
}

/** `select * from user_narratives` as the user, under RLS (role authenticated and the user's JWT
 *  claims, as PostgREST runs a supabase-js read; the local stack has no PostgREST). */
async function tableRead(user: TestUser) {
  return await sql.begin(async (tx) => {
    await actAsUser(tx, user.id);
    return await tx`select * from user_narratives`;
  });
}

const activeIds = async (userId: string) =>
  new Set((await sql<{ id: string }[]>`select id from memories where user_id = ${userId} and state = 'active'`).map((r) => r.id));

describe('claims with citations', () => {
  it('stores claims whose every citation is an active memory of the user, served on every path', async () => {
    const { user, ids, tag } = await groundedUser();
    const other = await groundedUser();
    const body = narrativeResponse.parse(await generated(user));
    await generated(other.user);
    expect(body.claims.length, 'the seven scripted claims').toBe(7);
    expect(body.partial, 'whole').toBe(false);
    const mine = await activeIds(user.id);
    for (const c of body.claims) {
      for (const id of c.memory_ids) expect(mine.has(id), `${id} is an active memory of the user`).toBe(true);
    }
    expect(body.claims[0], 'refs mapped back to memory ids (m1 = newest)').toEqual({ section: WHO, text: `FACT1X${tag} sails (memory 1).`, memory_ids: [ids[0]] });
    expect(body.claims[6].memory_ids, 'a claim can cite several memories').toEqual([ids[0], ids[1]]);
    expect(body.narrative, 'the content is the claims rendered').toBe(renderClaims(body.claims));

    const [row] = await sql`select cited_memory_ids from user_narratives where user_id = ${user.id}`;
    expect([...row.cited_memory_ids].sort(), 'the citation index holds every cited memory').toEqual([...ids].sort());
    const citing = await sql`select user_id from user_narratives where cited_memory_ids @> array[${ids[2]}::uuid]`;
    expect(citing.map((r) => r.user_id), 'which narratives cite memory X: one indexed query').toEqual([user.id]);

    const o = await orchestrate(user);
    expect(o.source, 'fast path').toBe('narrative');
    expect(o.claims, 'orchestrate adds the claims').toEqual(body.claims);
    expect(o.narrative?.partial, 'and partial').toBe(false);
    const client = await mcp(user);
    const g = narrativeStateOutput.parse((await tool(client, 'get_narrative')).data);
    expect(g.claims, 'MCP get_narrative: claims in structuredContent').toEqual(body.claims);
    const j = (await tool(client, 'jean_memory', { user_message: 'hi', is_new_conversation: true })).data;
    expect(j.claims, 'MCP jean_memory: claims in structuredContent').toEqual(body.claims);
  });

  it('the default fake answer quotes and cites only lines of the prompt, and a bogus ref drops its claim', async () => {
    const m = marker();
    await fake.scenario(m, [{ kind: 'ok', bogusRef: true }]);
    const user = await createUser();
    await addMemories(sql, user.id, 6, `I row ${m}`);
    const body = narrativeResponse.parse(await generated(user));
    expect(body.claims.length, 'eight claims answered, the one citing m9999 dropped').toBe(7);
    const mine = await activeIds(user.id);
    expect(body.claims.every((c) => c.memory_ids.every((id) => mine.has(id))), 'every citation valid').toBe(true);
    const lines = (await sql<{ id: string; content: string }[]>`
      select id, content from memories where user_id = ${user.id} order by created_at desc`);
    // Claim k quotes and cites line k (round again past 6); the second (m2, beside m9999) is gone.
    expect(body.claims.map((c) => [c.text, c.memory_ids]), 'each claim quotes the line it cites, the bogus one dropped')
      .toEqual([0, 2, 3, 4, 5, 0, 1].map((k) => [lines[k].content, [lines[k].id]]));
    expect((await fake.calls(m))[0]?.structured, 'Gemini was asked for structured output').toBe(true);
  });

  for (const [what, bad] of [
    ['too few valid claims', { kind: 'ok', claims: 2 }],
    ['JSON that does not parse', { kind: 'malformed', text: '{"claims": [{"section": "Who' }],
  ] as const) {
    it(`${what}: the attempt fails invalid_output, is retried, and the retry is stored`, async () => {
      const m = marker();
      await fake.scenario(m, [bad, { kind: 'ok' }]);
      const user = await createUser();
      await addMemories(sql, user.id, 6, `I swim ${m}`);
      const [{ job_id }] = await sql<{ job_id: number }[]>`select job_id::int from private.enqueue_job(${user.id}::uuid, 'manual')`;
      const retry = await waitForJob(sql, job_id, (j) => j.status === 'queued' && j.attempts === 1, 'the retry to be scheduled');
      expect(retry.last_error_code, 'classified invalid_output').toBe('invalid_output');
      expect(await narrative(sql, user.id), 'nothing stored from the bad answer').toBeUndefined();
      await fastForward(sql, job_id);
      const done = await waitForJob(sql, job_id, (j) => j.status === 'succeeded', 'the retry to succeed');
      expect(done.attempts, 'two attempts').toBe(2);
      expect((await narrative(sql, user.id))?.claims.length, 'the good answer stored').toBe(8);
    });
  }
});

describe('acceptClaims (the validation every provider goes through)', () => {
  const ids = Array.from({ length: 5 }, (_, i) => `00000000-0000-4000-8000-00000000000${i}`);
  const memories = [
    "I'm Dana, a backend engineer in Berlin", 'I work on a Rust compiler for embedded targets',
    'Prefers concise answers with code examples', 'Migrating the compiler test suite to a new CI system', 'Never use emojis in replies',
  ].map((content, i) => ({ content, created_at: new Date(Date.UTC(2024, 0, 10 - i)).toISOString(), importance: 0.5 }));
  const prompt = { memories: memories.map((m, i) => ({ ...m, id: ids[i] })) };

  it('the local writer\'s claims all cite memories of the prompt', async () => {
    const r = await new LocalProvider().generate({ memories, omitted: 0, total: 5 }, new AbortController().signal);
    const a = acceptClaims(r.text, r.finishReason, prompt, { minClaims: 3, supportMin: CLAIM_SUPPORT_MIN_DEFAULT });
    expect(a.dropped + a.droppedUnsupported, 'nothing dropped: valid refs, each resting on what it cites').toBe(0);
    expect(a.claims.length, 'several claims').toBeGreaterThanOrEqual(3);
    expect(a.claims.every((c) => c.memory_ids.every((id) => ids.includes(id))), 'every citation is a prompt memory').toBe(true);
    expect(a.content, 'rendered by the one renderer').toBe(renderClaims(a.claims));
  });

  it('drops claims citing unknown refs, a wrong section or no memory; fails under the minimum', () => {
    const text = JSON.stringify({ claims: [
      { section: WHO, text: 'Dana, backend engineer in Berlin.', memory_refs: ['m1'] },
      { section: WORK, text: 'bogus', memory_refs: ['m1', 'm6'] },
      { section: 'Secrets', text: 'wrong section', memory_refs: ['m2'] },
      { section: HOW, text: 'uncited', memory_refs: [] },
      { section: THEMES, text: 'Never uses emojis.', memory_refs: ['M5'] },
    ] });
    const a = acceptClaims(text, 'STOP', prompt, { minClaims: 2, supportMin: CLAIM_SUPPORT_MIN_DEFAULT });
    expect(a.claims, 'the two valid claims, refs mapped to ids').toEqual([
      { section: WHO, text: 'Dana, backend engineer in Berlin.', memory_ids: [ids[0]] },
      { section: THEMES, text: 'Never uses emojis.', memory_ids: [ids[4]] }] satisfies NarrativeClaim[]);
    expect(a.dropped, 'three dropped').toBe(3);
    const err = (() => { try { acceptClaims(text, 'STOP', prompt, { minClaims: 3, supportMin: CLAIM_SUPPORT_MIN_DEFAULT }); } catch (e) { return e; } })();
    expect(err, 'too few: a ProviderError').toBeInstanceOf(ProviderError);
    expect((err as ProviderError).code, 'invalid_output').toBe('invalid_output');
    expect((err as ProviderError).retryable, 'retryable').toBe(true);
  });
});

describe('deletes, archives and edits reach the narrative at once', () => {
  for (const [change, apply] of [
    ['delete', (tx: typeof sql, id: string) => tx`delete from memories where id = ${id}`],
    ['archive', (tx: typeof sql, id: string) => tx`update memories set state = 'archived' where id = ${id}`],
    ['edit', (tx: typeof sql, id: string) => tx`update memories set content = 'rewritten' where id = ${id}`],
  ] as const) {
    it(`${change}: no served text cites the memory, inside the transaction and after commit, on every path`, async () => {
      const { user, ids, tag } = await groundedUser();
      await generated(user);
      const gone = [`FACT1X${tag}`, `JOINT${tag}`];
      const kept = `FACT2X${tag}`;
      const clean = (what: string, value: unknown) => {
        const s = JSON.stringify(value);
        for (const g of gone) expect(s, `${what}: no text from the changed memory (${g})`).not.toContain(g);
        expect(s, `${what}: no citation of it`).not.toContain(ids[0]);
        expect(s, `${what}: the rest is still served`).toContain(kept);
      };

      await sql.begin(async (tx) => {
        await apply(tx as unknown as typeof sql, ids[0]);
        await actAsUser(tx, user.id);
        const rows = await tx`select * from user_narratives`;
        expect(rows.length, 'inside the transaction: the row is there').toBe(1);
        clean('table read inside the changing transaction', rows);
        expect(rows[0].partial, 'partial').toBe(true);
        const served = await tx`select narrative, claims, partial from public.narrative_for_me('cache_miss')`;
        clean('narrative_for_me inside the changing transaction', served);
      });

      const get = await getNarrative(user);
      expect(get.status, 'GET narrative: still 200').toBe(200);
      const body = narrativeResponse.parse(get.body);
      clean('GET narrative', body);
      expect(body.partial, 'GET narrative: partial').toBe(true);
      expect(body.claims.length, 'the two claims citing it removed').toBe(5);
      expect(body.narrative, 'the SQL re-render equals the TypeScript renderer').toBe(renderClaims(body.claims));
      const o = await orchestrate(user);
      expect(o.source, 'orchestrate serves the partial narrative').toBe('narrative');
      expect(o.narrative?.partial, 'orchestrate: partial').toBe(true);
      clean('orchestrate', o);
      const client = await mcp(user);
      const g = await tool(client, 'get_narrative');
      clean('MCP get_narrative', g);
      expect(g.data.partial, 'MCP get_narrative: partial').toBe(true);
      clean('MCP jean_memory', await tool(client, 'jean_memory', { user_message: 'hi', is_new_conversation: true }));
      clean('table read as the user after commit', await tableRead(user));
      const [job] = await sql`select reason from narrative_jobs where user_id = ${user.id} and status in ('queued', 'running')`;
      expect(job?.reason, 'a regeneration is queued').toBe('memories_changed');
    });
  }

  it('delete until ineligible: no narrative row remains, for anyone to read', async () => {
    const { user, ids, tag } = await groundedUser(5);
    await generated(user);
    await sql`delete from memories where id = ${ids[4]}`;
    expect((await tableRead(user)).length, 'the user reads no row').toBe(0);
    const [{ n }] = await sql`select count(*)::int as n from user_narratives where user_id = ${user.id}`;
    expect(n, 'no narrative row at all').toBe(0);
    const get = await getNarrative(user);
    expect([get.status, get.header], 'GET narrative: 204 ineligible').toEqual([204, 'ineligible']);
    const o = await orchestrate(user);
    expect(JSON.stringify(o), 'orchestrate: nothing from the narrative').not.toContain(`FACT5X${tag}`);
  });
});
