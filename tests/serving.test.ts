// Serving through supabase-js functions.invoke and plain fetch: the narrative function (GET
// 200/204, POST 202/429), orchestrate (fast path, fallback, not-new, acting for users), and the
// bad-input and auth tables of both. Backfill, which touches every user, is in tests/isolated/.
import { SignJWT, generateKeyPair, importJWK } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { narrativeResponse, orchestrateResponse } from '../shared/narrative.ts';
import { fakeGeminiControl } from '../local/fakes/gemini.ts';
import { addMemories, marker, narrative, waitForJob } from './helpers/pipeline.ts';
import { API_URL, FAKE_GEMINI_URL } from '../local/config.ts';
import { db, eventually, keys } from './helpers/stack.ts';
import { createUser, type TestUser } from './helpers/users.ts';

const sql = db(4);
const fake = fakeGeminiControl(FAKE_GEMINI_URL);
afterAll(() => sql.end({ timeout: 2 }));

const fn = (name: string) => `${API_URL}/functions/v1/${name}`;
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

async function getNarrative(user: TestUser) {
  const res = await fetch(fn('narrative'), { headers: bearer(user.accessToken) });
  return { status: res.status, header: res.headers.get('narrative-status'), body: res.status === 200 ? await res.json() : null };
}

async function userWith(memories: number, text = 'I like hiking and write Go services') {
  const user = await createUser();
  if (memories) await addMemories(sql, user.id, memories, text);
  return user;
}

async function withNarrative(user: TestUser) {
  await getNarrative(user);
  await eventually('the narrative to be generated', async () => (await getNarrative(user)).status === 200);
}

async function snapshot(userId: string) {
  const [row] = await sql`select
    (select count(*)::int from narrative_jobs where user_id = ${userId}) as jobs,
    (select coalesce(sum(version), 0)::int from user_narratives where user_id = ${userId}) as versions,
    (select count(*)::int from memories where user_id = ${userId}) as memories`;
  return row;
}

