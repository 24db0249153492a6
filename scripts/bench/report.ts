// The figures: one row per measurement, notes under the table, runs with too many errors, and
// the table / JSON the bench prints.
import fs from 'node:fs';
import os from 'node:os';
import { MAX_ERROR_RATE } from './options.ts';

export interface Row {
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

export const rows: Row[] = [];
export const notes: string[] = [];
/** Further tables, printed under the main one (split.ts: CPU per hit by component). */
export const tables: string[] = [];

export function percentile(sorted: Float64Array, p: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function summarize(lat: number[]) {
  const s = Float64Array.from(lat).sort();
  return { p50: percentile(s, 50), p95: percentile(s, 95), p99: percentile(s, 99) };
}

export const failedRuns: string[] = [];
/** Set when the functions stop answering: later HTTP steps are skipped instead of timing out. */
export function checkErrors(label: string, total: number, bad: number, how: string) {
  if (total === 0 || bad / total > MAX_ERROR_RATE) {
    failedRuns.push(`${label}: ${bad}/${total} bad (${how})`);
  }
}

export function fmt(v: number | null, digits = 2): string {
  if (v === null || !Number.isFinite(v)) return '—';
  return v >= 100 ? v.toFixed(0) : v.toFixed(digits);
}

export function table(): string {
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

export interface RunInfo { run: string; started: Date; totalS: number; durationS: number; connections: number; postgresVersion: string; json: string | null }

/** The table and its notes on stdout; the same as JSON when asked. */
export function writeReport(info: RunInfo): void {
  const cpus = os.cpus();
  const machine = {
    cores: cpus.length, cpu: cpus[0]?.model ?? 'unknown', node: process.version, postgres: info.postgresVersion,
    platform: `${os.type()} ${os.release()} ${os.arch()}`, memory_gb: Math.round(os.totalmem() / 2 ** 30),
  };
  const out = [
    table(),
    '',
    ...tables.flatMap((t) => [t, '']),
    `machine: ${machine.cores} cores (${machine.cpu}), ${machine.memory_gb} GB, ${machine.platform}; Node ${machine.node}; Postgres ${machine.postgres}; load average at the end ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}.`,
    `The load generator (autocannon, in this Node process), the functions runtime (one Deno worker per core, local/runtime/workers.ts) and Postgres (with pg_net's background worker) all share these ${machine.cores} cores.`,
    `Latencies are per-request response times recorded from autocannon's response events (client side, including the load generator's own queueing).`,
    ...notes,
    `errors = non-2xx + connection errors/timeouts + 2xx with an unexpected body (a hit must say source "narrative"; a miss source "fallback").`,
    `total bench run time: ${info.totalS.toFixed(1)} s (started ${info.started.toISOString()}).`,
  ].join('\n');
  process.stdout.write(out + '\n');
  if (failedRuns.length) process.stdout.write(`\nFAILED: more than ${MAX_ERROR_RATE * 100} % errors in: ${failedRuns.join('; ')}\n`);
  if (info.json) {
    fs.writeFileSync(info.json, JSON.stringify({
      run: info.run, started_at: info.started.toISOString(), total_seconds: info.totalS, duration_seconds: info.durationS,
      connections: info.connections, machine,
      rows: rows.map(({ key, measurement, n, errors, p50, p95, p99, rate, measured, target, verdict, detail }) =>
        ({ key, measurement, n, errors, p50_ms: p50, p95_ms: p95, p99_ms: p99, per_second: rate, measured, target, verdict, detail })),
      tables, notes, failed: failedRuns,
    }, null, 2) + '\n');
  }
}
