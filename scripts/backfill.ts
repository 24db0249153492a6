// npm run backfill -- [--min-memories N] [--dry-run] [--limit N] [--force] [--watch] [--json]
// Calls the `backfill` Edge Function (POST: enqueue narratives for existing users) and, with
// --watch, follows the queue (GET: queue health) until it drains. Works against the local stack
// or, with SUPABASE_URL + SUPABASE_SECRET_KEY (or SUPABASE_SERVICE_ROLE_KEY), a real project.
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { backfillResponse, type BackfillBody, type BackfillResponse } from '../shared/narrative.ts';
import { API_URL, KEYS_FILE } from '../local/config.ts';

const USAGE = `Usage: npm run backfill -- [options]
  --min-memories N  only users with at least N memories (default: the project's min_memories)
  --limit N         enqueue at most N users
  --force           regenerate fresh narratives too
  --dry-run         count only, enqueue nothing
  --watch           follow the queue until it drains (not with --dry-run)
  --json            print the counts as JSON
  -h, --help        show this help
Target: SUPABASE_URL + SUPABASE_SECRET_KEY (or SUPABASE_SERVICE_ROLE_KEY), else the local stack.`;

class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) { super(message); }
}

export interface ProgressState {
  done: number;        // succeeded since the watch started
  failed: number;      // failed since the watch started
  remaining: number;   // queued + running now
  rate: number | null; // finished jobs per second, null when not known yet
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** One progress line, at most `width - 1` characters (so a terminal never wraps it). */
export function renderProgress(state: ProgressState, width = 80): string {
  const finished = state.done + state.failed;
  const total = finished + state.remaining;
  const fraction = total === 0 ? 1 : finished / total;
  const eta = state.remaining === 0 ? '0s'
    : state.rate && state.rate > 0 ? formatDuration(state.remaining / state.rate) : '—';
  const rate = state.rate === null ? '—' : state.rate.toFixed(1);
  const text = ` ${String(Math.floor(fraction * 100)).padStart(3)}%  done ${state.done}  failed ${state.failed}`
    + `  left ${state.remaining}  ${rate} jobs/s  ETA ${eta}`;
  // 20 cells on an 80-column terminal; narrower only when big numbers need the room.
  const barWidth = Math.max(10, Math.min(Math.floor((width - 40) / 2), width - 1 - text.length - 2));
  const filled = Math.round(fraction * barWidth);
  return `[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]${text}`.slice(0, Math.max(width - 1, 20));
}

interface Target { url: string; headers: Record<string, string> }

function target(): Target {
  let url = process.env.SUPABASE_URL;
  let key = process.env.SUPABASE_SECRET_KEY || process.env.SUPABASE_SERVICE_ROLE_KEY;
  if (!url && key) throw new CliError('SUPABASE_SECRET_KEY/SUPABASE_SERVICE_ROLE_KEY is set but SUPABASE_URL is not.');
  if (!url) {
    if (!fs.existsSync(KEYS_FILE)) {
      throw new CliError('No SUPABASE_URL/SUPABASE_SECRET_KEY in the environment and no local stack (run npm start)');
    }
    const keys = JSON.parse(fs.readFileSync(KEYS_FILE, 'utf8')) as { secretKey?: string; serviceRoleKey?: string };
    url = API_URL;
    key = keys.secretKey || keys.serviceRoleKey;
  }
  if (!key) throw new CliError(`No key for ${url}: set SUPABASE_SECRET_KEY or SUPABASE_SERVICE_ROLE_KEY.`);
  // New secret keys go in `apikey`; the legacy service_role key is a JWT and goes in Authorization.
  const headers: Record<string, string> = key.startsWith('sb_secret_') ? { apikey: key } : { authorization: `Bearer ${key}` };
  return { url: `${url.replace(/\/+$/, '')}/functions/v1/backfill`, headers };
}

async function call<T>(t: Target, method: 'GET' | 'POST', body?: BackfillBody): Promise<T> {
  let res: Response;
  try {
    res = await fetch(t.url, {
      method,
      headers: { ...t.headers, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(60_000),
    });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    let reason = e.cause?.message ?? e.cause?.code ?? e.message;
    if (reason === 'bad port') reason = `port ${new URL(t.url).port} is one fetch refuses to use (bad port)`;
    throw new CliError(`Cannot reach ${t.url}: ${reason}. Is the URL right and the stack running?`);
  }
  const text = await res.text();
  let payload: unknown;
  try { payload = JSON.parse(text); } catch { payload = undefined; }
  if (res.ok) {
    if (payload === undefined) throw new CliError(`${method} ${t.url} answered HTTP ${res.status} with a non-JSON body.`);
    return payload as T;
  }
  const error = (payload as { error?: { code?: string; message?: string } } | undefined)?.error;
  const detail = error ? `${error.code}: ${error.message}` : (text.slice(0, 200) || res.statusText);
  if (res.status === 401 || res.status === 403) {
    throw new CliError(`The key was refused (HTTP ${res.status} ${detail}). Use the project's secret or service_role key.`);
  }
  if (res.status === 404) {
    throw new CliError(`The backfill function is not deployed at ${t.url} (HTTP 404). Deploy it with: supabase functions deploy backfill`);
  }
  throw new CliError(`${method} ${t.url} failed: HTTP ${res.status} ${detail}`);
}

interface QueueHealth {
  counts: { queued?: number; running?: number; succeeded?: number; failed?: number };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function watch(t: Target, baseline: QueueHealth, json: boolean): Promise<void> {
  const out = json ? process.stderr : process.stdout;
  const tty = out.isTTY === true;
  const started = Date.now();
  const base = { succeeded: baseline.counts.succeeded ?? 0, failed: baseline.counts.failed ?? 0 };
  const samples: { t: number; finished: number }[] = [];
  let state: ProgressState = { done: 0, failed: 0, remaining: 0, rate: null };
  let lastPlain = -Infinity;
  let pollErrors = 0;
  const elapsed = () => formatDuration((Date.now() - started) / 1000);

  process.once('SIGINT', () => {
    if (tty) out.write('\n');
    out.write(`Interrupted after ${elapsed()}: ${state.done} done, ${state.failed} failed, ${state.remaining} remaining `
      + '(queued jobs keep running in the background).\n');
    process.exit(130);
  });

  for (;;) {
    let health: QueueHealth;
    try {
      health = await call<QueueHealth>(t, 'GET');
      pollErrors = 0;
    } catch (err) {
      if (++pollErrors >= 5) { if (tty) out.write('\n'); throw err; }
      await sleep(1000);
      continue;
    }
    const c = health.counts;
    const now = Date.now();
    // Finished jobs can be pruned from the table; never count below the baseline.
    const done = Math.max(0, (c.succeeded ?? 0) - base.succeeded);
    const failed = Math.max(0, (c.failed ?? 0) - base.failed);
    samples.push({ t: now, finished: done + failed });
    while (samples.length > 2 && samples[1].t <= now - 10_000) samples.shift();
    const first = samples[0];
    const span = (now - first.t) / 1000;
    const rate = span >= 1 ? Math.max(0, (done + failed - first.finished) / span) : null;
    state = { done, failed, remaining: (c.queued ?? 0) + (c.running ?? 0), rate };

    if (tty) out.write(`\r${renderProgress(state, out.columns || 80)}\x1b[K`);
    else if (now - lastPlain >= 5000) { out.write(`${renderProgress(state, 80)}\n`); lastPlain = now; }

    if (state.remaining === 0) {
      if (tty) out.write('\n');
      const secs = (Date.now() - started) / 1000;
      const total = done + failed;
      const avg = secs > 0 && total > 0 ? `, ${(total / secs).toFixed(1)} jobs/s` : '';
      out.write(`Queue drained in ${formatDuration(secs)}: ${done} done, ${failed} failed (${total} jobs${avg}).\n`);
      return;
    }
    await sleep(1000);
  }
}

function positiveInt(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9]\d*$/.test(value)) throw new CliError(`${flag} must be a positive integer (got "${value}").`, 2);
  return Number(value);
}

function printCounts(r: BackfillResponse): void {
  const rows: [string, number][] = [['eligible', r.eligible], [r.dry_run ? 'would enqueue' : 'enqueued', r.enqueued],
    ['skipped (fresh)', r.skipped_fresh], ['skipped (active job)', r.skipped_active]];
  const w = Math.max(...rows.map(([k]) => k.length));
  const n = Math.max(...rows.map(([, v]) => String(v).length));
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${String(v).padStart(n)}`);
  if (r.dry_run) console.log('(dry run: nothing was enqueued)');
}

async function main(argv: string[]): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv, strict: true, allowPositionals: false,
      options: {
        'min-memories': { type: 'string' }, limit: { type: 'string' }, 'dry-run': { type: 'boolean' },
        force: { type: 'boolean' }, watch: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new CliError(`${(err as Error).message}\n\n${USAGE}`, 2);
  }
  if (values.help) { console.log(USAGE); return; }
  if (values.watch && values['dry-run']) throw new CliError('--watch cannot be combined with --dry-run: a dry run enqueues nothing to watch.', 2);
  const body: BackfillBody = {
    min_memories: positiveInt('--min-memories', values['min-memories']),
    limit: positiveInt('--limit', values.limit),
    dry_run: values['dry-run'] ?? false,
    force: values.force ?? false,
  };

  const t = target();
  // Baseline before enqueueing, so jobs that finish right away still count as this run's.
  const baseline = values.watch ? await call<QueueHealth>(t, 'GET') : undefined;
  const parsed = backfillResponse.safeParse(await call<unknown>(t, 'POST', body));
  if (!parsed.success) throw new CliError(`Unexpected answer from ${t.url}: ${parsed.error.issues[0]?.message}`);
  if (values.json) console.log(JSON.stringify(parsed.data));
  else printCounts(parsed.data);
  if (baseline) await watch(t, baseline, values.json ?? false);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    const cli = err instanceof CliError;
    process.stderr.write(`${cli ? err.message : `Unexpected error: ${(err as Error)?.message ?? String(err)}`}\n`);
    process.exit(cli ? err.exitCode : 1);
  });
}
