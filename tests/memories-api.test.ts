// The memories function through the real stack, each test with its own users: the caller's
// active memories in pages that cover each exactly once, a prefix full-text search, opening a
// claim's citations (own memories only: another user's id reads as missing), and a delete that
// strips the claims citing the memory from the narrative and its history in the same
// transaction. Bad input is a 400 with the one error shape and changes nothing.
import crypto from 'node:crypto';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { MEMORY_PAGE_DEFAULT, MEMORY_QUERY_MAX_CHARS, memoriesPage, memoryDeleted, memoryResponse } from '../shared/memories.ts';
import { NARRATIVE_SECTIONS, narrativeHistoryResponse, narrativeResponse } from '../shared/narrative.ts';
import { fakeGeminiControl } from '../local/fakes/gemini.ts';
import { addMemories, enqueue, fastForward, marker, memoriesOf, waitForJob } from './helpers/pipeline.ts';
import { API_URL, FAKE_GEMINI_URL } from '../local/config.ts';
import { db, eventually } from './helpers/stack.ts';
import { createUser, type TestUser } from './helpers/users.ts';

const sql = db(6);
const fake = fakeGeminiControl(FAKE_GEMINI_URL);
afterAll(async () => {
  await sql.end({ timeout: 2 });
});

const [WHO, WORK, HOW] = NARRATIVE_SECTIONS;
const url = (path: string) => `${API_URL}/functions/v1/${path}`;
const call = (user: TestUser | null, path: string, init: RequestInit = {}) => fetch(url(path), {
  ...init, headers: { ...(user ? { authorization: `Bearer ${user.accessToken}` } : {}), ...(init.headers as Record<string, string> | undefined) },
});

/** The body of a 4xx: the one error shape, with its code. */
async function errorOf(res: Response): Promise<{ code: string; message: string }> {
  const body = await res.json() as { error?: { code?: unknown; message?: unknown } };
  expect(typeof body.error?.code, `error.code of a ${res.status}`).toBe('string');
  expect(typeof body.error?.message, `error.message of a ${res.status}`).toBe('string');
  return body.error as { code: string; message: string };
}


const activeIds = async (user: TestUser) => (await sql<{ id: string }[]>`
  select id from memories where user_id = ${user.id} and state = 'active' order by created_at desc, id desc`).map((r) => r.id);