describe('GET /narrative', () => {
  it('204 queued for an eligible user, then 200 with the narrative once generated', async () => {
    const user = await userWith(6);
    const { data, error, response } = await user.client.functions.invoke('narrative', { method: 'GET' });
    expect(error, 'a 204 is not an error').toBeNull();
    expect(response?.status, 'nothing to serve yet').toBe(204);
    expect(['queued', 'running'], 'being written').toContain(response?.headers.get('narrative-status'));
    expect(data, 'no body').toBeFalsy();
    const [j] = await sql`select reason from narrative_jobs where user_id = ${user.id}`;
    expect(j?.reason, 'a cache_miss job was queued').toBe('cache_miss');

    const ok = await eventually('200', async () => { const r = await getNarrative(user); return r.status === 200 ? r : null; });
    expect(ok.body, 'the contract shape').toMatchObject({ version: 1, stale: false, model: 'gemini-fake-model' });
    expect(ok.body.narrative, 'the narrative text').toMatch(/## Who they are/);
    expect(Date.parse(ok.body.generated_at), 'ISO timestamp').not.toBeNaN();
    expect(ok.body.age_days, 'just generated').toBeLessThan(0.01);
    const again = await getNarrative(user);
    expect(again.status, 'served from cache').toBe(200);
    const [{ n }] = await sql`select count(*)::int as n from narrative_jobs where user_id = ${user.id}`;
    expect(n, `a hit queues nothing (${JSON.stringify(await sql`select reason, status, created_at from narrative_jobs where user_id = ${user.id}`)})`).toBe(1);
  });

  it('204 ineligible with too few memories, and nothing queued', async () => {
    const user = await userWith(2);
    const r = await getNarrative(user);
    expect(r.status, 'nothing to serve').toBe(204);
    expect(r.header, 'says why').toBe('ineligible');
    expect((await snapshot(user.id)).jobs, 'no job for an ineligible user').toBe(0);
  });

  it('204 ineligible carries the database threshold and the user\'s count, exposed to browsers', async () => {
    const user = await userWith(2);
    const [{ min }] = await sql`select min_memories as min from private.settings`;
    const res = await fetch(fn('narrative'), { headers: { ...bearer(user.accessToken), origin: 'http://127.0.0.1:54323' } });
    expect(res.status, 'nothing to serve').toBe(204);
    expect(res.headers.get('narrative-min-memories'), 'private.settings.min_memories').toBe(String(min));
    expect(res.headers.get('narrative-memory-count'), 'the user\'s active memories').toBe('2');
    expect(res.headers.get('access-control-expose-headers') ?? '', 'readable cross-origin').toMatch(/narrative-min-memories.*narrative-memory-count/);
  });

  it('204 failed after a permanent failure, without queueing again during the cooldown', async () => {
    const m = marker();
    await fake.scenario(m, [{ kind: 'blocked' }]);
    const user = await userWith(6, `notes about ${m}`);
    await getNarrative(user);
    const [j] = await sql`select id::int from narrative_jobs where user_id = ${user.id}`;
    await waitForJob(sql, j.id, (x) => x.status === 'failed', 'fail');
    const r = await getNarrative(user);
    expect(r.header, 'failed is shown honestly').toBe('failed');
    expect((await snapshot(user.id)).jobs, 'no new job while cooling down').toBe(1);
  });

  it('a stale narrative is served with stale: true and a refresh is queued', async () => {
    const user = await userWith(6);
    await withNarrative(user);
    await sql`update user_narratives set generated_at = now() - interval '8 days' where user_id = ${user.id}`;
    const r = await getNarrative(user);
    expect(r.status, 'still served').toBe(200);
    expect(r.body.stale, 'marked stale').toBe(true);
    expect(r.body.age_days, 'its age').toBeGreaterThan(7);
    const jobs = await sql`select reason from narrative_jobs where user_id = ${user.id} order by id`;
    expect(jobs.map((x) => x.reason), 'a stale refresh was queued').toContain('stale');
  });

  it('after a cited memory is deleted the narrative is served partial, without the claims citing it', async () => {
    const user = await userWith(6, 'secret project codename bluebird');
    await withNarrative(user);
    const whole = await getNarrative(user);
    expect(whole.body.partial, 'whole at first').toBe(false);
    expect(whole.body.claims.length, 'with its claims').toBeGreaterThan(0);
    const cited: string = whole.body.claims[0].memory_ids[0];
    await sql`delete from memories where id = ${cited}`;
    const r = await getNarrative(user);
    expect(r.status, 'still served (partial, not a miss)').toBe(200);
    expect(r.body.partial, 'marked partial').toBe(true);
    expect(r.body.stale, 'counts as stale: a regeneration is queued').toBe(true);
    expect(r.body.claims.some((c: { memory_ids: string[] }) => c.memory_ids.includes(cited)), 'no served claim cites it').toBe(false);
    const [j] = await sql`select reason from narrative_jobs where user_id = ${user.id} and status in ('queued', 'running')`;
    expect(j?.reason, 'regeneration under way').toBe('memories_changed');
  });
});

describe('POST /narrative (manual regeneration)', () => {
  it('202 with the job, then 429 with Retry-After inside the cooldown', async () => {
    const user = await userWith(6);
    const first = await user.client.functions.invoke('narrative', { method: 'POST' });
    expect(first.error, 'accepted').toBeNull();
    expect(first.response?.status, '202').toBe(202);
    expect(first.data, 'job shape').toMatchObject({ job_id: expect.any(Number), status: expect.stringMatching(/^(queued|running)$/) });
    const [j] = await sql`select reason from narrative_jobs where id = ${first.data.job_id}`;
    expect(j.reason, 'a manual job').toBe('manual');

    const second = await fetch(fn('narrative'), { method: 'POST', headers: bearer(user.accessToken) });
    expect(second.status, 'too soon').toBe(429);
    expect(Number(second.headers.get('retry-after')), 'Retry-After in seconds').toBeGreaterThan(0);
    expect((await second.json()).error.code, 'error shape').toBe('cooldown');
  });

  it('409 for an ineligible user', async () => {
    const user = await userWith(1);
    const res = await fetch(fn('narrative'), { method: 'POST', headers: bearer(user.accessToken) });
    expect(res.status, 'not eligible').toBe(409);
    expect((await snapshot(user.id)).jobs, 'nothing queued').toBe(0);
  });
});

describe('POST /orchestrate', () => {
  const post = (headers: Record<string, string>, body: unknown) => fetch(fn('orchestrate'), {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body),
  });

  it('fast path: a new conversation with a servable narrative gets it as context', async () => {
    const user = await userWith(6);
    await withNarrative(user);
    const stored = await narrative(sql, user.id);
    const { data, error } = await user.client.functions.invoke('orchestrate', {
      body: { user_message: 'hello', is_new_conversation: true },
    });
    expect(error, 'ok').toBeNull();
    expect(data.source, 'from the cache').toBe('narrative');
    expect(data.context, 'the narrative itself').toBe(stored!.narrative_content);
    expect(data.narrative, 'its metadata').toMatchObject({ version: 1, stale: false });
    expect(data.job, 'nothing queued on a hit').toBeNull();
    expect(typeof data.timing_ms, 'timing measured').toBe('number');
  });

  it('cache hits (orchestrate and GET narrative): the contract\'s shapes, each user their own, two headers', async () => {
    const a = await createUser();
    const b = await createUser();
    const [memory] = await sql<{ id: string }[]>`insert into public.memories (user_id, content) values (${a.id}, 'I say hi') returning id`;
    const claims = [{ section: 'Who they are', text: 'They say "hi"\n\tand \\ mean it.', memory_ids: [memory.id] }];
    for (const [u, text] of [[a, 'A\'s "narrative"\n\u0001 with ünïcödé'], [b, 'B narrative']] as const) {
      await sql`insert into public.user_narratives (user_id, narrative_content, generated_at, memories_as_of, model, claims)
                values (${u.id}, ${text}, now() - interval '36 hours', now(), 'm-1', ${sql.json(claims)})`;
    }
    const stored = await narrative(sql, a.id);
    const res = await post(bearer(a.accessToken), { user_message: 'hi', is_new_conversation: true });
    expect(res.status, 'a hit').toBe(200);
    expect([...res.headers.keys()].filter((h) => h.startsWith('access-control-') || h === 'content-type').sort(),
      'the smallest header set a browser needs to read it').toEqual(['access-control-allow-origin', 'content-type']);
    const body = orchestrateResponse.strict().parse(await res.json());
    expect(body, 'A\'s narrative, as stored').toMatchObject({
      source: 'narrative', context: stored!.narrative_content, claims, job: null,
      narrative: { version: 1, generated_at: stored!.generated_at.toISOString(), stale: false, partial: false },
    });
    const got = await getNarrative(a);
    expect(narrativeResponse.strict().parse(got.body), 'GET narrative: the same row in its own shape').toEqual({
      narrative: stored!.narrative_content, version: 1, generated_at: stored!.generated_at.toISOString(), age_days: 1.5,
      stale: false, model: 'm-1', claims, partial: false,
    });
    const asB = await (await post(bearer(b.accessToken), { user_message: 'hi', is_new_conversation: true })).json();
    expect(asB.context, 'B\'s token: B\'s narrative').toBe('B narrative');
    const forB = await (await post({ apikey: keys().secretKey }, { user_id: b.id, user_message: 'hi', is_new_conversation: true })).json();
    expect(forB.context, 'a service key naming B: B\'s narrative').toBe('B narrative');
    const refused = await post(bearer(a.accessToken), { user_id: b.id, user_message: 'hi', is_new_conversation: true });
    expect(refused.status, 'A naming B is refused before any read').toBe(403);
    expect((await snapshot(a.id)).jobs, 'hits queue nothing').toBe(0);
  });

  it('miss: fallback context from memories (recent and relevant), and a job queued', async () => {
    const user = await createUser();
    await addMemories(sql, user.id, 5, 'Weekend plans involve gardening');
    await addMemories(sql, user.id, 1, 'My favourite database is PostgreSQL because of its planner');
    const res = await post(bearer(user.accessToken), { user_message: 'tell me about the planner in postgresql', is_new_conversation: true });
    expect(res.status, 'ok').toBe(200);
    const body = await res.json();
    expect(body.source, 'no narrative yet').toBe('fallback');
    expect(body.context, 'relevant memory found by full-text search').toMatch(/favourite database is PostgreSQL/);
    expect(body.context, 'recent memories too').toMatch(/gardening/);
    expect(body.narrative, 'no narrative').toBeNull();
    expect(body.job?.status, 'a job is queued').toMatch(/^(queued|running|succeeded)$/);
  });

  it('not a new conversation: only memories relevant to the message, nothing queued', async () => {
    const user = await userWith(6, 'Training for a marathon in April');
    await addMemories(sql, user.id, 1, 'Allergic to peanuts');
    const res = await post(bearer(user.accessToken), { user_message: 'any peanuts in this recipe?', is_new_conversation: false });
    const body = await res.json();
    expect(body.source, 'relevant memories').toBe('fallback');
    expect(body.context, 'the relevant one').toMatch(/peanuts/);
    expect(body.context, 'not the unrelated ones').not.toMatch(/marathon/);
    expect(body.job, 'nothing queued').toBeNull();
    expect((await snapshot(user.id)).jobs, 'no job').toBe(0);
  });

  it('a user with no memories gets source none', async () => {
    const user = await createUser();
    const body = await (await post(bearer(user.accessToken), { user_message: 'hi', is_new_conversation: true })).json();
    expect(body, 'nothing known').toMatchObject({ source: 'none', context: '', narrative: null, job: null });
  });

  it('a user token cannot act for another user; service keys can', async () => {
    const a = await userWith(6);
    const b = await userWith(6, 'B likes sailing');
    const refused = await post(bearer(a.accessToken), { user_id: b.id, user_message: 'sailing', is_new_conversation: false });
    expect(refused.status, 'A asking for B').toBe(403);

    const viaSecret = await post({ apikey: keys().secretKey }, { user_id: b.id, user_message: 'sailing', is_new_conversation: false });
    expect(viaSecret.status, 'sb_secret key with user_id').toBe(200);
    expect((await viaSecret.json()).context, 'B\'s memories, under B\'s RLS').toMatch(/sailing/);
    const viaServiceRole = await post(bearer(keys().serviceRoleKey), { user_id: b.id, user_message: 'sailing', is_new_conversation: false });
    expect(viaServiceRole.status, 'service_role JWT with user_id').toBe(200);
    const noUser = await post({ apikey: keys().secretKey }, { user_message: 'x', is_new_conversation: true });
    expect(noUser.status, 'service callers must name the user').toBe(400);
  });
});

