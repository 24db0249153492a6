// The global cap is exact under concurrency: 50 cache misses enqueued at once, each in its own
// transaction, never put more than max_concurrency jobs in flight (running, or sent and not yet
// claimed) and waste no dispatch (a concurrency_limited claim would send the job again, so every
// job is sent exactly once). Needs a quiet queue and the default cap, so it runs alone.
import { afterAll, expect, it } from 'vitest';
import { fakeGeminiControl } from '../../local/fakes/gemini.ts';
import { addMemories, drainQueue, makeUser, marker } from '../helpers/pipeline.ts';
import { FAKE_GEMINI_URL } from '../../local/config.ts';
import { db, eventually } from '../helpers/stack.ts';

const USERS = 50;
const sql = db(USERS + 2);
const fake = fakeGeminiControl(FAKE_GEMINI_URL);
afterAll(() => sql.end({ timeout: 2 }));

it('50 concurrent misses with a cap of 4: at most 4 in flight, one dispatch each, one running job per user', async () => {
  await drainQueue(sql);
  const [{ cap }] = await sql<{ cap: number }[]>`select max_concurrency as cap from private.settings`;
  expect(cap, 'the default cap').toBe(4);

  // Slow enough answers that the jobs overlap and the cap is what holds them back.
  const m = marker();
  await fake.scenario(m, [{ kind: 'ok', latencyMs: 150 }]);
  const users: string[] = [];
  for (let i = 0; i < USERS; i++) {
    const u = await makeUser(sql);
    await addMemories(sql, u, 5, `${m} note`);
    users.push(u);
  }

  let maxInFlight = 0;
  let maxPerUser = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const [s] = await sql<{ in_flight: number; per_user: number }[]>`
        select count(*)::int as in_flight, coalesce(max(n), 0)::int as per_user from (
          select count(*) filter (where status = 'running') over (partition by user_id) as n
          from public.narrative_jobs
          where status = 'running'
             or (status = 'queued' and dispatched_at > now() - make_interval(secs => (select redispatch_after_seconds from private.settings)))
        ) t`;
      maxInFlight = Math.max(maxInFlight, s.in_flight);
      maxPerUser = Math.max(maxPerUser, s.per_user);
    }
  })();

  const jobs = await Promise.all(users.map(async (u) => {
    const [r] = await sql<{ job_id: number }[]>`select job_id::int from private.enqueue_job(${u}::uuid, 'cache_miss')`;
    return r.job_id;
  }));
  const done = await eventually('all 50 narratives stored', async () => {
    const rows = await sql<{ status: string; dispatch_count: number }[]>`
      select status, dispatch_count from public.narrative_jobs where id = any(${jobs}::bigint[])`;
    return rows.every((r) => r.status === 'succeeded') ? rows : null;
  }, 90_000, 100);
  sampling = false;
  await sampler;

  expect(done.length, 'one job per user').toBe(USERS);
  expect(maxInFlight, 'never more jobs in flight than the cap').toBeLessThanOrEqual(cap);
  expect(maxInFlight, 'the cap was reached (the test did load the queue)').toBe(cap);
  expect(done.filter((r) => r.dispatch_count !== 1).length, 'no wasted dispatch: no concurrency_limited claim sent a job twice').toBe(0);
  expect(maxPerUser, 'no user ever held more than one running slot').toBeLessThanOrEqual(1);
  // What gives that: the one-active-job-per-user unique index refuses a second active job.
  const u = users[0];
  await sql`insert into public.narrative_jobs (user_id, reason, run_after) values (${u}::uuid, 'manual', now() + interval '1 hour')`;
  const second = await sql`insert into public.narrative_jobs (user_id, reason, run_after) values (${u}::uuid, 'manual', now() + interval '1 hour')`
    .then(() => 'inserted', (e: { code?: string }) => e.code);
  expect(second, 'a second active job for the same user is a unique violation').toBe('23505');
  await sql`delete from public.narrative_jobs where user_id = ${u}::uuid and status = 'queued'`;
});
