// `npm run bench`: the targets of DESIGN.md §7, measured against the running local stack in one run.
//
//   npm run bench [-- --duration S] [-- --json FILE] [-- --skip hits,steady,miss,enqueue,pipeline,slow,backfill]
//
// Prints one table on stdout (progress goes to stderr). HTTP load comes from autocannon
// (programmatic API); the ceiling is a raw primary-key read from Postgres with postgres.js.
// Every user the bench creates is named bench-<run>-…@bench.test and deleted at the end (also on
// failure or Ctrl-C). The 100,000-user backfill runs inside a transaction that is rolled back, so
// none of its jobs is ever dispatched. Exit 1 if any measured run has more than 1 % errors.
// Other options: --users N (cache-hit users, 50), --connections N (64), --api-url URL (another
// functions runtime).
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import autocannon from 'autocannon';
import postgres from 'postgres';
import { API_URL, DB_URL, keys } from '../tests/helpers/stack.ts';
import { defaultNarrative, startFakeGemini, type FakeGemini } from '../tests/helpers/fake-gemini.ts';
import { RUN_DIR } from '../local/config.ts';
import { useFunctionsEnv } from '../local/functions-env.ts';

// ---------------------------------------------------------------------------------------------
// Options

function parseArgs(argv: string[]) {
  const o = { duration: 10, json: null as string | null, skip: new Set<string>(), users: 50, connections: 64, apiUrl: API_URL };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a.startsWith('--duration')) o.duration = Number(val());
    else if (a.startsWith('--json')) o.json = val();
    else if (a.startsWith('--skip')) val().split(',').filter(Boolean).forEach((s) => o.skip.add(s.trim()));
    else if (a.startsWith('--users')) o.users = Number(val());
    else if (a.startsWith('--connections')) o.connections = Number(val());
    else if (a.startsWith('--api-url')) o.apiUrl = val().replace(/\/+$/, '');
    else if (a === '--help' || a === '-h') {
      console.log('usage: npm run bench -- [--duration S] [--json FILE] [--skip hits,steady,miss,enqueue,pipeline,slow,backfill] [--users N] [--connections N] [--api-url URL]');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!(o.duration > 0)) throw new Error('--duration must be a positive number of seconds');
  if (!(o.users >= 1) || !(o.connections >= 1)) throw new Error('--users and --connections must be >= 1');
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const D = opts.duration;
const API = opts.apiUrl;
const CONNS = opts.connections;
const WARMUP_S = 2;
const STEADY_RATE = 500;
const RATE_SLICES = 10;
const MISS_REQUESTS = 200;
const MISS_CONNS = 4;
const MISS_MEMORIES = 10_000;
const ENQUEUE_USERS = 100;
const ENQUEUE_WORKERS = 4;
// A provider as slow as a real long generation, with concurrent enqueues: shows whether one
// slow call holds back the dispatches queued after it (pg_net works batch by batch).
const SLOW_PROVIDER_MS = 30_000;
const SLOW_PROVIDER_JOBS = 20;
const PIPELINE_JOBS = 200;
const BACKFILL_USERS = 100_000;
const MAX_ERROR_RATE = 0.01;

const RUN = crypto.randomBytes(4).toString('hex');
const EMAIL_PREFIX = `bench-${RUN}-`;
const benchStarted = performance.now();

function progress(msg: string) {
  process.stderr.write(`[bench +${((performance.now() - benchStarted) / 1000).toFixed(1)}s] ${msg}\n`);
}

// ---------------------------------------------------------------------------------------------
// Figures

interface Row {
  key: string;
  measurement: string;
  n: number | null;
  errors: number | null;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  rate: number | null;
  measured: string;
  target: string;
  verdict: 'PASS' | 'MISS' | '—' | 'FAIL';
  detail?: Record<string, unknown>;
}

const rows: Row[] = [];
const notes: string[] = [];

