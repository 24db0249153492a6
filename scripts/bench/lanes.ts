// Dispatch lanes and the exact cap (docs/targets.md), through the real trigger → pg_net →
// generate-narrative path: a new user's cache miss with 10,000 backfill jobs queued against the
// same miss on an idle queue, and 50 concurrent misses counted for wasted dispatches.
import postgres from 'postgres';
import { DB_URL } from '../../local/config.ts';
import { progress } from './options.ts';
import { checkErrors, notes, rows, summarize, tail } from './report.ts';
import { addMemories, createDbUsers, sql } from './fixtures.ts';
import { jobTimings, pollJobs } from './pipeline.ts';

const MISSES = 20;
const BACKLOG = 10_000;
const CONCURRENT = 50;

/** One cache miss at a time for fresh users; enqueue → stored per job from DB timestamps. */
async function missLatencies(tag: string): Promise<{ lat: number[]; bad: number }> {
  const ids = await createDbUsers(tag, MISSES);
  await addMemories(sql, ids, 6);
  const lat: number[] = [];
  let bad = 0;
  for (const id of ids) {
    const [j] = await sql<{ job_id: number }[]>`select job_id::int from private.enqueue_job(${id}::uuid, 'cache_miss')`;
    await pollJobs([j.job_id], 30_000);
    const t = (await jobTimings([j.job_id])).get(j.job_id);
    if (t?.status === 'succeeded' && t.ms !== null) lat.push(t.ms);
    else bad++;
  }
  return { lat, bad };
}

export async function measureLanes(): Promise<void> {
  const label = `cache miss → stored, ${MISSES} new users, idle queue vs ${BACKLOG} backfill jobs queued`;
  progress(`${label}: idle`);
  const idle = await missLatencies('lane-idle');
  progress(`${label}: queueing ${BACKLOG} backfill jobs for eligible users`);
  const backlogUsers = await createDbUsers('lane-backlog', BACKLOG);
  await addMemories(sql, backlogUsers, 6);
  await sql`insert into public.narrative_jobs (user_id, reason) select u, 'backfill' from unnest(${backlogUsers}::uuid[]) u`;
  progress(`${label}: misses behind the backlog`);
  const busy = await missLatencies('lane-busy');
  const [{ n: left }] = await sql<{ n: number }[]>`
    select count(*)::int as n from public.narrative_jobs where user_id = any(${backlogUsers}::uuid[]) and status = 'queued'`;
  // The rest of the backlog is not this bench's business: its users are deleted with the others.
  await sql`delete from public.narrative_jobs where user_id = any(${backlogUsers}::uuid[]) and status = 'queued'`;
  const si = summarize(idle.lat);
  const sb = summarize(busy.lat);
  // p95 over p95 from enough samples; below that (20 misses a side), max over max.
  const ti = tail(si);
  const tb = tail(sb);
  const ratio = ti.ms && tb.ms !== null ? tb.ms / ti.ms : null;
  checkErrors(label, MISSES * 2, idle.bad + busy.bad, 'not succeeded');
  notes.push(`lanes: backfill jobs still queued when the last miss was stored: ${left} of ${BACKLOG} (the backlog was there throughout).`);
  rows.push({
    key: 'miss_idle', measurement: `cache miss → stored, idle queue, ${MISSES} users one at a time`, n: MISSES, errors: idle.bad,
    latency: si, rate: null, measured: `${ti.name} ${ti.ms?.toFixed(0)} ms`, target: 'reference', verdict: '—',
  });
  rows.push({
    key: 'miss_under_backlog', measurement: `cache miss → stored behind ${BACKLOG} queued backfill jobs`, n: MISSES, errors: busy.bad,
    latency: sb, rate: null, measured: `${tb.name} ${tb.ms?.toFixed(0)} ms, ×${ratio?.toFixed(2)} idle`,
    target: `${tb.name} ≤ 1.5 × idle${tb.name === 'max' ? ` (${MISSES} samples a side: no p95)` : ''}`,
    verdict: ratio !== null && ratio <= 1.5 ? 'PASS' : 'MISS', detail: { idle: ti, backlog: tb, ratio, backlog_left: left },
  });
}

export async function measureExactDispatch(): Promise<void> {
  const label = `${CONCURRENT} concurrent cache misses, each in its own transaction`;
  const [{ cap }] = await sql<{ cap: number }[]>`select max_concurrency as cap from private.settings`;
  progress(`${label}: max_concurrency ${cap}`);
  const ids = await createDbUsers('exact', CONCURRENT);
  await addMemories(sql, ids, 6);
  const pool = postgres(DB_URL, { max: CONCURRENT, onnotice: () => {}, connection: { application_name: 'bench-exact' } });
  try {
    const jobIds = await Promise.all(ids.map(async (id) => {
      const [j] = await pool<{ job_id: number }[]>`select job_id::int from private.enqueue_job(${id}::uuid, 'cache_miss')`;
      return j.job_id;
    }));
    await pollJobs(jobIds, 120_000);
    const [r] = await sql<{ ok: number; sent: number }[]>`
      select count(*) filter (where status = 'succeeded')::int as ok, coalesce(sum(dispatch_count), 0)::int as sent
      from public.narrative_jobs where id = any(${jobIds}::bigint[])`;
    const wasted = r.sent - CONCURRENT;
    checkErrors(label, CONCURRENT, CONCURRENT - r.ok, 'not succeeded');
    rows.push({
      key: 'wasted_dispatches', measurement: `${label}, cap ${cap}: requests beyond one per job`, n: CONCURRENT, errors: CONCURRENT - r.ok,
      latency: null, rate: null, measured: `${wasted} wasted (${r.sent} sent)`, target: '0',
      verdict: wasted === 0 ? 'PASS' : 'MISS', detail: { sent: r.sent, wasted },
    });
  } finally {
    await pool.end({ timeout: 2 });
  }
}
