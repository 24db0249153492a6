// Admin backfill touches every eligible user, so it runs alone: dry run, real run, repeat
// (idempotent), force, and its effect on the queue.
import { afterAll, expect, it } from 'vitest';
import { addMemories, drainQueue, makeUser } from '../helpers/pipeline.ts';
import { API_URL, db, eventually, keys } from '../helpers/stack.ts';

const sql = db(2);
afterAll(() => sql.end({ timeout: 2 }));

async function backfill(body: Record<string, unknown>) {
  const res = await fetch(`${API_URL}/functions/v1/backfill`, {
    method: 'POST', headers: { apikey: keys().secretKey, 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  expect(res.status, `backfill ${JSON.stringify(body)}`).toBe(200);
  return await res.json() as { eligible: number; enqueued: number; skipped_fresh: number; skipped_active: number; dry_run: boolean };
}

const jobCount = async () => (await sql`select count(*)::int as n from narrative_jobs`)[0].n as number;
const activeJobs = async () => (await sql`select count(*)::int as n from narrative_jobs where status in ('queued', 'running')`)[0].n as number;

it('dry run counts without writing; a real run enqueues; a repeat enqueues nothing; force regenerates', async () => {
  // Users with 37 memories and min_memories 37: other suites' users (seed users have 9 at most)
  // stay out of the counts and of the forced regeneration.
  const users = [await makeUser(sql), await makeUser(sql), await makeUser(sql)];
  for (const u of users) await addMemories(sql, u, 37);
  const small = await makeUser(sql);
  await addMemories(sql, small, 36);
  await drainQueue(sql);

  const jobsBefore = await jobCount();
  const dry = await backfill({ min_memories: 37, dry_run: true });
  expect(dry.dry_run, 'flagged as a dry run').toBe(true);
  expect(dry.enqueued, 'would enqueue at least our three users').toBeGreaterThanOrEqual(3);
  expect(await jobCount(), 'a dry run writes nothing').toBe(jobsBefore);

  const real = await backfill({ min_memories: 37 });
  expect(real.enqueued, 'the real run enqueues what the dry run said').toBe(dry.enqueued);
  expect(real.eligible, 'same eligible count').toBe(dry.eligible);
  const ours = await sql`select user_id, reason from narrative_jobs where user_id in ${sql(users)}`;
  expect(ours.length, 'one job per user').toBe(3);
  expect(ours.every((j) => j.reason === 'backfill'), 'reason backfill').toBe(true);
  const [{ n: smallJobs }] = await sql`select count(*)::int as n from narrative_jobs where user_id = ${small}`;
  expect(smallJobs, 'below min_memories: not enqueued').toBe(0);

  const repeat = await backfill({ min_memories: 37 });
  expect(repeat.enqueued, 'idempotent: nothing new while jobs are active').toBe(0);

  await eventually('the backfill to finish', async () => (await activeJobs()) === 0, 30_000, 100);
  const after = await backfill({ min_memories: 37 });
  expect(after.enqueued, 'idempotent: fresh narratives are skipped').toBe(0);
  expect(after.skipped_fresh, 'our users are now fresh').toBeGreaterThanOrEqual(3);

  const limited = await backfill({ min_memories: 37, force: true, limit: 2 });
  expect(limited.enqueued, 'force regenerates fresh ones, up to limit').toBe(2);
  const forced = await backfill({ min_memories: 37, force: true });
  expect(forced.skipped_active, 'the two just queued are active').toBeGreaterThanOrEqual(2);
  await eventually('the forced run to finish', async () => (await activeJobs()) === 0, 30_000, 100);
  const versions = await sql`select version from user_narratives where user_id in ${sql(users)}`;
  expect(versions.every((v) => v.version === 2), 'forced: every user got version 2').toBe(true);

  const health = await (await fetch(`${API_URL}/functions/v1/backfill`, { headers: { apikey: keys().secretKey } })).json();
  expect(health.counts.succeeded, 'queue health counts by status').toBeGreaterThanOrEqual(6);
  expect(health.last_hour.succeeded, 'throughput over the last hour').toBeGreaterThanOrEqual(6);
  expect(health.running, 'nothing running').toBe(0);
  expect(Array.isArray(health.recent_failures), 'recent failures listed').toBe(true);
});