function percentile(sorted: Float64Array, p: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function summarize(lat: number[]) {
  const s = Float64Array.from(lat).sort();
  return { p50: percentile(s, 50), p95: percentile(s, 95), p99: percentile(s, 99) };
}

// ---------------------------------------------------------------------------------------------
// Load generation

interface LoadResult {
  total: number; // responses + connection errors/timeouts
  ok: number;
  non2xx: number;
  errors: number;
  mismatches: number;
  statuses: Record<string, number>;
  lat: number[];
  elapsedS: number;
  bodyHits: number;
  /** ms between the last response and the end of the run when the server stopped answering. */
  stalledMs: number;
  /** orchestrate's own `timing_ms` (handler start → response built, inside the function). */
  serverMs: number[];
}

interface LoadSpec {
  /** The request list of the k-th connection (rotated so connections walk through users' tokens). */
  requestsFor: (k: number) => autocannon.Request[];
  connections: number;
  duration?: number;
  amount?: number;
  overallRate?: number;
  /** What a correct response body contains (a 200 that is not the expected answer is an error). */
  expect: string;
  /** Counted, not required: how many bodies contain this. */
  countBodies?: string;
}

function runAutocannon(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    let k = 0;
    const r: LoadResult = { total: 0, ok: 0, non2xx: 0, errors: 0, mismatches: 0, statuses: {}, lat: [], elapsedS: 0, bodyHits: 0, stalledMs: 0, serverMs: [] };
    const t0 = performance.now();
    let lastResponse = t0;
    const inst = autocannon({
      url: API,
      connections: spec.connections,
      ...(spec.duration !== undefined ? { duration: spec.duration } : {}),
      ...(spec.amount !== undefined ? { amount: spec.amount } : {}),
      ...(spec.overallRate !== undefined ? { overallRate: spec.overallRate } : {}),
      timeout: 10,
      requests: spec.requestsFor(0),
      setupClient: (client) => client.setRequests(spec.requestsFor(k++)),
      verifyBody: (body) => {
        const text = String(body ?? '');
        if (spec.countBodies && text.includes(spec.countBodies)) r.bodyHits++;
        const timing = /"timing_ms":([\d.]+)/.exec(text);
        if (timing) r.serverMs.push(Number(timing[1]));
        return text.includes(spec.expect);
      },
    }, (err, result) => {
      const end = performance.now();
      r.elapsedS = (end - t0) / 1000;
      // autocannon drops requests still in flight when the duration ends: a server that stopped
      // answering near the end would look clean. A silent tail counts every connection as failed.
      if (spec.duration !== undefined && end - lastResponse > 2000) {
        r.stalledMs = end - lastResponse;
        r.total += spec.connections;
        r.errors += spec.connections;
      }
      if (err) reject(err);
      else resolve(r);
    });
    inst.on('response', (_client, status, _bytes, responseTime) => {
      lastResponse = performance.now();
      r.total++;
      r.statuses[status] = (r.statuses[status] ?? 0) + 1;
      if (status >= 200 && status < 300) r.ok++;
      else r.non2xx++;
      r.lat.push(responseTime);
    });
    const ee = inst as unknown as NodeJS.EventEmitter;
    ee.on('reqError', () => {
      r.total++;
      r.errors++;
    });
    ee.on('reqMismatch', () => {
      r.mismatches++;
    });
  });
}

function serverTiming(label: string, r: LoadResult) {
  if (r.serverMs.length === 0) return;
  const s = summarize(r.serverMs);
  notes.push(`${label}: the function's own timing_ms (inside the handler, after gateway and JWT check) p50 ${s.p50?.toFixed(1)} / `
    + `p95 ${s.p95?.toFixed(1)} / p99 ${s.p99?.toFixed(1)} ms; the rest of the client latency is queueing and transport.`);
}

function badOf(r: LoadResult): number {
  return r.non2xx + r.errors + r.mismatches;
}

function describeBad(r: LoadResult): string {
  const parts = Object.entries(r.statuses).filter(([s]) => !s.startsWith('2')).map(([s, c]) => `${c}×${s}`);
  if (r.stalledMs) parts.push(`no answer at all in the last ${(r.stalledMs / 1000).toFixed(1)} s (in-flight requests counted as errors)`);
  if (r.errors) parts.push(`${r.errors} conn errors/timeouts`);
  if (r.mismatches) parts.push(`${r.mismatches} unexpected bodies`);
  return parts.join(', ') || 'none';
}

const failedRuns: string[] = [];
/** Set when the functions stop answering: later HTTP steps are skipped instead of timing out. */
let httpBroken: string | null = null;
function checkErrors(label: string, total: number, bad: number, how: string) {
  if (total === 0 || bad / total > MAX_ERROR_RATE) {
    failedRuns.push(`${label}: ${bad}/${total} bad (${how})`);
  }
}

// ---------------------------------------------------------------------------------------------
// Stack access

const sql = postgres(DB_URL, { max: 8, onnotice: () => {}, connection: { application_name: 'bench' } });
const k = keys();

interface BenchUser { id: string; email: string; token: string }

