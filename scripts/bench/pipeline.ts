// Generation: enqueue → narrative stored, pipeline throughput, and a slow provider under
// concurrent enqueues — all through the real trigger → pg_net → generate-narrative path.
import { useFunctionsEnv } from '../../local/functions-env.ts';
import { overrideSettings } from '../../local/settings.ts';
import { ENQUEUE_USERS, ENQUEUE_WORKERS, EMAIL_PREFIX, PIPELINE_JOBS, SLOW_PROVIDER_JOBS, SLOW_PROVIDER_MS, progress } from './options.ts';
import { checkErrors, failedRuns, latencyText, notes, rows, summarize, tailWithin } from './report.ts';
import { addMemories, createDbUsers, mapLimit, sql } from './fixtures.ts';
import { fakeProvider } from './provider.ts';
import { state } from './load.ts';

export interface JobTiming { status: string; ms: number | null; created: Date; finished: Date | null }

export async function jobTimings(ids: number[]): Promise<Map<number, JobTiming>> {
  const r = await sql<{ id: number; status: string; ms: number | null; created_at: Date; finished_at: Date | null }[]>`
    select id::int, status, extract(epoch from finished_at - created_at) * 1000 as ms, created_at, finished_at
    from public.narrative_jobs where id = any(${ids}::bigint[])`;
  return new Map(r.map((x) => [x.id, { status: x.status, ms: x.ms === null ? null : Number(x.ms), created: x.created_at, finished: x.finished_at }]));
}

export async function othersInQueue(mine: string): Promise<string> {
  const [r] = await sql<{ queued: number; running: number }[]>`
    select count(*) filter (where j.status = 'queued')::int as queued, count(*) filter (where j.status = 'running')::int as running
    from public.narrative_jobs j join auth.users u on u.id = j.user_id
    where j.status in ('queued', 'running') and u.email not like ${mine}`;
  return `${r.running} running / ${r.queued} queued`;
}

export async function measureEnqueue(provider: string): Promise<void> {
  const label = `enqueue → narrative stored, ${ENQUEUE_USERS} users`;
  progress(`${label}: creating ${ENQUEUE_USERS} eligible users (6 memories each)`);
  const ids = await createDbUsers('enq', ENQUEUE_USERS);
  await addMemories(sql, ids, 6);
  const others = await othersInQueue(EMAIL_PREFIX + '%');
  // Warm-up: two jobs, not counted.
  const warm = await createDbUsers('enqwarm', 2);
  await addMemories(sql, warm, 6);
  progress(`${label}: warm-up (2 jobs)`);
  for (const w of warm) {
    const [j] = await sql<{ job_id: number }[]>`select job_id::int from private.enqueue_job(${w}::uuid, 'manual')`;
    await pollJobs([j.job_id], 20_000);
    const x = (await jobTimings([j.job_id])).get(j.job_id);
    if (x?.status !== 'succeeded') {
      const msg = `warm-up job ${j.job_id} is ${x?.status ?? 'gone'} after 20 s`;
      failedRuns.push(`${label}: ${msg}`);
      notes.push(`SKIPPED enqueue → stored and pipeline throughput: ${msg}`);
      progress(`${label}: ${msg}; skipping the pipeline steps`);
      state.pipelineBroken = true;
      return;
    }
  }
  progress(`${label}: ${ENQUEUE_WORKERS} at a time (provider: ${provider}; other users' jobs in the queue: ${others})`);
  const jobIds: number[] = [];
  let notCreated = 0;
  await mapLimit(ids, ENQUEUE_WORKERS, async (id) => {
    const [j] = await sql<{ job_id: number; created: boolean }[]>`select job_id::int, created from private.enqueue_job(${id}::uuid, 'manual')`;
    if (!j.created) notCreated++;
    jobIds.push(j.job_id);
    await pollJobs([j.job_id], 30_000);
  });
  const t = await jobTimings(jobIds);
  const lat: number[] = [];
  let bad = notCreated;
  for (const id of jobIds) {
    const x = t.get(id);
    if (x?.status === 'succeeded' && x.ms !== null) lat.push(x.ms);
    else bad++;
  }
  const [stored] = await sql<{ n: number }[]>`select count(*)::int as n from public.user_narratives where user_id = any(${ids}::uuid[])`;
  if (stored.n !== lat.length) notes.push(`WARNING: ${lat.length} jobs succeeded but ${stored.n} narratives are stored.`);
  const s = summarize(lat);
  checkErrors(label, ids.length, bad, `${bad} not succeeded`);
  const times = [...t.values()];
  const span = times.length ? (Math.max(...times.map((x) => x.finished?.getTime() ?? 0)) - Math.min(...times.map((x) => x.created.getTime()))) / 1000 : 0;
  progress(`${label}: ${lat.length}/${ids.length} succeeded, ${latencyText(s)} ms`);
  notes.push(`enqueue → stored: DB timestamps (narrative_jobs.finished_at − created_at; the narrative is stored in the transaction that sets finished_at); `
    + `provider: ${provider}; other users' jobs active at the start: ${others}.`);
  const within = tailWithin(s, 2000, 's');
  rows.push({
    key: 'enqueue_to_stored', measurement: `${label}, ${ENQUEUE_WORKERS} at a time`, n: ids.length, errors: bad, latency: s,
    rate: span > 0 ? lat.length / span : null, measured: within.measured, target: within.target, verdict: within.ok ? 'PASS' : 'MISS',
  });
}