describe('bad input changes nothing (4xx)', () => {
  const huge = 'x'.repeat(100_000);
  const cases: [string, string, string | undefined, string, number][] = [
    // name, function, content-type, body, expected status
    ['orchestrate: non-JSON', 'orchestrate', 'application/json', '{"user_message":', 400],
    ['orchestrate: wrong content type', 'orchestrate', 'text/plain', '{"user_message":"x","is_new_conversation":true}', 415],
    ['orchestrate: missing is_new_conversation', 'orchestrate', 'application/json', '{"user_message":"x"}', 400],
    ['orchestrate: wrong type', 'orchestrate', 'application/json', '{"user_message":5,"is_new_conversation":"yes"}', 400],
    ['orchestrate: extra field', 'orchestrate', 'application/json', '{"user_message":"x","is_new_conversation":true,"admin":true}', 400],
    ['orchestrate: bad uuid', 'orchestrate', 'application/json', '{"user_id":"not-a-uuid","user_message":"x","is_new_conversation":true}', 400],
    ['orchestrate: huge message', 'orchestrate', 'application/json', JSON.stringify({ user_message: huge.slice(0, 9000), is_new_conversation: true }), 400],
    ['orchestrate: body over the limit', 'orchestrate', 'application/json', JSON.stringify({ user_message: huge, is_new_conversation: true }), 413],
    ['orchestrate: array body', 'orchestrate', 'application/json', '[]', 400],
    ['narrative POST: unknown field', 'narrative', 'application/json', '{"force":true}', 400],
    ['narrative POST: non-JSON', 'narrative', 'application/json', 'nope', 400],
  ];
  for (const [name, f, type, body, status] of cases) {
    it(name, async () => {
      const user = await userWith(6);
      const before = await snapshot(user.id);
      const res = await fetch(fn(f), { method: 'POST', headers: { ...bearer(user.accessToken), ...(type ? { 'content-type': type } : {}) }, body });
      expect(res.status, name).toBe(status);
      const err = await res.json();
      expect(err.error?.code, 'error shape').toMatch(/^[a-z_]+$/);
      expect(await snapshot(user.id), 'no rows changed').toEqual(before);
    });
  }

  for (const [f, method] of [['orchestrate', 'GET'], ['narrative', 'DELETE'], ['backfill', 'PUT']] as const) {
    it(`${f}: ${method} -> 405`, async () => {
      const user = await userWith(0);
      const res = await fetch(fn(f), { method, headers: bearer(user.accessToken) });
      expect(res.status, 'wrong method').toBe(405);
    });
  }
});