async function authFetch(pathname: string, apikey: string, body: unknown, bearer?: string) {
  const res = await fetch(`${API}/auth/v1${pathname}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', apikey, ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST /auth/v1${pathname}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** A user made through the Auth admin API, signed in with a password: a real access token. */
async function createApiUser(tag: string): Promise<BenchUser> {
  const email = `${EMAIL_PREFIX}${tag}@bench.test`;
  const password = `pw-${crypto.randomUUID()}`;
  const user = await authFetch('/admin/users', k.serviceRoleKey, { email, password, email_confirm: true }, k.serviceRoleKey);
  const session = await authFetch('/token?grant_type=password', k.anonKey, { email, password });
  if (typeof user.id !== 'string' || typeof session.access_token !== 'string') throw new Error('unexpected Auth answer');
  return { id: user.id, email, token: session.access_token };
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }));
  return out;
}

/** Users straight in auth.users (no password): for pipeline steps that never call the API. */
async function createDbUsers(tag: string, count: number): Promise<string[]> {
  const r = await sql<{ id: string }[]>`
    insert into auth.users (id, email)
    select gen_random_uuid(), ${EMAIL_PREFIX + tag + '-'} || g || '@bench.test' from generate_series(1, ${count}) g
    returning id`;
  return r.map((x) => x.id);
}

const WORDS = [
  'rust', 'compiler', 'marathon', 'training', 'garden', 'tomatoes', 'kubernetes', 'cluster', 'postgres', 'index',
  'guitar', 'practice', 'python', 'refactor', 'budget', 'travel', 'japan', 'kyoto', 'coffee', 'espresso',
  'daughter', 'school', 'meeting', 'investor', 'startup', 'launch', 'recipe', 'pasta', 'bicycle', 'commute',
  'novel', 'writing', 'chess', 'opening', 'piano', 'sonata', 'climbing', 'boulder', 'mortgage', 'house',
  'typescript', 'migration', 'deadline', 'review', 'podcast', 'interview', 'sleep', 'insulin', 'yoga', 'camera',
  'photography', 'wedding', 'anniversary', 'taxes', 'invoice', 'client', 'design', 'figma', 'database', 'latency',
];
const TEMPLATES = ['The user mentioned', 'Working on', 'Asked about', 'Prefers', 'Is planning', 'Worried about', 'Enjoys', 'Finished'];

/** `perUser` active memories for each user, set-based, with varied words so full-text search has work. */
async function addMemories(db: postgres.Sql | postgres.TransactionSql, userIds: string[] | null, perUser: number, fromTable?: string) {
  const words = WORDS;
  const templates = TEMPLATES;
  const source = fromTable
    ? db`select id from ${db(fromTable)}`
    : db`select unnest(${userIds!}::uuid[]) as id`;
  await db`
    with w as (select ${words}::text[] as a, ${templates}::text[] as t),
    u as (${source})
    insert into public.memories (user_id, content, created_at, metadata)
    select u.id,
      w.t[1 + floor(random() * array_length(w.t, 1))::int] || ' ' ||
      w.a[1 + floor(random() * array_length(w.a, 1))::int] || ' and ' ||
      w.a[1 + floor(random() * array_length(w.a, 1))::int] || ', mostly ' ||
      w.a[1 + floor(random() * array_length(w.a, 1))::int] || ' ' ||
      w.a[1 + floor(random() * array_length(w.a, 1))::int] || ' during the ' ||
      w.a[1 + floor(random() * array_length(w.a, 1))::int] || ' week (note ' || g || ')',
      now() - make_interval(mins => ${perUser} - g),
      case when g % 3 = 0 then jsonb_build_object('importance', round(random()::numeric, 2)) else '{}'::jsonb end
    from u, w, generate_series(1, ${perUser}) g`;
}

const MISS_MESSAGES = [
  'How is my rust compiler project going?',
  'marathon training plan for next month',
  'what should I cook tonight, maybe pasta',
  'kubernetes cluster upgrade checklist',
  'tips for the investor meeting',
  'help me plan the japan travel budget',
  'piano practice routine',
  'postgres index advice for latency',
  'ideas for the wedding anniversary',
  'my daughter school schedule',
  'chess opening to study',
  'typescript migration deadline',
  'coffee',
  'climbing at the boulder gym with my camera',
  'review the figma design for the client',
  'remind me what I said about taxes and the invoice',
  'podcast interview prep',
  'sleep and yoga',
  'Can you help me write the next chapter of my novel? I keep getting stuck on the writing.',
  'mortgage house',
];

async function portFree(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => { s.destroy(); resolve(false); });
    s.once('error', () => resolve(true));
    s.setTimeout(1000, () => { s.destroy(); resolve(true); });
  });
}

/** Which provider the running functions use (from the env file the runtime was started with). */
function functionsProvider(): { kind: 'gemini' | 'local'; baseUrl: string | null; envFile: string } {
  let envFile = path.resolve('supabase/functions/.env');
  try {
    const recorded = fs.readFileSync(path.join(RUN_DIR, 'runtime.functions-env'), 'utf8').trim();
    if (recorded) envFile = recorded;
  } catch { /* default env */ }
  let text = '';
  try { text = fs.readFileSync(envFile, 'utf8'); } catch { /* no env file: offline writer */ }
  const env = Object.fromEntries(text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#') && l.includes('='))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  return env.GEMINI_API_KEY ? { kind: 'gemini', baseUrl: env.GEMINI_BASE_URL ?? null, envFile } : { kind: 'local', baseUrl: null, envFile };
}

// ---------------------------------------------------------------------------------------------
// Cleanup

let cleanedUp = false;
let fake: FakeGemini | undefined;
async function cleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  try {
    if (fake) await fake.close().catch(() => {});
    fake = undefined;
    progress('cleanup: deleting every bench user (cascade removes memories, jobs, narratives)');
    const [{ n }] = await sql<{ n: number }[]>`
      with d as (delete from auth.users where email like ${EMAIL_PREFIX + '%'} returning 1) select count(*)::int as n from d`;
    progress(`cleanup: deleted ${n} users`);
  } catch (err) {
    progress(`cleanup FAILED: ${(err as Error).message} — delete users with email like '${EMAIL_PREFIX}%' by hand`);
  } finally {
    await sql.end({ timeout: 5 }).catch(() => {});
  }
}

// A closed pipe (e.g. `npm run bench | head`) must not kill the bench before it cleans up.
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    progress(`${sig}: cleaning up`);
    cleanup().finally(() => process.exit(130));
  });
}

/** Why the functions might not answer: connections of their pool stuck inside transactions. */
async function wedgeDiagnosis(): Promise<string> {
  const [r] = await sql<{ n: number; oldest: number | null }[]>`
    select count(*)::int as n, max(extract(epoch from now() - xact_start))::int as oldest from pg_stat_activity
    where application_name = 'edge-functions' and state = 'idle in transaction' and now() - state_change > interval '5 seconds'`;
  return r.n > 0
    ? `${r.n} 'edge-functions' connections have been idle in transaction for up to ${r.oldest} s: the functions' connection pool `
      + 'looks deadlocked (every pooled connection holds a transaction that waits for another pooled connection).'
    : '';
}

async function afterHttpRun(label: string, r: LoadResult) {
  if (r.total > 0 && badOf(r) / r.total <= 0.5 && !r.stalledMs) return;
  const why = await wedgeDiagnosis();
  httpBroken = `${label}: ${r.total === 0 ? 'no answer at all' : describeBad(r)}${why ? ` — ${why}` : ''}`;
  progress(`the functions are not answering properly (${httpBroken}); skipping the remaining HTTP steps`);
  notes.push(`ABORTED HTTP steps after ${httpBroken}`);
}

/** One request of each kind before any load, so a broken stack fails fast and clearly. */
async function preflight(u: BenchUser) {
  const checks = [
    { method: 'POST', p: '/functions/v1/orchestrate', body: JSON.stringify({ user_message: 'hi', is_new_conversation: true }), expect: HIT_EXPECT.orchestrate },
    { method: 'GET', p: '/functions/v1/narrative', body: undefined, expect: HIT_EXPECT.narrative },
  ];
  for (const c of checks) {
    const res = await fetch(`${API}${c.p}`, {
      method: c.method, body: c.body, signal: AbortSignal.timeout(5000),
      headers: { authorization: `Bearer ${u.token}`, ...(c.body ? { 'content-type': 'application/json' } : {}) },
    }).catch(() => null);
    if (!res) throw new Error(`preflight: ${c.method} ${c.p} did not answer within 5 s. ${await wedgeDiagnosis()}`);
    const text = await res.text();
    if (res.status !== 200 || !text.includes(c.expect)) {
      throw new Error(`preflight: ${c.method} ${c.p} answered HTTP ${res.status} ${text.slice(0, 200)} (expected 200 with ${c.expect})`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Steps

function hitRequests(users: BenchUser[], kind: 'orchestrate' | 'narrative') {
  const body = JSON.stringify({ user_message: 'hi', is_new_conversation: true });
  return (c: number): autocannon.Request[] => users.map((_, i) => {
    const u = users[(i + c) % users.length];
    return kind === 'orchestrate'
      ? { method: 'POST', path: '/functions/v1/orchestrate', headers: { authorization: `Bearer ${u.token}`, 'content-type': 'application/json' }, body }
      : { method: 'GET', path: '/functions/v1/narrative', headers: { authorization: `Bearer ${u.token}` } };
  });
}

const HIT_EXPECT = { orchestrate: '"source":"narrative"', narrative: '"narrative":"' } as const;

async function measureHits(users: BenchUser[], kind: 'orchestrate' | 'narrative'): Promise<{ r: LoadResult; row: Row }> {
  const label = kind === 'orchestrate' ? 'cache-hit POST /orchestrate' : 'cache-hit GET /narrative';
  progress(`${label}: warm-up ${WARMUP_S} s at ${CONNS} connections`);
  await afterHttpRun(`${label} warm-up`, await runAutocannon({ requestsFor: hitRequests(users, kind), connections: CONNS, duration: WARMUP_S, expect: HIT_EXPECT[kind] }));
  if (httpBroken) throw new Error(`warm-up failed: ${httpBroken}`);
  progress(`${label}: measuring ${D} s at ${CONNS} connections`);
  const r = await runAutocannon({ requestsFor: hitRequests(users, kind), connections: CONNS, duration: D, expect: HIT_EXPECT[kind] });
  await afterHttpRun(label, r);
  const s = summarize(r.lat);
  const bad = badOf(r);
  checkErrors(label, r.total, bad, describeBad(r));
  const rate = r.ok / r.elapsedS;
  serverTiming(label, r);
  progress(`${label}: ${r.total} requests, ${rate.toFixed(0)} req/s, p95 ${s.p95?.toFixed(2)} ms, bad: ${describeBad(r)}`);
  const row: Row = {
    key: `hit_${kind}`, measurement: `${label}, ${CONNS} conns, ${D} s`, n: r.total, errors: bad, ...s, rate,
    measured: `${rate.toFixed(0)} req/s`, target: 'see ratio', verdict: '—', detail: { statuses: r.statuses },
  };
  rows.push(row);
  return { r, row };
}

async function measureRawReads(userIds: string[]): Promise<Row> {
  const pool = postgres(DB_URL, { max: CONNS, prepare: true, onnotice: () => {}, connection: { application_name: 'bench-raw' } });
  try {
    const runFor = async (seconds: number) => {
      const lat: number[] = [];
      let errors = 0;
      let rowsMissing = 0;
      const deadline = performance.now() + seconds * 1000;
      const t0 = performance.now();
      await Promise.all(Array.from({ length: CONNS }, async (_, c) => {
        let i = c;
        while (performance.now() < deadline) {
          const id = userIds[i++ % userIds.length];
          const t = performance.now();
          try {
            const r = await pool`select narrative_content, version, generated_at from public.user_narratives where user_id = ${id}`;
            lat.push(performance.now() - t);
            if (r.length !== 1) rowsMissing++;
          } catch {
            errors++;
          }
        }
      }));
      return { lat, errors, rowsMissing, elapsedS: (performance.now() - t0) / 1000 };
    };
    progress(`raw PK read (postgres.js, pool of ${CONNS}, prepared): warm-up ${WARMUP_S} s`);
    await runFor(WARMUP_S);
    progress(`raw PK read: measuring ${D} s with ${CONNS} concurrent clients`);
    const r = await runFor(D);
    const s = summarize(r.lat);
    const total = r.lat.length + r.errors;
    const bad = r.errors + r.rowsMissing;
    checkErrors('raw PK read', total, bad, `${r.errors} errors, ${r.rowsMissing} without a row`);
    const rate = r.lat.length / r.elapsedS;
    progress(`raw PK read: ${total} queries, ${rate.toFixed(0)} q/s, p95 ${s.p95?.toFixed(2)} ms`);
    const row: Row = {
      key: 'raw_pk_read', measurement: `ceiling: raw PK read, postgres.js ${CONNS} conns, ${D} s`, n: total, errors: bad, ...s, rate,
      measured: `${rate.toFixed(0)} q/s`, target: '(ceiling)', verdict: '—',
    };
    rows.push(row);
    return row;
  } finally {
    await pool.end({ timeout: 5 });
  }
}

/** Fixed 500 req/s, spread over the second: RATE_SLICES autocannon instances of overallRate
 *  500/RATE_SLICES each, started 1000/RATE_SLICES ms apart (one instance bursts its whole
 *  per-second quota at the start of each second). */
async function measureSteady(users: BenchUser[]): Promise<void> {
  const label = `cache-hit POST /orchestrate at a fixed ${STEADY_RATE} req/s`;
  const slice = async (duration: number) => {
    const parts = await Promise.all(Array.from({ length: RATE_SLICES }, async (_, i) => {
      await new Promise((res) => setTimeout(res, (i * 1000) / RATE_SLICES));
      return runAutocannon({
        requestsFor: (c) => hitRequests(users, 'orchestrate')(c + i * 7), connections: 1, duration,
        overallRate: STEADY_RATE / RATE_SLICES, expect: HIT_EXPECT.orchestrate,
      });
    }));
    const merged: LoadResult = { total: 0, ok: 0, non2xx: 0, errors: 0, mismatches: 0, statuses: {}, lat: [], elapsedS: duration, bodyHits: 0, stalledMs: 0, serverMs: [] };
    for (const p of parts) {
      merged.stalledMs = Math.max(merged.stalledMs, p.stalledMs);
      merged.total += p.total; merged.ok += p.ok; merged.non2xx += p.non2xx; merged.errors += p.errors; merged.mismatches += p.mismatches;
      for (const [s, c] of Object.entries(p.statuses)) merged.statuses[s] = (merged.statuses[s] ?? 0) + c;
      for (const l of p.lat) merged.lat.push(l);
      for (const l of p.serverMs) merged.serverMs.push(l);
    }
    return merged;
  };
  progress(`${label}: warm-up ${WARMUP_S} s`);
  await slice(WARMUP_S);
  progress(`${label}: measuring ${D} s (${RATE_SLICES} staggered autocannon instances, overallRate ${STEADY_RATE / RATE_SLICES} each)`);
  const r = await slice(D);
  await afterHttpRun(label, r);
  const s = summarize(r.lat);
  const bad = badOf(r);
  checkErrors(label, r.total, bad, describeBad(r));
  const rate = r.ok / D;
  serverTiming(label, r);
  const achieved = rate >= STEADY_RATE * 0.95;
  progress(`${label}: ${r.total} requests (${rate.toFixed(0)} req/s achieved), p95 ${s.p95?.toFixed(2)} ms`);
  rows.push({
    key: 'steady_orchestrate', measurement: `${label}, ${D} s`, n: r.total, errors: bad, ...s, rate,
    measured: `p95 ${s.p95?.toFixed(2)} ms`, target: `p95 ≤ 10 ms @ ${STEADY_RATE}/s`,
    verdict: s.p95 !== null && s.p95 <= 10 && achieved ? 'PASS' : 'MISS', detail: { achieved_rate_ok: achieved, statuses: r.statuses },
  });
}

async function measureMiss(): Promise<void> {
  const label = `cache-miss POST /orchestrate, ${MISS_MEMORIES.toLocaleString('en-US')} memories`;
  progress(`${label}: creating the user (Auth admin API) and ${MISS_MEMORIES} memories`);
  const u = await createApiUser('miss');
  await addMemories(sql, [u.id], MISS_MEMORIES);
  await sql`analyze public.memories`;
  // No narrative, and a held job: every call takes the whole miss path (read: no narrative,
  // request_narrative: eligible, enqueue finds the active job) and no generation can turn the
  // user into a cache hit during the measurement. The lease is the bench's; the row goes with the user.
  await sql`
    insert into public.narrative_jobs (user_id, reason, status, attempts, started_at, locked_until, lease_token)
    values (${u.id}, 'cache_miss', 'running', 1, now(), now() + interval '10 minutes', gen_random_uuid())`;
  const requestsFor = (c: number): autocannon.Request[] => MISS_MESSAGES.map((_, i) => ({
    method: 'POST', path: '/functions/v1/orchestrate',
    headers: { authorization: `Bearer ${u.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ user_message: MISS_MESSAGES[(i + c * 5) % MISS_MESSAGES.length], is_new_conversation: true }),
  }));
  const spec = { requestsFor, connections: MISS_CONNS, expect: '"source":"fallback"', countBodies: 'Related to the current message' };
  progress(`${label}: warm-up ${WARMUP_S} s at ${MISS_CONNS} connections`);
  await runAutocannon({ ...spec, duration: WARMUP_S });
  progress(`${label}: measuring ${MISS_REQUESTS} requests at ${MISS_CONNS} connections`);
  const r = await runAutocannon({ ...spec, amount: MISS_REQUESTS });
  await afterHttpRun(label, r);
  const [still] = await sql<{ n: number }[]>`select count(*)::int as n from public.user_narratives where user_id = ${u.id}`;
  if (still.n !== 0) notes.push('WARNING: the cache-miss user got a narrative during the measurement; some calls may have been hits.');
  await sql`delete from public.narrative_jobs where user_id = ${u.id}`;
  const s = summarize(r.lat);
  const bad = badOf(r);
  checkErrors(label, r.total, bad, describeBad(r));
  const rate = r.ok / r.elapsedS;
  serverTiming(label, r);
  progress(`${label}: ${r.total} requests, p95 ${s.p95?.toFixed(1)} ms, ${r.bodyHits} with full-text matches, bad: ${describeBad(r)}`);
  notes.push(`cache miss: ${r.bodyHits} of ${r.ok} miss answers carried full-text matches ("Related to the current message"); `
    + 'the rest had recent memories only (no match for the message, or the search hit the fallback_timeout_ms budget). '
    + 'The user had no narrative and an active (held) job, so each call ran read → request_narrative → enqueue (finds the active job) → memory context.');
  rows.push({
    key: 'miss_orchestrate', measurement: `${label}, ${MISS_CONNS} conns`, n: r.total, errors: bad, ...s, rate,
    measured: `p95 ${s.p95?.toFixed(1)} ms`, target: 'p95 ≤ 300 ms', verdict: s.p95 !== null && s.p95 <= 300 ? 'PASS' : 'MISS',
    detail: { fts_answers: r.bodyHits, statuses: r.statuses },
  });
}

async function ensureProvider(): Promise<string> {
  const p = functionsProvider();
  if (p.kind === 'local') return `offline writer (functions env ${path.relative(process.cwd(), p.envFile)} has no GEMINI_API_KEY)`;
  const m = p.baseUrl ? /^https?:\/\/(127\.0\.0\.1|localhost):(\d+)/.exec(p.baseUrl) : null;
  if (!m) return `Gemini at ${p.baseUrl ?? 'the real API'} (not a local fake — not instant)`;
  const port = Number(m[2]);
  if (!(await portFree(port))) return `fake Gemini on ${port} run by another process (its behaviour is whatever it was set to)`;
  if (port !== 54330) return `nothing answers on ${port} (jobs will fail)`;
  try {
    fake = await startFakeGemini({ port, apiKey: 'fake-gemini-key' });
    return `fake Gemini on ${port}, started by the bench in-process (instant 'ok' answers)`;
  } catch (err) {
    return `fake Gemini on ${port}: could not start (${(err as Error).message})`;
  }
}

async function releaseProvider() {
  if (fake) {
    await fake.close().catch(() => {});
    fake = undefined;
    progress('stopped the in-process fake Gemini (port 54330 free again)');
  }
}

interface JobTiming { status: string; ms: number | null; created: Date; finished: Date | null }

async function jobTimings(ids: number[]): Promise<Map<number, JobTiming>> {
  const r = await sql<{ id: number; status: string; ms: number | null; created_at: Date; finished_at: Date | null }[]>`
    select id::int, status, extract(epoch from finished_at - created_at) * 1000 as ms, created_at, finished_at
    from public.narrative_jobs where id = any(${ids}::bigint[])`;
  return new Map(r.map((x) => [x.id, { status: x.status, ms: x.ms === null ? null : Number(x.ms), created: x.created_at, finished: x.finished_at }]));
}

async function othersInQueue(mine: string): Promise<string> {
  const [r] = await sql<{ queued: number; running: number }[]>`
    select count(*) filter (where j.status = 'queued')::int as queued, count(*) filter (where j.status = 'running')::int as running
    from public.narrative_jobs j join auth.users u on u.id = j.user_id
    where j.status in ('queued', 'running') and u.email not like ${mine}`;
  return `${r.running} running / ${r.queued} queued`;
}

async function measureEnqueue(provider: string): Promise<void> {
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
      const why = await wedgeDiagnosis();
      const msg = `warm-up job ${j.job_id} is ${x?.status ?? 'gone'} after 20 s${why ? ` — ${why}` : ''}`;
      failedRuns.push(`${label}: ${msg}`);
      notes.push(`SKIPPED enqueue → stored and pipeline throughput: ${msg}`);
      progress(`${label}: ${msg}; skipping the pipeline steps`);
      pipelineBroken = true;
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
  progress(`${label}: ${lat.length}/${ids.length} succeeded, p50 ${s.p50?.toFixed(0)} ms, p95 ${s.p95?.toFixed(0)} ms`);
  notes.push(`enqueue → stored: DB timestamps (narrative_jobs.finished_at − created_at; the narrative is stored in the transaction that sets finished_at); `
    + `provider: ${provider}; other users' jobs active at the start: ${others}.`);
  rows.push({
    key: 'enqueue_to_stored', measurement: `${label}, ${ENQUEUE_WORKERS} at a time`, n: ids.length, errors: bad, ...s,
    rate: span > 0 ? lat.length / span : null, measured: `p95 ${s.p95?.toFixed(0)} ms`, target: 'p95 ≤ 2000 ms',
    verdict: s.p95 !== null && s.p95 <= 2000 ? 'PASS' : 'MISS',
  });
}

async function measureSlowProvider(): Promise<void> {
  const label = `enqueue → stored, ${SLOW_PROVIDER_JOBS} concurrent enqueues, ${SLOW_PROVIDER_MS / 1000} s provider`;
  if (!fake) {
    notes.push(`SKIPPED ${label}: it needs the bench's own fake Gemini on 54330.`);
    return;
  }
  progress(`${label}: functions on tests/functions.slow-provider.env, max_concurrency ${SLOW_PROVIDER_JOBS}`);
  useFunctionsEnv('tests/functions.slow-provider.env');
  const [saved] = await sql<{ max_concurrency: number }[]>`select max_concurrency from private.settings`;
  await sql`update private.settings set max_concurrency = ${SLOW_PROVIDER_JOBS}`;
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
    progress(`${label}: ${lat.length}/${jobIds.length} succeeded, p50 ${s.p50?.toFixed(0)} ms, p95 ${s.p95?.toFixed(0)} ms`);
    rows.push({
      key: 'enqueue_to_stored_slow_provider', measurement: label, n: jobIds.length, errors: bad, ...s, rate: null,
      measured: `p95 ${s.p95?.toFixed(0)} ms`, target: `p95 ≤ ${target} ms`,
      verdict: s.p95 !== null && s.p95 <= target ? 'PASS' : 'MISS',
    });
    notes.push(`${label}: every job's request is answered 202 at claim, so pg_net's next batch never waits for a generation; `
      + `target = one provider call + 5 s.`);
  } finally {
    fake.setDefault({ kind: 'ok' });
    await sql`update private.settings set max_concurrency = ${saved.max_concurrency}`;
    useFunctionsEnv('tests/functions.env');
  }
}

async function pollJobs(ids: number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [r] = await sql<{ n: number }[]>`
      select count(*)::int as n from public.narrative_jobs where id = any(${ids}::bigint[]) and status in ('succeeded', 'failed')`;
    if (r.n >= ids.length) return;
    await new Promise((res) => setTimeout(res, ids.length > 1 ? 100 : 15));
  }
}

async function measurePipeline(provider: string): Promise<void> {
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
    key: 'pipeline_jobs_per_s', measurement: `${label} (jobs/s)`, n: jobIds.length, errors: bad, ...s, rate,
    measured: `${rate.toFixed(1)} jobs/s`, target: '(informational)', verdict: '—',
  });
}

class Rollback extends Error {}
let pipelineBroken = false;

async function measureBackfill(): Promise<void> {
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
    p50: null, p95: null, p99: null, rate: result.enqueued / seconds, measured: `${seconds.toFixed(2)} s`, target: '≤ 5 s',
    verdict: seconds <= 5 ? 'PASS' : 'MISS', detail: { seconds, ...result },
  });
}

// ---------------------------------------------------------------------------------------------
// Output

function fmt(v: number | null, digits = 2): string {
  if (v === null || !Number.isFinite(v)) return '—';
  return v >= 100 ? v.toFixed(0) : v.toFixed(digits);
}

function table(): string {
  const header = ['measurement', 'n', 'errors', 'p50 ms', 'p95 ms', 'p99 ms', 'req/s', 'measured', 'target', 'verdict'];
  const body = rows.map((r) => [
    r.measurement, r.n === null ? '—' : String(r.n), r.errors === null ? '—' : String(r.errors),
    fmt(r.p50), fmt(r.p95), fmt(r.p99), r.rate === null ? '—' : r.rate >= 100 ? r.rate.toFixed(0) : r.rate.toFixed(1),
    r.measured, r.target, r.verdict,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const numeric = new Set([1, 2, 3, 4, 5, 6]);
  const line = (cells: string[]) => cells.map((c, i) => (numeric.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Main

function httpStepFailed(err: unknown): null {
  if (!httpBroken) throw err;
  progress(`HTTP step failed: ${(err as Error).message}`);
  return null;
}

async function main(): Promise<number> {
  const started = new Date();
  progress(`run ${RUN}: duration ${D} s per measurement, ${CONNS} connections, ${opts.users} users`);
  const [{ ok }] = await sql<{ ok: number }[]>`select 1 as ok`;
  if (ok !== 1) throw new Error('database not reachable');
  const health = await fetch(`${API}/auth/v1/health`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status).catch(() => 0);
  if (health !== 200) throw new Error(`the API does not answer on ${API} (npm start)`);

  // Cache-hit users: real accounts and access tokens, memories, a stored narrative each.
  progress(`creating ${opts.users} users through the Auth admin API and signing them in`);
  const users = await mapLimit(Array.from({ length: opts.users }, (_, i) => i), 4, (i) => createApiUser(`hit-${i}`));
  const ids = users.map((u) => u.id);
  progress('adding 8 memories each and storing a narrative for each (user_narratives insert)');
  await addMemories(sql, ids, 8);
  await sql`
    insert into public.user_narratives (user_id, narrative_content, version, generated_at, memories_as_of, model, source_memory_count, job_id)
    select u, ${defaultNarrative('bench-model', 8)}, 1, now(), now(), 'bench-model', 8, null from unnest(${ids}::uuid[]) u`;

  progress('preflight: one cache-hit orchestrate and one GET narrative');
  await preflight(users[0]).catch((err: Error) => {
    httpBroken = err.message;
    failedRuns.push(`preflight: ${err.message}`);
    notes.push(`ABORTED HTTP steps: ${err.message}`);
    progress(`${err.message} — skipping the HTTP steps`);
  });
  const hits = !opts.skip.has('hits');
  const hitO = httpBroken || !hits ? null : await measureHits(users, 'orchestrate').catch(httpStepFailed);
  const hitN = httpBroken || !hits ? null : await measureHits(users, 'narrative').catch(httpStepFailed);
  const raw = hits ? await measureRawReads(ids) : null;
  if (raw) for (const [hit, name] of [[hitO?.row, 'orchestrate'], [hitN?.row, 'narrative']] as const) {
    if (!hit) continue;
    const ratio = (hit.rate ?? 0) / (raw.rate ?? 1);
    rows.push({
      key: `ratio_${name}`, measurement: `${name} req/s ÷ raw reads/s`, n: null, errors: null, p50: null, p95: null, p99: null,
      rate: null, measured: ratio.toFixed(3), target: '≥ 0.5', verdict: ratio >= 0.5 ? 'PASS' : 'MISS',
    });
  }
  if (!opts.skip.has('steady') && !httpBroken) await measureSteady(users);
  if (!opts.skip.has('miss') && !httpBroken) await measureMiss();

  if (!opts.skip.has('enqueue') || !opts.skip.has('pipeline') || !opts.skip.has('slow')) {
    // Generation runs against the fake Gemini (instant answers); the default env is put back
    // when the bench ends, however it ends.
    useFunctionsEnv('tests/functions.env');
    const provider = await ensureProvider();
    progress(`provider for generation: ${provider}`);
    try {
      if (!opts.skip.has('enqueue')) await measureEnqueue(provider);
      if (!opts.skip.has('pipeline') && !pipelineBroken) await measurePipeline(provider);
      if (!opts.skip.has('slow') && !pipelineBroken) await measureSlowProvider();
    } finally {
      await releaseProvider();
    }
  }
  // Bench users are deleted before the big transaction so its backfill does not see them.
  const [{ n: deleted }] = await sql<{ n: number }[]>`
    with d as (delete from auth.users where email like ${EMAIL_PREFIX + '%'} returning 1) select count(*)::int as n from d`;
  progress(`deleted the ${deleted} bench users made so far (before the backfill, so it does not count them)`);
  if (!opts.skip.has('backfill')) await measureBackfill();

  const totalS = (performance.now() - benchStarted) / 1000;
  const cpus = os.cpus();
  const [{ version }] = await sql<{ version: string }[]>`select current_setting('server_version') as version`;
  const machine = {
    cores: cpus.length, cpu: cpus[0]?.model ?? 'unknown', node: process.version, postgres: version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`, memory_gb: Math.round(os.totalmem() / 2 ** 30),
  };
  const out = [
    table(),
    '',
    `machine: ${machine.cores} cores (${machine.cpu}), ${machine.memory_gb} GB, ${machine.platform}; Node ${machine.node}; Postgres ${machine.postgres}.`,
    `The load generator (autocannon, in this Node process), the functions (one Deno process), Postgres (with pg_net's background worker) all share these ${machine.cores} cores.`,
    `Latencies are per-request response times recorded from autocannon's response events (client side, including the load generator's own queueing).`,
    ...(rows.some((r) => r.key === 'steady_orchestrate') ? [
      `Fixed rate: ${RATE_SLICES} autocannon instances (1 connection, overallRate ${STEADY_RATE / RATE_SLICES}) started ${1000 / RATE_SLICES} ms apart, `
      + `because one autocannon instance sends each connection's per-second quota as a burst at the start of the second.`] : []),
    ...notes,
    `errors = non-2xx + connection errors/timeouts + 2xx with an unexpected body (a hit must say source "narrative"; a miss source "fallback").`,
    `total bench run time: ${totalS.toFixed(1)} s (started ${started.toISOString()}).`,
  ].join('\n');
  process.stdout.write(out + '\n');
  if (failedRuns.length) process.stdout.write(`\nFAILED: more than ${MAX_ERROR_RATE * 100} % errors in: ${failedRuns.join('; ')}\n`);

  if (opts.json) {
    fs.writeFileSync(opts.json, JSON.stringify({
      run: RUN, started_at: started.toISOString(), total_seconds: totalS, duration_seconds: D, connections: CONNS, machine,
      rows: rows.map(({ key, measurement, n, errors, p50, p95, p99, rate, measured, target, verdict, detail }) =>
        ({ key, measurement, n, errors, p50_ms: p50, p95_ms: p95, p99_ms: p99, per_second: rate, measured, target, verdict, detail })),
      notes, failed: failedRuns,
    }, null, 2) + '\n');
    progress(`wrote ${opts.json}`);
  }
  return failedRuns.length ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  progress(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  code = 1;
} finally {
  await cleanup();
}
process.exit(code);