/** Every page of GET memories (with `query`), checked against the contract; ids in order. */
async function allPages(user: TestUser, query: string, limit: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const res = await call(user, `memories?limit=${limit}${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    expect(res.status, `page ${pages + 1}`).toBe(200);
    const page = memoriesPage.parse(await res.json());
    expect(page.memories.length, `page ${pages + 1} holds at most ${limit}`).toBeLessThanOrEqual(limit);
    ids.push(...page.memories.map((m) => m.id));
    cursor = page.next_cursor;
    pages++;
    expect(pages, 'paging ends').toBeLessThan(50);
  } while (cursor);
  return { ids, pages };
}

/** A user whose generations answer `answers` in turn ([section, text, refs], each resting on what
 *  it cites: validation drops any other); `m1` is the newest memory, by default "alpha memory",
 *  then "bravo memory", ... Version 1 is stored before this returns. */
async function narratedUser(answers: [string, string, string[]][][], contents?: string[]) {
  const m = marker();
  await fake.scenario(m, answers.map((claims) => ({
    kind: 'ok' as const, text: JSON.stringify({ claims: claims.map(([section, text, memory_refs]) => ({ section, text, memory_refs })) }),
  })));
  const user = await createUser();
  const ids = await memoriesOf(sql, user.id, (contents ?? ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot'].map((w) => `${w} memory`)).map((c) => `${c} ${m}`));
  const { job_id } = await enqueue(sql, user.id, 'backfill');
  const j = await waitForJob(sql, job_id, (x) => x.status === 'succeeded' || x.status === 'failed', 'finished', 20_000);
  expect(j.status, `version 1 stored (${j.last_error ?? ''})`).toBe('succeeded');
  return { user, ids, marker: m };
}

describe('GET memories: a page of the caller\'s active memories', () => {
  it('newest first, pages covering every active memory exactly once; never another user\'s, an archived or a deleted one', async () => {
    const a = await createUser();
    const b = await createUser();
    await addMemories(sql, a.id, 9, 'mine');
    await addMemories(sql, b.id, 4, 'theirs');
    await sql`update memories set state = 'archived' where user_id = ${a.id} and content = 'mine #2'`;
    await sql`update memories set state = 'deleted' where user_id = ${a.id} and content = 'mine #5'`;
    const expected = await activeIds(a);
    expect(expected, 'fixture: 7 active').toHaveLength(7);

    const first = memoriesPage.parse(await (await call(a, 'memories')).json());
    expect(first.memories.map((m) => m.id), `without a limit: one page of up to ${MEMORY_PAGE_DEFAULT}`).toEqual(expected);
    expect(first.next_cursor, 'the only page').toBeNull();
    expect(first.memories.every((m) => m.state === 'active' && m.content.startsWith('mine')), 'only a\'s active memories').toBe(true);
    expect(new Date(first.memories[0].created_at).toISOString(), 'ISO dates').toBe(first.memories[0].created_at);

    const paged = await allPages(a, '', 2);
    expect(paged.ids, 'two per page: every active memory once, in order').toEqual(expected);
    expect(paged.pages, 'four pages').toBe(4);
  });

  it('the cursor is exact: memories created in the same microsecond are neither skipped nor repeated', async () => {
    const a = await createUser();
    await sql`insert into memories (user_id, content, created_at)
      select ${a.id}::uuid, 'same time #' || g, '2026-01-02T03:04:05.123456Z'::timestamptz from generate_series(1, 7) g`;
    await addMemories(sql, a.id, 2, 'later');
    const paged = await allPages(a, '', 3);
    expect(paged.ids, 'ties broken by id, each once').toEqual(await activeIds(a));
  });

  it('searches with every word as a prefix through the full-text index, the caller\'s active memories only', async () => {
    const a = await createUser();
    const b = await createUser();
    const [hikingAlps, , boots, deleted] = await memoriesOf(sql, a.id, [
      'I went hiking in the Alps last summer', 'Sailing on Lake Geneva every weekend', 'My hiking boots are worn out',
      'A deleted hiking memory', 'Nothing to see here']);
    await memoriesOf(sql, b.id, ['b also likes hiking in the Alps']);
    await sql`update memories set state = 'deleted' where id = ${deleted}`;
    const search = async (q: string) => memoriesPage.parse(await (await call(a, `memories?q=${encodeURIComponent(q)}`)).json()).memories.map((m) => m.id);

    expect(await search('hik'), 'a prefix finds both, newest first; not b\'s, not the deleted one').toEqual([hikingAlps, boots]);
    expect(await search('HIKING alps'), 'every word must match, any case').toEqual([hikingAlps]);
    expect(await search('  Gene  sail '), 'word order and spacing do not matter').toHaveLength(1);
    expect(await search('zebra'), 'no match').toEqual([]);
    expect(await search('the'), 'only stop words: nothing to search for, nothing matches').toEqual([]);
    expect(await search(`it's "quoted" \\ back\\slash & | ! :* ()`), 'tsquery syntax in the text is just text').toEqual([]);
    expect(await search('   '), 'blank: no search, the whole list').toHaveLength(4);
    const paged = await allPages(a, '&q=hik', 1);
    expect(paged.ids, 'search results page too').toEqual([hikingAlps, boots]);
  });

  it('refuses bad parameters with 400 invalid_request, and other methods with 405', async () => {
    const a = await createUser();
    const bad = [
      'limit=0', 'limit=101', 'limit=abc', 'limit=1.5', 'limit=', 'x=1', 'cursor=abc', `cursor=123_${'z'.repeat(36)}`,
      `q=${'a'.repeat(MEMORY_QUERY_MAX_CHARS + 1)}`, 'q=a%00b', 'ids=nope', `ids=${crypto.randomUUID()},`, 'ids=',
      `ids=${crypto.randomUUID()}&q=x`, `ids=${crypto.randomUUID()}&limit=2`, 'limit=1&limit=2', 'q=a&q=b',
    ];
    for (const query of bad) {
      const res = await call(a, `memories?${query}`);
      expect(res.status, `${query.slice(0, 60)}: 400`).toBe(400);
      expect((await errorOf(res)).code, `${query.slice(0, 60)}: invalid_request`).toBe('invalid_request');
    }
    for (const [method, path] of [['POST', 'memories'], ['DELETE', 'memories'], ['PATCH', `memories/${crypto.randomUUID()}`], ['PUT', 'memories']]) {
      const res = await call(a, path, { method });
      expect(res.status, `${method} ${path}: 405`).toBe(405);
      expect((await errorOf(res)).code, `${method} ${path}`).toBe('method_not_allowed');
    }
    const nested = await call(a, `memories/${crypto.randomUUID()}/x`);
    expect(nested.status, 'a deeper path is 404').toBe(404);
    await nested.body?.cancel();
    const anonymous = await call(null, 'memories');
    expect(anonymous.status, 'no token: 401').toBe(401);
    expect((await errorOf(anonymous)).code, 'missing_token').toBe('missing_token');
  });
});