describe('auth table', () => {
  const tokens = async () => {
    const user = await userWith(6);
    const k = keys();
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({ role: 'authenticated', aud: 'authenticated', sub: user.id })
      .setProtectedHeader({ alg: 'ES256', kid: k.privateJwk.kid }).setIssuedAt(now - 7200).setExpirationTime(now - 3600)
      .sign(await importJWK(k.privateJwk, 'ES256'));
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT({ role: 'service_role' })
      .setProtectedHeader({ alg: 'ES256', kid: k.privateJwk.kid }).setExpirationTime('1h').sign(privateKey);
    return { user, expired, forged, anon: k.anonKey, service: k.serviceRoleKey, secret: k.secretKey };
  };

  it('narrative: none/expired/forged/anon -> 401, user -> 2xx, service key is not a user -> 401', async () => {
    const t = await tokens();
    const status = async (headers: Record<string, string>) => (await fetch(fn('narrative'), { headers })).status;
    expect(await status({}), 'none').toBe(401);
    expect(await status(bearer(t.expired)), 'expired').toBe(401);
    expect(await status(bearer(t.forged)), 'forged').toBe(401);
    expect(await status(bearer(t.anon)), 'anon key').toBe(401);
    expect([200, 204], 'user').toContain(await status(bearer(t.user.accessToken)));
    expect(await status(bearer(t.service)), 'the service role has no narrative of its own').toBe(401);
  });

  it('orchestrate: none/expired/forged/anon/wrong secret -> 401; user and service -> 200', async () => {
    const t = await tokens();
    const status = async (headers: Record<string, string>, userId?: string) => (await fetch(fn('orchestrate'), {
      method: 'POST', headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ user_id: userId, user_message: 'hi', is_new_conversation: true }),
    })).status;
    expect(await status({}), 'none').toBe(401);
    expect(await status(bearer(t.expired)), 'expired').toBe(401);
    expect(await status(bearer(t.forged)), 'forged').toBe(401);
    expect(await status(bearer(t.anon)), 'anon key').toBe(401);
    expect(await status({ apikey: 'sb_secret_wrong' }, t.user.id), 'wrong secret key').toBe(401);
    expect(await status(bearer(t.user.accessToken)), 'user').toBe(200);
    expect(await status(bearer(t.service), t.user.id), 'service_role JWT').toBe(200);
    expect(await status({ apikey: t.secret }, t.user.id), 'secret key').toBe(200);
  });

  it('backfill: none/expired/forged/anon -> 401; a plain user, or user_metadata.role admin -> 403; app_metadata admin and service -> 200', async () => {
    const t = await tokens();
    const sneaky = await createUser({ userMetadata: { role: 'admin' } });
    const admin = await createUser({ appMetadata: { role: 'admin' } });
    const status = async (headers: Record<string, string>) => (await fetch(fn('backfill'), { headers })).status;
    expect(await status({}), 'none').toBe(401);
    expect(await status(bearer(t.expired)), 'expired').toBe(401);
    expect(await status(bearer(t.forged)), 'forged').toBe(401);
    expect(await status(bearer(t.anon)), 'anon key').toBe(401);
    expect(await status(bearer(t.user.accessToken)), 'plain user').toBe(403);
    expect(await status(bearer(sneaky.accessToken)), 'user_metadata never grants anything').toBe(403);
    expect(await status(bearer(admin.accessToken)), 'app_metadata.role = admin').toBe(200);
    expect(await status(bearer(t.service)), 'service_role JWT').toBe(200);
    expect(await status({ apikey: t.secret }), 'secret key').toBe(200);
  });
});
