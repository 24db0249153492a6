// Options and fixed sizes of `npm run bench` (see main.ts for the usage line).
import crypto from 'node:crypto';
import { API_URL } from '../../local/config.ts';

export function parseArgs(argv: string[]) {
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
      console.log('usage: npm run bench -- [--duration S] [--json FILE] [--skip hits,split,steady,miss,enqueue,pipeline,slow,lanes,exact,prompt,backfill] [--users N] [--connections N] [--api-url URL]');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!(o.duration > 0)) throw new Error('--duration must be a positive number of seconds');
  if (!(o.users >= 1) || !(o.connections >= 1)) throw new Error('--users and --connections must be >= 1');
  return o;
}


export const opts = parseArgs(process.argv.slice(2));
export const D = opts.duration;
export const API = opts.apiUrl;
export const CONNS = opts.connections;
export const WARMUP_S = 2;
export const STEADY_RATE = 500;
/** The steady-rate target (docs/targets.md: 5 ms, tightened from 10). */
export const STEADY_P95_MS = 5;
export const RATE_SLICES = 10;
export const MISS_REQUESTS = 200;
export const MISS_CONNS = 4;
export const MISS_MEMORIES = 10_000;
export const ENQUEUE_USERS = 100;
export const ENQUEUE_WORKERS = 4;
// A provider as slow as a real long generation, with concurrent enqueues: shows whether one
// slow call holds back the dispatches queued after it (pg_net works batch by batch).
export const SLOW_PROVIDER_MS = 30_000;
export const SLOW_PROVIDER_JOBS = 20;
export const PIPELINE_JOBS = 200;
export const BACKFILL_USERS = 100_000;
/** Cache-hit throughput ÷ the raw primary-key read's, at CONNS connections (docs/targets.md). */
export const HIT_RATIO_TARGET = 0.5;

export const RUN = crypto.randomBytes(4).toString('hex');
export const EMAIL_PREFIX = `bench-${RUN}-`;
export const benchStarted = performance.now();

export function progress(msg: string) {
  process.stderr.write(`[bench +${((performance.now() - benchStarted) / 1000).toFixed(1)}s] ${msg}\n`);
}
