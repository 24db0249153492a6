// Backfill: one private.backfill call over 100,000 eligible users, in a transaction rolled back.
import { BACKFILL_USERS, EMAIL_PREFIX, progress } from './options.ts';
import { checkErrors, notes, rows } from './report.ts';
import { addMemories, sql } from './fixtures.ts';

class Rollback extends Error {}

export async function measureBackfill(): Promise<void> {
  const label = `backfill enqueue, ${BACKFILL_USERS.toLocaleString('en-US')} users`;
  progress(`${label}: creating ${BACKFILL_USERS} users + ${BACKFILL_USERS * 5} memories inside a transaction that will be rolled back`);
  let result: { eligible: number; enqueued: number; skipped_fresh: number; skipped_active: number } | undefined;
  let seconds = 0;
  const tPrep = performance.now();
  try {
    await sql.begin(async (tx) => {
      await tx`set local statement_timeout = 0`;
      await tx`create temp table bench_backfill_users on commit drop as
        select gen_random_uuid() as id from generate_series(1, ${BACKFILL_USERS})`;
      await tx`insert into auth.users (id, email) select id, ${EMAIL_PREFIX + 'bf-'} || id || '@bench.test' from bench_backfill_users`;
      await addMemories(tx, null, 5, 'bench_backfill_users');
      await tx`analyze public.memories`;
      await tx`analyze auth.users`;
      progress(`${label}: setup took ${((performance.now() - tPrep) / 1000).toFixed(1)} s; timing one private.backfill(5, false, null, false) call`);
      const t0 = performance.now();
      const [r] = await tx<{ eligible: number; enqueued: number; skipped_fresh: number; skipped_active: number }[]>`
        select * from private.backfill(5, false, null, false)`;
      seconds = (performance.now() - t0) / 1000;
      result = r;
      throw new Rollback();
    });
  } catch (err) {
    if (!(err instanceof Rollback)) throw err;
  }
  if (!result) throw new Error('backfill returned nothing');
  const [leak] = await sql<{ n: number }[]>`select count(*)::int as n from auth.users where email like ${EMAIL_PREFIX + 'bf-%'}`;
  if (leak.n !== 0) throw new Error('the backfill transaction was not rolled back');
  progress(`${label}: ${result.enqueued} jobs enqueued in ${seconds.toFixed(2)} s (rolled back)`);
  const bad = result.enqueued >= BACKFILL_USERS ? 0 : BACKFILL_USERS - result.enqueued;
  checkErrors(label, BACKFILL_USERS, bad, `only ${result.enqueued} enqueued`);
  notes.push(`backfill: measured in a rolled-back transaction (100,000 users + 500,000 memories created in it, then ONE private.backfill call timed; `
    + `nothing committed, so pg_net sent nothing). It saw ${result.eligible} eligible users (the bench's plus every other eligible user in the database), `
    + `enqueued ${result.enqueued}, skipped ${result.skipped_fresh} fresh and ${result.skipped_active} with an active job.`);
  rows.push({
    key: 'backfill_100k', measurement: `${label} (rolled-back transaction)`, n: result.enqueued, errors: bad,
    latency: null, rate: result.enqueued / seconds, measured: `${seconds.toFixed(2)} s`, target: '≤ 5 s',
    verdict: seconds <= 5 ? 'PASS' : 'MISS', detail: { seconds, ...result },
  });
}
