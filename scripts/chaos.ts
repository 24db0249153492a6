// npm run chaos: 1,000 jobs for 1,000 users while the (fake) Gemini fails 30 % of calls (429,
// 503, hangs past the timeout, truncated and garbage output), the functions runtime is killed
// twice, pg_net's background worker is killed (Postgres then resets every backend, as in a
// crash), and Postgres is restarted once. Then it checks:
// every job succeeded or failed with a reason, none stuck, never two active jobs for one user,
// versions only grew, no narrative lost or written twice; every failed job is matched to the
// fault chaos injected or the disruption that caused it (scripts/chaos-faults.ts: each user's
// Gemini calls are recorded under their own marker), and at least --min-success % (default 95)
// of the jobs outside injected permanent faults succeeded. Any miss exits 1. Loopback only;
// stops by itself. --fault-rate R (default 0.3) sets the share of failed calls, --disruptions
// none leaves the processes alone, --json FILE writes the verdict. With the fake's port taken (a
// test run), it drives that fake through its control API and puts its default back at the end.
//
// `--outage S` runs the other scenario (docs/targets.md): a total provider outage. Every Gemini call
// answers 503 for S seconds, then the provider is healthy again; nothing else is disturbed and
// the queue runs on its real settings (backoff, max_attempts, leases: the defaults an operator
// has). Every job must end succeeded: the retry schedule has to outlast the outage.
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import fs from 'node:fs';
import { DB_URL, FAKE_GEMINI_PORT, FAKE_GEMINI_URL } from '../local/config.ts';
import { type FakeCall, fakeGeminiControl, type FakeGeminiControl, startFakeGemini, type FakeGemini } from '../local/fakes/gemini.ts';
import { insertUsers } from '../local/fakes/users.ts';
import { useFunctionsEnv } from '../local/functions-env.ts';
import { startCluster, stopCluster } from '../local/postgres.ts';
import { stopService } from '../local/processes.ts';
import { overrideSettings } from '../local/settings.ts';
import { chaosVerdict, type Disruption } from './chaos-faults.ts';
import { machineInfo } from './machine.ts';

