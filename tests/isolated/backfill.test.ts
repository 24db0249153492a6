// Admin backfill touches every eligible user, so it runs alone: dry run, real run, repeat
// (idempotent), force, and its effect on the queue; then `npm run backfill -- --watch` following
// the queue until it drains.
import { spawn } from 'node:child_process';
import { afterAll, expect, it } from 'vitest';
import { ROOT } from '../../local/config.ts';
import { fakeGeminiControl } from '../../local/fakes/gemini.ts';
import { addMemories, drainQueue, makeUser, marker } from '../helpers/pipeline.ts';
import { API_URL, FAKE_GEMINI_URL } from '../../local/config.ts';
import { db, eventually, keys } from '../helpers/stack.ts';

const sql = db(2);
const fake = fakeGeminiControl(FAKE_GEMINI_URL);
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
  const m = marker();
  await fake.scenario(m, [{ kind: 'ok' }]);
  const users = [await makeUser(sql), await makeUser(sql), await makeUser(sql)];
  for (const u of users) await addMemories(sql, u, 37, `note on ${m}`);
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

  await fake.hold(m); // the forced jobs stay active until the counts below are read
  const limited = await backfill({ min_memories: 37, force: true, limit: 2 });
  expect(limited.enqueued, 'force regenerates fresh ones, up to limit').toBe(2);
  const forced = await backfill({ min_memories: 37, force: true });
  expect(forced.skipped_active, 'the two just queued are active').toBeGreaterThanOrEqual(2);
  await fake.release(m);
  await eventually('the forced run to finish', async () => (await activeJobs()) === 0, 30_000, 100);
  const versions = await sql`select version from user_narratives where user_id in ${sql(users)}`;
  expect(versions.every((v) => v.version === 2), 'forced: every user got version 2').toBe(true);

  const health = await (await fetch(`${API_URL}/functions/v1/backfill`, { headers: { apikey: keys().secretKey } })).json();
  expect(health.counts.succeeded, 'queue health counts by status').toBeGreaterThanOrEqual(6);
  expect(health.last_hour.succeeded, 'throughput over the last hour').toBeGreaterThanOrEqual(6);
  expect(health.running, 'nothing running').toBe(0);
  expect(Array.isArray(health.recent_failures), 'recent failures listed').toBe(true);
});

it('backfill --watch prints progress while jobs run and exits 0 once the queue drains', async () => {
  // min_memories 38: only these users qualify. Their provider calls are held, so the CLI must
  // see a queue that is not empty yet, whatever the machine's speed.
  const m = marker();
  await fake.scenario(m, [{ kind: 'ok' }]);
  const users = [await makeUser(sql), await makeUser(sql)];
  for (const u of users) await addMemories(sql, u, 38, `I collect ${m}`);
  await drainQueue(sql);
  await fake.hold(m);

  const base = { ...process.env };
  for (const k of ['SUPABASE_URL', 'SUPABASE_SECRET_KEY', 'SUPABASE_SERVICE_ROLE_KEY']) delete base[k];
  const child = spawn('npx', ['tsx', 'scripts/backfill.ts', '--min-memories', '38', '--watch'], { cwd: ROOT, env: base });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d; });
  child.stderr.on('data', (d: Buffer) => { stderr += d; });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  try {
    await eventually('a progress line with jobs left', async () => /left [1-9]/.test(stdout), 60_000, 50);
    expect(stdout, 'the enqueue counts come first').toMatch(/enqueued\D+2\b/i);
    await fake.waitForCalls(m, 2); // both jobs are generating, held: the queue cannot drain yet
    expect(child.exitCode, 'the CLI is still watching').toBeNull();
    await fake.release(m);
    const code = await exited;
    expect(code, `exit 0 (stderr: ${stderr})`).toBe(0);
  } finally {
    await fake.release(m);
    child.kill();
  }
  const lines = stdout.trim().split('\n');
  expect(lines.at(-1), 'the last line says the queue drained and what happened').toMatch(/^Queue drained in .+: 2 done, 0 failed \(2 jobs/);
  const [{ n }] = await sql`select count(*)::int as n from user_narratives where user_id in ${sql(users)}`;
  expect(n, 'both narratives stored').toBe(2);
});