describe('opening memories by id (a claim\'s sources)', () => {
  it('GET memories/<id>: own memories, active or archived; another user\'s, a missing or a deleted one is the same 404', async () => {
    const a = await createUser();
    const b = await createUser();
    const [mine, archived, gone] = await memoriesOf(sql, a.id, ['open me', 'archived one', 'deleted one']);
    const [theirs] = await memoriesOf(sql, b.id, ['b private text']);
    await sql`update memories set state = 'archived' where id = ${archived}`;
    await sql`update memories set state = 'deleted' where id = ${gone}`;

    const res = await call(a, `memories/${mine}`);
    expect(res.status, 'own memory').toBe(200);
    const { memory } = memoryResponse.parse(await res.json());
    const [row] = await sql<{ created_at: Date; updated_at: Date }[]>`select created_at, updated_at from memories where id = ${mine}`;
    expect(memory, 'its text, state and dates').toEqual({
      id: mine, content: 'open me', state: 'active', created_at: row.created_at.toISOString(), updated_at: row.updated_at.toISOString(),
    });
    expect(memoryResponse.parse(await (await call(a, `memories/${archived.toUpperCase()}`)).json()).memory.state,
      'archived opens (an upper-case id too)').toBe('archived');

    const bodies: string[] = [];
    for (const [what, id] of [['another user\'s', theirs], ['a deleted', gone], ['a missing', crypto.randomUUID()]]) {
      const r = await call(a, `memories/${id}`);
      expect(r.status, `${what} memory: 404`).toBe(404);
      const e = await errorOf(r);
      expect(e.code, `${what}: not_found`).toBe('not_found');
      bodies.push(e.message.replace(id, '<id>'));
    }
    expect(new Set(bodies).size, 'another user\'s id reads exactly like a missing one').toBe(1);
    expect(bodies.join(), 'nothing of b leaks').not.toContain('b private');

    for (const bad of ['not-a-uuid', '123', `${mine}x`, 'null']) {
      const r = await call(a, `memories/${bad}`);
      expect(r.status, `${bad}: 400, never 500`).toBe(400);
      expect((await errorOf(r)).code, `${bad}: invalid_id`).toBe('invalid_id');
    }
  });

  it('GET memories?ids=: the caller\'s memories among them, in the order asked; the rest simply absent', async () => {
    const a = await createUser();
    const b = await createUser();
    const [one, two, gone] = await memoriesOf(sql, a.id, ['one', 'two', 'gone']);
    const [theirs] = await memoriesOf(sql, b.id, ['b private text']);
    await sql`update memories set state = 'deleted' where id = ${gone}`;
    const res = await call(a, `memories?ids=${[two, theirs, gone, crypto.randomUUID(), one, two].join(',')}`);
    expect(res.status, 'ok').toBe(200);
    const page = memoriesPage.parse(await res.json());
    expect(page.memories.map((m) => m.content), 'own and not deleted, in the order asked, once each').toEqual(['two', 'one']);
    expect(page.next_cursor, 'no paging').toBeNull();
  });
});

