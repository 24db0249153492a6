// The figures: one row per measurement, notes and further tables under it, runs with too many
// errors, and the table / JSON the bench prints (the JSON is what docs/figures/bench.json holds
// and scripts/docs-figures.ts renders into docs/performance.md).
//
// Latency: percentiles only from MIN_PERCENTILE_SAMPLES samples up (a p95 of 7 samples is their
// maximum under another name); fewer give min / median / max, and a "p95 ≤ X" target is then
// judged on the maximum, which is stricter.
import fs from 'node:fs';
import { MIN_PERCENTILE_SAMPLES } from '../soak-measure.ts';
import { machineInfo, type MachineInfo } from '../machine.ts';

export { MIN_PERCENTILE_SAMPLES };

/** A measured run with more errors than this share fails the bench (exit 1). */
export const MAX_ERROR_RATE = 0.01;

/** ms; p95 and p99 are null below MIN_PERCENTILE_SAMPLES samples. */
export interface Latency { samples: number; min: number | null; p50: number | null; p95: number | null; p99: number | null; max: number | null }

export interface Row {
  key: string;
  measurement: string;
  /** Requests, queries or jobs measured (errors included). */
  n: number | null;
  errors: number | null;
  latency: Latency | null;
  /** Per second: requests, queries, jobs or users. */
  rate: number | null;
  measured: string;
  target: string;
  verdict: 'PASS' | 'MISS' | '—' | 'FAIL';
  detail?: Record<string, unknown>;
}

/** A table printed under the main one (split.ts: CPU per hit by component). */
export interface Table { key: string; title: string; columns: string[]; rows: string[][]; notes: string[] }

export const rows: Row[] = [];
export const notes: string[] = [];
export const tables: Table[] = [];
/** What the measured rows looked like (fixtures), for the JSON and the docs. */
export const shapes: Record<string, unknown> = {};

export function percentile(sorted: Float64Array, p: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function summarize(lat: readonly number[]): Latency {
  const s = Float64Array.from(lat).sort();
  const enough = s.length >= MIN_PERCENTILE_SAMPLES;
  return {
    samples: s.length, min: s.length ? s[0] : null, p50: percentile(s, 50),
    p95: enough ? percentile(s, 95) : null, p99: enough ? percentile(s, 99) : null, max: s.length ? s[s.length - 1] : null,
  };
}

/** The figure a "p95 ≤ X" target is judged on: the p95, or the maximum below enough samples. */
export function tail(s: Latency): { name: 'p95' | 'max'; ms: number | null } {
  return s.samples >= MIN_PERCENTILE_SAMPLES ? { name: 'p95', ms: s.p95 } : { name: 'max', ms: s.max };
}

export function fmt(v: number | null, digits = 2): string {
  if (v === null || !Number.isFinite(v)) return '—';
  return v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(digits);
}

/** "p50 0.78 · p95 2.10 · p99 4.98", or "min 984 · median 1,000 · max 1,086" below enough samples. */
export function latencyText(s: Latency | null): string {
  if (!s || s.samples === 0) return '—';
  if (s.samples >= MIN_PERCENTILE_SAMPLES) return `p50 ${fmt(s.p50)} · p95 ${fmt(s.p95)} · p99 ${fmt(s.p99)}`;
  return `min ${fmt(s.min)} · median ${fmt(s.p50)} · max ${fmt(s.max)}`;
}

/** A "p95 ≤ limitMs" target on these samples: its text, what was measured and whether it holds. */
export function tailWithin(s: Latency, limitMs: number, unit: 'ms' | 's' = 'ms'): { target: string; measured: string; ok: boolean } {
  const t = tail(s);
  const show = (ms: number | null) => (unit === 's' ? `${fmt(ms === null ? null : ms / 1000)} s` : `${fmt(ms)} ms`);
  return {
    target: `${t.name} ≤ ${show(limitMs)}${t.name === 'max' ? ` (${s.samples} samples: no p95)` : ''}`,
    measured: `${t.name} ${show(t.ms)}`,
    ok: t.ms !== null && t.ms <= limitMs,
  };
}

export const failedRuns: string[] = [];
export function checkErrors(label: string, total: number, bad: number, how: string) {
  if (total === 0 || bad / total > MAX_ERROR_RATE) {
    failedRuns.push(`${label}: ${bad}/${total} bad (${how})`);
  }
}

const rateText = (r: number | null) => (r === null ? '—' : r >= 100 ? Math.round(r).toLocaleString('en-US') : r.toFixed(1));

/** The main table as aligned text (stdout). */
export function table(): string {
  const header = ['measurement', 'n', 'errors', 'latency ms', 'per s', 'measured', 'target', 'verdict'];
  const body = rows.map((r) => [
    r.measurement, r.n === null ? '—' : String(r.n), r.errors === null ? '—' : String(r.errors),
    latencyText(r.latency), rateText(r.rate), r.measured, r.target, r.verdict,
  ]);
  return aligned(header, body, new Set([1, 2, 4]));
}

function aligned(header: string[], body: string[][], numeric: Set<number>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (numeric.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)].join('\n');
}