const { values: opts } = parseArgs({
  options: {
    jobs: { type: 'string', default: '1000' },
    'time-limit': { type: 'string', default: '420' },
    seed: { type: 'string', default: '7' },
    outage: { type: 'string' },
    'min-success': { type: 'string', default: '95' },
    'fault-rate': { type: 'string', default: '0.3' },
    disruptions: { type: 'string', default: 'all' },
    json: { type: 'string' },
  },
});
const JOBS = Number(opts.jobs);
const OUTAGE_S = opts.outage === undefined ? 0 : Number(opts.outage);
if (!(OUTAGE_S >= 0)) throw new Error('--outage takes a number of seconds');
const FLOOR = Number(opts['min-success']) / 100;
if (!(FLOOR >= 0 && FLOOR <= 1)) throw new Error('--min-success takes a percentage (0..100)');
const FAULT_RATE = Number(opts['fault-rate']);
if (!(FAULT_RATE >= 0 && FAULT_RATE <= 1)) throw new Error('--fault-rate takes a share of calls (0..1)');
if (opts.disruptions !== 'all' && opts.disruptions !== 'none') throw new Error('--disruptions is all or none');
// An outage run waits out real backoffs (up to about half the outage again after it ends).
const LIMIT_MS = (OUTAGE_S ? Math.max(Number(opts['time-limit']), OUTAGE_S * 2 + 600) : Number(opts['time-limit'])) * 1000;
const say = (msg: string) => console.error(`[chaos ${new Date().toISOString().slice(11, 19)}] ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** (Re)starts whatever is down, with the functions on the fake Gemini; the default env comes back at exit. */
function startStack() {
  useFunctionsEnv('tests/functions.env');
}

/** SIGKILL pg_net's background worker; the postmaster then resets every backend, as in a crash. */
async function killPgNetWorker(): Promise<void> {
  const sql = postgres(DB_URL, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    const [row] = await sql<{ pid: number }[]>`select pid from pg_stat_activity where backend_type like 'pg_net%worker'`;
    if (row) process.kill(row.pid, 'SIGKILL');
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

/** The scenario marker of a user's job: in one of their memories, so their calls are recorded under it. */
const markerOf = (userId: string) => `chaos-${userId}`;

/** Our own fake on the port tests/functions.env points at, or the one already there (a test run's). */
async function fakeGemini(): Promise<{ fake: FakeGeminiControl; own: FakeGemini | null } | null> {
  try {
    const own = await startFakeGemini({ port: FAKE_GEMINI_PORT });
    return { fake: fakeGeminiControl(own.url), own };
  } catch {
    const shared = fakeGeminiControl(FAKE_GEMINI_URL);
    if (!(await shared.calls('chaos-probe').then(() => true, () => false))) return null;
    say(`port ${FAKE_GEMINI_PORT} has a fake Gemini already (a test run?): driving it, its default put back at the end`);
    return { fake: shared, own: null };
  }
}

async function main(): Promise<number> {
  const got = await fakeGemini();
  if (!got) {
    say(`port ${FAKE_GEMINI_PORT} is busy with something that is not a fake Gemini; stop it and try again`);
    return 2;
  }
  const { fake, own } = got;
  startStack();
  const sql = postgres(DB_URL, { max: 4, onnotice: () => {}, connect_timeout: 5 });
  const violations: string[] = [];
  const started = Date.now();
  let restore = async () => {};
  try {
    // An outage runs on the real retry policy, only the concurrency raised so the queue drains
    // in minutes; the fault run on fast retries and short leases so recovery happens within it.
    restore = await overrideSettings(sql, OUTAGE_S ? { max_concurrency: 8 } : {
      backoff_base_seconds: 1, backoff_max_seconds: 4, lease_seconds: 12, redispatch_after_seconds: 10, max_concurrency: 8, max_attempts: 6,
    });
    if (OUTAGE_S) {
      const [p] = await sql`select backoff_base_seconds, backoff_max_seconds, max_attempts from private.settings`;
      say(`outage of ${OUTAGE_S} s on the real retry policy: backoff ${p.backoff_base_seconds} s doubling to ${p.backoff_max_seconds} s, ${p.max_attempts} attempts`);
      await fake.setDefault({ kind: 'error', status: 503 });
    } else {
      await fake.setDefault({ kind: 'ok', latencyMs: 40 });
      await fake.setChaos({
        failureRate: FAULT_RATE, seed: Number(opts.seed), scope: 'all',
        failures: [
          { kind: 'error', status: 429, retryDelaySeconds: 1 }, { kind: 'error', status: 503 },
          { kind: 'hang' }, { kind: 'truncated' }, { kind: 'garbage' },
        ],
      });
    }

    say(`creating ${JOBS} users with 6 memories each`);
    const ids = await insertUsers(sql, JOBS, 'chaos');
    await sql`insert into public.memories (user_id, content)
      select u, 'chaos memory ' || g || ' about gardening and compilers' || case when g = 1 then ' ' || ${markerOf('')} || u else '' end
      from unnest(${ids}::uuid[]) u, generate_series(1, 6) g`;
    // The outage plays the default answer to everyone; the fault run records each user's calls
    // under their marker (same answer as the default), to match each failure to its fault.
    if (!OUTAGE_S) for (const id of ids) await fake.scenario(markerOf(id), [{ kind: 'ok', latencyMs: 40 }]);

    say('enqueueing in one statement');
    await sql`insert into public.narrative_jobs (user_id, reason, max_attempts)
      select u, 'backfill', (select max_attempts from private.settings) from unnest(${ids}::uuid[]) u`;

    const versions = new Map<string, number>();
    let maxActivePerUser = 0;
    const disruptions: [number, string, () => Promise<void>][] = OUTAGE_S ? [
      [OUTAGE_S * 1000, `provider back after ${OUTAGE_S} s of 503s`, async () => { await fake.setDefault({ kind: 'ok', latencyMs: 40 }); }],
    ] : opts.disruptions === 'none' ? [] : [
      [8_000, 'kill -9 the functions runtime', async () => { await stopService('runtime', 'SIGKILL'); await sleep(2000); startStack(); }],
      // A backend killed by a signal makes Postgres restart every backend (crash recovery
      // empties pg_net's unlogged request queue: those dispatches are lost and re-sent).
      [20_000, 'kill -9 the pg_net background worker', async () => { await killPgNetWorker(); }],
      [32_000, 'restart Postgres', async () => { stopCluster('fast'); await sleep(1000); startCluster(); }],
      [45_000, 'kill -9 the functions runtime again', async () => { await stopService('runtime', 'SIGKILL'); await sleep(1000); startStack(); }],
    ];
    const happened: Disruption[] = [];
    let next = 0;
    for (;;) {
      const elapsed = Date.now() - started;
      if (next < disruptions.length && elapsed >= disruptions[next][0]) {
        say(disruptions[next][1]);
        happened.push({ at: Date.now(), what: disruptions[next][1] });
        await disruptions[next][2]();
        next++;
      }
      try {
        await sql`select private.sweep()`; // what pg_cron does every minute, every second here
        const snap = await sql<{ user_id: string; version: number }[]>`
          select user_id, version from public.user_narratives where user_id = any(${ids}::uuid[])`;
        for (const r of snap) {
          const before = versions.get(r.user_id) ?? 0;
          if (r.version < before) violations.push(`version went down for ${r.user_id}: ${before} -> ${r.version}`);
          versions.set(r.user_id, r.version);
        }
        const [{ m }] = await sql`select coalesce(max(n), 0)::int as m from (select count(*) as n from public.narrative_jobs
          where user_id = any(${ids}::uuid[]) and status in ('queued', 'running') group by user_id) x`;
        maxActivePerUser = Math.max(maxActivePerUser, m);
        const [c] = await sql`select count(*) filter (where status in ('succeeded', 'failed'))::int as done,
          count(*) filter (where status = 'running')::int as running, count(*)::int as total, coalesce(sum(attempts), 0)::int as attempts
          from public.narrative_jobs where user_id = any(${ids}::uuid[])`;
        say(`done ${c.done}/${c.total}, running ${c.running}, attempts ${c.attempts}`);
        if (c.done === c.total && next >= disruptions.length) break;
      } catch (err) {
        say(`database not answering (${(err as Error).message}); retrying`);
      }
      if (Date.now() - started > LIMIT_MS) {
        violations.push(`time limit of ${LIMIT_MS / 1000} s reached with jobs unfinished (stuck)`);
        break;
      }
      await sleep(1000);
    }

    const jobs = await sql<{ user_id: string; status: string; attempts: number; last_error: string | null; last_error_code: string | null; finished_at: Date | null }[]>`
      select user_id::text, status, attempts, last_error, last_error_code, finished_at from public.narrative_jobs where user_id = any(${ids}::uuid[])`;
    const narratives = await sql<{ user_id: string; version: number }[]>`
      select user_id, version from public.user_narratives where user_id = any(${ids}::uuid[])`;
    const byUser = new Map(narratives.map((n) => [n.user_id, n.version]));
    const count = (s: string) => jobs.filter((j) => j.status === s).length;
    const jobsPerUser = new Map<string, number>();
    for (const j of jobs) jobsPerUser.set(j.user_id, (jobsPerUser.get(j.user_id) ?? 0) + 1);

    for (const j of jobs) {
      if (j.status !== 'succeeded' && j.status !== 'failed') violations.push(`job of ${j.user_id} ended ${j.status}`);
      if (j.status === 'failed' && !j.last_error) violations.push(`failed job of ${j.user_id} has no reason`);
      if (j.status === 'succeeded' && byUser.get(j.user_id) !== 1) {
        violations.push(`succeeded job of ${j.user_id} but narrative version ${byUser.get(j.user_id) ?? 'missing'} (lost or written twice)`);
      }
      if (j.status === 'failed' && byUser.has(j.user_id)) violations.push(`failed job of ${j.user_id} but a narrative was stored`);
    }
    for (const [u, n] of jobsPerUser) if (n !== 1) violations.push(`user ${u} has ${n} jobs (duplicated)`);
    if (OUTAGE_S && count('succeeded') !== jobs.length) {
      violations.push(`${jobs.length - count('succeeded')} of ${jobs.length} jobs did not survive a ${OUTAGE_S} s outage`);
    }
    if (maxActivePerUser > 1) violations.push(`saw ${maxActivePerUser} active jobs for one user`);

    // Every failure matched to its fault, and the success floor over the jobs no permanent
    // injected fault decided (an outage run already requires every job to succeed).
    const allCalls = await fake.calls();
    const mine = new Set(ids.map(markerOf));
    const calls = allCalls.filter((c) => c.marker !== null && mine.has(c.marker));
    const callsByUser = new Map<string, FakeCall[]>();
    for (const c of calls) {
      const u = c.marker!.slice(markerOf('').length);
      callsByUser.set(u, [...(callsByUser.get(u) ?? []), c]);
    }
    const v = chaosVerdict(jobs, callsByUser, happened, OUTAGE_S ? 1 : FLOOR);
    if (!OUTAGE_S) {
      for (const u of v.unmatched) {
        const j = jobs.find((x) => x.user_id === u)!;
        violations.push(`failed job of ${u} matched to no injected fault or disruption (${j.last_error_code}, ${(callsByUser.get(u) ?? []).length} calls)`);
      }
      if (v.belowFloor) {
        violations.push(`${(v.successRate * 100).toFixed(1)} % of ${v.outside} jobs outside injected permanent faults succeeded: below the ${FLOOR * 100} % floor`);
      }
    }

    const attempts = jobs.reduce((s, j) => s + j.attempts, 0);
    const reasons = new Map<string, number>();
    for (const j of jobs) if (j.status === 'failed') reasons.set(j.last_error_code ?? '?', (reasons.get(j.last_error_code ?? '?') ?? 0) + 1);
    for (const j of jobs) if (j.status === 'failed') say(`failed after ${j.attempts} attempts: ${j.last_error}`);
    const chaosCalls = calls.filter((c) => c.chaos).length;
    console.log([
      '', 'chaos run', '---------',
      `jobs               ${jobs.length}`,
      `succeeded          ${count('succeeded')}`,
      `failed             ${count('failed')} (each with last_error: ${[...reasons].map(([k, n]) => `${k} ${n}`).join(', ') || 'none'})`,
      ...(OUTAGE_S ? [] : [
        `failures matched   ${count('failed') - v.unmatched.length} of ${count('failed')}${Object.keys(v.causes).length ? `: ${Object.entries(v.causes).map(([k, n]) => `${k} × ${n}`).join('; ')}` : ''}`,
        `success floor      ${(v.successRate * 100).toFixed(1)} % of ${v.outside} jobs outside injected permanent faults (${v.injectedPermanent} left out), floor ${FLOOR * 100} %: ${v.belowFloor ? 'BELOW' : 'met'}`,
      ]),
      `queued/running     ${count('queued') + count('running')}`,
      `attempts           ${attempts} (${(attempts / Math.max(jobs.length, 1)).toFixed(2)} per job, at most ${Math.max(0, ...jobs.map((j) => j.attempts))})`,
      `gemini calls       ${OUTAGE_S ? allCalls.length : calls.length}${OUTAGE_S ? '' : `, of which failed on purpose ${chaosCalls} (fault rate ${FAULT_RATE})`}`,
      `disruptions        ${disruptions.map((d) => d[1]).join('; ') || 'none'}`,
      `max active / user  ${maxActivePerUser}`,
      `elapsed            ${((Date.now() - started) / 1000).toFixed(0)} s`,
      `violations         ${violations.length}`,
      ...violations.slice(0, 20).map((v) => `  - ${v}`),
    ].join('\n'));

    if (opts.json) {
      // What docs/figures/chaos*.json hold and `npm run docs:figures` renders (docs/testing.md, docs/settings-and-limits.md).
      fs.writeFileSync(opts.json, JSON.stringify({
        command: `npm run chaos -- ${process.argv.slice(2).filter((a, i, all) => a !== '--json' && all[i - 1] !== '--json').join(' ')}`.trim(),
        measured_at: new Date(started).toISOString(), machine: machineInfo(),
        scenario: { max_concurrency: 8, ...(OUTAGE_S ? { outage_seconds: OUTAGE_S } : { fault_rate: FAULT_RATE, disruptions: opts.disruptions, min_success_percent: FLOOR * 100 }) },
        summary: {
          jobs: jobs.length, succeeded: count('succeeded'), failed: count('failed'), failed_by_reason: Object.fromEntries(reasons),
          attempts, attempts_max: Math.max(0, ...jobs.map((j) => j.attempts)), gemini_calls: OUTAGE_S ? allCalls.length : calls.length,
          gemini_calls_failed_on_purpose: OUTAGE_S ? null : chaosCalls, disruptions: disruptions.map((d) => d[1]),
          max_active_per_user: maxActivePerUser, elapsed_seconds: Math.round((Date.now() - started) / 1000),
        },
        ...v, violations,
      }, null, 2) + '\n');
    }

    await sql`delete from auth.users where id = any(${ids}::uuid[])`;
    return violations.length ? 1 : 0;
  } finally {
    await restore().catch(() => {});
    await sql.end({ timeout: 2 });
    if (own) await own.close();
    else await Promise.all([fake.setChaos(null), fake.setDefault({ kind: 'ok' })]).catch(() => {});
  }
}

main().then((code) => process.exit(code), (err) => {
  console.error(`chaos run crashed: ${(err as Error).stack ?? err}`);
  process.exit(2);
});