describe('DELETE memories/<id>', () => {
  it('deletes the memory and, in that same transaction, the claims citing it leave the narrative and its history', async () => {
    const { user, ids, marker: m } = await narratedUser([[
      [WHO, 'SAILS-CLAIM: sails every weekend (m1).', ['m1']], [WORK, 'Builds caches, sails (m2, m1).', ['m2', 'm1']],
      [HOW, 'Keep answers short (m3).', ['m3']], [WHO, 'Lives in Lyon (m4).', ['m4']],
    ], [[WHO, 'Sails every weekend again.', ['m1']], [WORK, 'Builds caches again.', ['m2']], [HOW, 'Keep answers short again.', ['m3']]]],
    ['I sail every weekend', 'I build caches', 'Keep answers short', 'I live in Lyon', 'filler one', 'filler two']);
    // The regeneration the delete queues waits at the provider until the end of the test.
    await fake.hold(m);
    onTestFinished(async () => { await fake.release(m); });
    const before = narrativeResponse.parse(await (await call(user, 'narrative')).json());
    expect(before.claims.filter((c) => c.memory_ids.includes(ids[0])), 'fixture: two claims cite m1').toHaveLength(2);

    // Hold the narrative row: the delete's trigger must wait for it, so the request stays in its
    // transaction; meanwhile nothing of it is visible, then everything is at once.
    const locker = await sql.reserve();
    try {
      await locker`begin`;
      await locker`select 1 from user_narratives where user_id = ${user.id} for update`;
      const [{ pid }] = await locker<{ pid: number }[]>`select pg_backend_pid() as pid`;
      const pending = call(user, `memories/${ids[0]}`, { method: 'DELETE' });
      await eventually('the delete waits on the narrative row', async () => (await sql<{ n: number }[]>`
        select count(*)::int as n from pg_stat_activity where ${pid}::int = any (pg_blocking_pids(pid))`)[0].n > 0);
      const [mid] = await sql<{ state: string }[]>`select state from memories where id = ${ids[0]}`;
      expect(mid.state, 'while the trigger waits, the delete is not visible').toBe('active');
      await locker`commit`;
      const res = await pending;
      expect(res.status, 'deleted').toBe(200);
      const body = memoryDeleted.parse(await res.json());
      expect([body.id, body.claims_removed, body.narrative_removed], 'what it did').toEqual([ids[0], 2, false]);
      const [row] = await sql<{ state: string; deleted_at: Date }[]>`select state, deleted_at from memories where id = ${ids[0]}`;
      expect([row.state, row.deleted_at.toISOString()], 'soft-deleted, deleted_at as answered').toEqual(['deleted', body.deleted_at]);
    } finally {
      locker.release();
    }

    const after = narrativeResponse.parse(await (await call(user, 'narrative')).json());
    expect(after.claims.map((c) => c.text).sort(), 'the two claims citing it are gone, the others kept').toEqual(['Keep answers short (m3).', 'Lives in Lyon (m4).']);
    expect(after.partial, 'served as partial').toBe(true);
    expect(after.narrative, 'its text is gone from the rendered narrative').not.toContain('SAILS-CLAIM');
    const [stored] = await sql<{ cited: string[] }[]>`select cited_memory_ids::text[] as cited from user_narratives where user_id = ${user.id}`;
    expect(stored.cited, 'the row cites it no more').not.toContain(ids[0]);
    const history = narrativeHistoryResponse.parse(await (await call(user, 'narrative/history')).json());
    const v1 = await (await call(user, `narrative/history/${history.versions[0].version}`)).json();
    expect(JSON.stringify(v1), 'nor does the history').not.toMatch(new RegExp(`SAILS-CLAIM|${ids[0]}`));
    const [job] = await sql<{ n: number }[]>`select count(*)::int as n from narrative_jobs
      where user_id = ${user.id} and reason = 'memories_changed' and status in ('queued', 'running')`;
    expect(job.n, 'a regeneration is queued').toBe(1);

    const opened = await call(user, `memories/${ids[0]}`);
    expect(opened.status, 'a deleted memory is gone').toBe(404);
    await opened.body?.cancel();
    const again = await call(user, `memories/${ids[0]}`, { method: 'DELETE' });
    expect(again.status, 'deleting it again: 404').toBe(404);
    expect((await errorOf(again)).code, 'not_found').toBe('not_found');
    const list = memoriesPage.parse(await (await call(user, 'memories')).json());
    expect(list.memories.map((m) => m.id), 'nor listed').not.toContain(ids[0]);
  });

  it('another user\'s memory is a 404 and stays as it was; a bad id is a 400; a body is refused', async () => {
    const a = await createUser();
    const b = await createUser();
    const [theirs] = await memoriesOf(sql, b.id, ['b keeps this']);
    const res = await call(a, `memories/${theirs}`, { method: 'DELETE' });
    expect(res.status, 'another user\'s memory: 404').toBe(404);
    expect((await errorOf(res)).code, 'not_found').toBe('not_found');
    const [row] = await sql<{ state: string }[]>`select state from memories where id = ${theirs}`;
    expect(row.state, 'untouched').toBe('active');

    const bad = await call(a, 'memories/not-a-uuid', { method: 'DELETE' });
    expect(bad.status, 'bad id: 400').toBe(400);
    expect((await errorOf(bad)).code, 'invalid_id').toBe('invalid_id');

    const [mine] = await memoriesOf(sql, a.id, ['a keeps this']);
    const withBody = await call(a, `memories/${mine}`, { method: 'DELETE', headers: { 'content-type': 'application/json' }, body: '{"force":true}' });
    expect(withBody.status, 'a DELETE takes no parameters: 400').toBe(400);
    await withBody.body?.cancel();
    const huge = await call(a, `memories/${mine}`, { method: 'DELETE', headers: { 'content-type': 'application/json' }, body: ' '.repeat(70 * 1024) });
    expect(huge.status, 'a body past the cap: 413').toBe(413);
    expect((await errorOf(huge)).code, 'payload_too_large').toBe('payload_too_large');
    const [still] = await sql<{ state: string }[]>`select state from memories where id = ${mine}`;
    expect(still.state, 'refused requests changed nothing').toBe('active');
    const empty = await call(a, `memories/${mine}`, { method: 'DELETE', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(empty.status, 'an empty object is no parameters: deleted').toBe(200);
    await empty.body?.cancel();
  });

  it('deleting below eligibility removes the narrative and its history, and says so', async () => {
    const { user, ids } = await narratedUser([[[WHO, 'Alpha (m1).', ['m1']], [WORK, 'Bravo (m2).', ['m2']], [HOW, 'Charlie (m3).', ['m3']]]]);
    const [{ min }] = await sql<{ min: number }[]>`select min_memories as min from private.settings`;
    expect(ids.length, 'fixture: one above the threshold').toBe(min + 1);
    const first = memoryDeleted.parse(await (await call(user, `memories/${ids[5]}`, { method: 'DELETE' })).json());
    expect([first.claims_removed, first.narrative_removed], 'an uncited memory: nothing removed').toEqual([0, false]);
    const second = memoryDeleted.parse(await (await call(user, `memories/${ids[0]}`, { method: 'DELETE' })).json());
    expect(second.narrative_removed, 'below the threshold: the narrative went').toBe(true);
    expect(await sql`select 1 from user_narratives where user_id = ${user.id}`, 'no narrative row').toHaveLength(0);
    expect(await sql`select 1 from user_narrative_versions where user_id = ${user.id}`, 'no history').toHaveLength(0);
    const res = await call(user, 'narrative');
    expect([res.status, res.headers.get('narrative-status')], 'GET narrative: ineligible').toEqual([204, 'ineligible']);
  });
});

describe('a fresh regeneration after a delete', () => {
  it('the next version is written without the deleted memory', async () => {
    const { user, ids, marker: m } = await narratedUser([
      [[WHO, 'Alpha (m1).', ['m1']], [WORK, 'Bravo (m2).', ['m2']], [HOW, 'Charlie (m3).', ['m3']]],
      // Written from the prompt after the delete: m1 is bravo now.
      [[WHO, 'Bravo v2.', ['m1']], [WORK, 'Charlie v2.', ['m2']], [HOW, 'Delta v2.', ['m3']]],
    ]);
    expect((await call(user, `memories/${ids[0]}`, { method: 'DELETE' })).status, 'deleted').toBe(200);
    const [job] = await sql<{ id: number }[]>`select id::int from narrative_jobs where user_id = ${user.id} and status = 'queued'`;
    await fastForward(sql, job.id);
    const done = await waitForJob(sql, job.id, (j) => j.status === 'succeeded' || j.status === 'failed', 'finished', 20_000);
    expect(done.status, `regenerated (${done.last_error ?? ''})`).toBe('succeeded');
    const n = narrativeResponse.parse(await (await call(user, 'narrative')).json());
    expect([n.version, n.partial], 'version 2, whole again').toEqual([2, false]);
    expect(n.claims.flatMap((c) => c.memory_ids), 'cites only remaining memories').not.toContain(ids[0]);
    expect((await fake.calls(m)).length, 'two generations').toBe(2);
  });
});