export function tableText(t: Table): string {
  return [t.title, aligned(t.columns, t.rows, new Set(t.columns.map((_, i) => i).filter((i) => i > 0))), ...t.notes].join('\n');
}

export interface RunInfo {
  run: string; started: Date; totalS: number; durationS: number; connections: number; postgresVersion: string; json: string | null;
  machineAtStart: MachineInfo;
}

/** The table and its notes on stdout; the same as JSON when asked. */
export function writeReport(info: RunInfo): void {
  const end = machineInfo();
  const m = info.machineAtStart;
  const load = `load average (1, 5, 15 min) ${m.load_average.join(' ')} at the start, ${end.load_average.join(' ')} at the end`;
  const out = [
    table(),
    '',
    ...tables.flatMap((t) => [tableText(t), '']),
    `machine: ${m.cores} cores (${m.cpu}), ${m.memory_gb} GB, ${m.platform}; Node ${m.node}; Postgres ${info.postgresVersion}; ${load}.`,
    `The load generator (autocannon, in this Node process), the functions runtime (one Deno worker per core, local/runtime/workers.ts) and Postgres (with pg_net's background worker) all share these ${m.cores} cores.`,
    `Latencies are per-request response times recorded from autocannon's response events (client side, including the load generator's own queueing); percentiles from ${MIN_PERCENTILE_SAMPLES} samples up, else min / median / max.`,
    ...notes,
    `errors = non-2xx + connection errors/timeouts + 2xx with an unexpected body (a hit must say source "narrative"; a miss source "fallback").`,
    `total bench run time: ${info.totalS.toFixed(1)} s (started ${info.started.toISOString()}).`,
  ].join('\n');
  process.stdout.write(out + '\n');
  if (failedRuns.length) process.stdout.write(`\nFAILED: more than ${MAX_ERROR_RATE * 100} % errors in: ${failedRuns.join('; ')}\n`);
  if (info.json) {
    fs.writeFileSync(info.json, JSON.stringify({
      command: 'npm run bench', run: info.run, started_at: info.started.toISOString(), total_seconds: Math.round(info.totalS),
      duration_seconds: info.durationS, connections: info.connections,
      machine: { cores: m.cores, cpu: m.cpu, memory_gb: m.memory_gb, platform: m.platform, node: m.node, postgres: info.postgresVersion,
        load_average_start: m.load_average, load_average_end: end.load_average },
      shapes,
      rows: rows.map(({ key, measurement, n, errors, latency, rate, measured, target, verdict, detail }) =>
        ({ key, measurement, n, errors, latency_ms: latency, per_second: rate, measured, target, verdict, detail })),
      tables, notes, failed: failedRuns,
    }, (_k, v) => (typeof v === 'number' && !Number.isInteger(v) ? Number(v.toFixed(3)) : v), 2) + '\n');
  }
}