export async function measureSlowProvider(): Promise<void> {
  const label = `enqueue → stored, ${SLOW_PROVIDER_JOBS} concurrent enqueues, ${SLOW_PROVIDER_MS / 1000} s provider`;
  const fake = fakeProvider();
  if (!fake) {
    notes.push(`SKIPPED ${label}: it needs the bench's own fake Gemini (the port in tests/functions.env was taken).`);
    return;
  }
  progress(`${label}: functions on tests/functions.slow-provider.env, max_concurrency ${SLOW_PROVIDER_JOBS}`);
  useFunctionsEnv('tests/functions.slow-provider.env');
  const restore = await overrideSettings(sql, { max_concurrency: SLOW_PROVIDER_JOBS });
  fake.setDefault({ kind: 'ok', latencyMs: SLOW_PROVIDER_MS });
  try {
    const ids = await createDbUsers('slow', SLOW_PROVIDER_JOBS);
    await addMemories(sql, ids, 6);
    const jobIds = await Promise.all(ids.map(async (id) => {
      const [j] = await sql<{ job_id: number }[]>`select job_id::int from private.enqueue_job(${id}::uuid, 'manual')`;
      return j.job_id;
    }));
    await pollJobs(jobIds, SLOW_PROVIDER_MS * 5);
    const t = await jobTimings(jobIds);
    const lat = [...t.values()].filter((x) => x.status === 'succeeded' && x.ms !== null).map((x) => x.ms!);
    const bad = jobIds.length - lat.length;
    const s = summarize(lat);
    checkErrors(label, jobIds.length, bad, `${bad} not succeeded`);
    const target = SLOW_PROVIDER_MS + 5_000;
    progress(`${label}: ${lat.length}/${jobIds.length} succeeded, ${latencyText(s)} ms`);
    const within = tailWithin(s, target, 's');
    rows.push({
      key: 'enqueue_to_stored_slow_provider', measurement: label, n: jobIds.length, errors: bad, latency: s, rate: null,
      measured: within.measured, target: within.target, verdict: within.ok ? 'PASS' : 'MISS',
    });
    notes.push(`${label}: every job's request is answered 202 at claim, so pg_net's next batch never waits for a generation; `
      + `target = one provider call + 5 s.`);
  } finally {
    fake.setDefault({ kind: 'ok' });
    await restore();
    useFunctionsEnv('tests/functions.env');
  }
}

export async function pollJobs(ids: number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [r] = await sql<{ n: number }[]>`
      select count(*)::int as n from public.narrative_jobs where id = any(${ids}::bigint[]) and status in ('succeeded', 'failed')`;
    if (r.n >= ids.length) return;
    await new Promise((res) => setTimeout(res, ids.length > 1 ? 100 : 15));
  }
}

export async function measurePipeline(): Promise<void> {
  const label = `pipeline throughput, ${PIPELINE_JOBS} jobs enqueued at once`;
  progress(`${label}: creating ${PIPELINE_JOBS} eligible users`);
  const ids = await createDbUsers('pipe', PIPELINE_JOBS);
  await addMemories(sql, ids, 6);
  const [{ max_concurrency }] = await sql<{ max_concurrency: number }[]>`select max_concurrency from private.settings`;
  const others = await othersInQueue(EMAIL_PREFIX + '%');
  progress(`${label}: enqueueing (one statement) and waiting (max_concurrency ${max_concurrency})`);
  const jobs = await sql<{ job_id: number }[]>`
    select (private.enqueue_job(u, 'manual')).job_id::int as job_id from unnest(${ids}::uuid[]) u`;
  const jobIds = jobs.map((j) => j.job_id);
  await pollJobs(jobIds, 240_000);
  const t = await jobTimings(jobIds);
  const ok = [...t.values()].filter((x) => x.status === 'succeeded' && x.finished);
  const bad = jobIds.length - ok.length;
  const lat = ok.map((x) => x.ms!).filter((x) => x !== null);
  const s = summarize(lat);
  const span = ok.length ? (Math.max(...ok.map((x) => x.finished!.getTime())) - Math.min(...[...t.values()].map((x) => x.created.getTime()))) / 1000 : 0;
  const rate = span > 0 ? ok.length / span : 0;
  checkErrors(label, jobIds.length, bad, `${bad} not succeeded`);
  progress(`${label}: ${ok.length}/${jobIds.length} succeeded in ${span.toFixed(1)} s = ${rate.toFixed(1)} jobs/s`);
  notes.push(`pipeline: ${PIPELINE_JOBS} jobs, latency = finished_at − created_at (queueing included), jobs/s over first enqueue → last finish; `
    + `max_concurrency ${max_concurrency}; other users' jobs active at the start: ${others}.`);
  rows.push({
    key: 'pipeline_jobs_per_s', measurement: `${label} (jobs/s)`, n: jobIds.length, errors: bad, latency: s, rate,
    measured: `${rate.toFixed(1)} jobs/s`, target: '(informational)', verdict: '—',
  });
}
