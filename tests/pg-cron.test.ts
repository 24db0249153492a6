// pg_cron is preloaded and schedules jobs (1.4 here: minute granularity, so this waits for the
// next minute boundary).
import { afterAll, expect, it } from 'vitest';
import { db, eventually } from './helpers/stack.ts';

const sql = db();
afterAll(() => sql.end({ timeout: 2 }));

it('a one-minute pg_cron job runs and records its run', async () => {
  const name = `test-cron-${Date.now()}`;
  await sql`create schema if not exists local_tests`;
  await sql`create table if not exists local_tests.cron_probe (job text, ran_at timestamptz default now())`;
  const [{ jobid }] = await sql<{ jobid: number }[]>`
    select cron.schedule(${name}, '* * * * *', ${`insert into local_tests.cron_probe (job) values ('${name}')`}) as jobid`;
  try {
    const run = await eventually('the cron job to run', async () => {
      const [r] = await sql`select status, return_message from cron.job_run_details where jobid = ${jobid} order by runid desc limit 1`;
      return r && r.status !== 'running' && r.status !== 'starting' ? r : null;
    }, 75_000, 500);
    expect(run.status, `run status (${run.return_message})`).toBe('succeeded');
    const [probe] = await sql`select count(*)::int as n from local_tests.cron_probe where job = ${name}`;
    expect(probe.n, 'the job did its work').toBeGreaterThanOrEqual(1);
  } finally {
    await sql`select cron.unschedule(${jobid}::bigint)`;
    await sql`delete from local_tests.cron_probe where job = ${name}`;
  }
}, 90_000);
