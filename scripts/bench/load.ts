// The HTTP load generator: autocannon runs whose every response is counted and checked, and the
// shared "the functions stopped answering" state that makes later HTTP steps skip.
import autocannon from 'autocannon';
import { API, progress } from './options.ts';
import { latencyText, notes, summarize } from './report.ts';

export interface LoadResult {
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

export interface LoadSpec {
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

export function runAutocannon(spec: LoadSpec): Promise<LoadResult> {
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
    }, (err) => {
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

export function serverTiming(label: string, r: LoadResult) {
  if (r.serverMs.length === 0) return;
  notes.push(`${label}: the function's own timing_ms (inside the handler, after gateway and JWT check) ${latencyText(summarize(r.serverMs))} ms; `
    + 'the rest of the client latency is queueing and transport.');
}

export function badOf(r: LoadResult): number {
  return r.non2xx + r.errors + r.mismatches;
}

export function describeBad(r: LoadResult): string {
  const parts = Object.entries(r.statuses).filter(([s]) => !s.startsWith('2')).map(([s, c]) => `${c}×${s}`);
  if (r.stalledMs) parts.push(`no answer at all in the last ${(r.stalledMs / 1000).toFixed(1)} s (in-flight requests counted as errors)`);
  if (r.errors) parts.push(`${r.errors} conn errors/timeouts`);
  if (r.mismatches) parts.push(`${r.mismatches} unexpected bodies`);
  return parts.join(', ') || 'none';
}

/** Set when the functions stop answering: later HTTP steps are skipped instead of timing out. */
export const state = { httpBroken: null as string | null, pipelineBroken: false };

export function afterHttpRun(label: string, r: LoadResult): void {
  if (r.total > 0 && badOf(r) / r.total <= 0.5 && !r.stalledMs) return;
  state.httpBroken = `${label}: ${r.total === 0 ? 'no answer at all' : describeBad(r)}`;
  progress(`the functions are not answering properly (${state.httpBroken}); skipping the remaining HTTP steps`);
  notes.push(`ABORTED HTTP steps after ${state.httpBroken}`);
}

/** Several runs as one (the fixed-rate step runs staggered instances side by side). */
export function mergeResults(parts: LoadResult[], elapsedS: number): LoadResult {
  const merged: LoadResult = { total: 0, ok: 0, non2xx: 0, errors: 0, mismatches: 0, statuses: {}, lat: [], elapsedS, bodyHits: 0, stalledMs: 0, serverMs: [] };
  for (const p of parts) {
    merged.stalledMs = Math.max(merged.stalledMs, p.stalledMs);
    merged.total += p.total; merged.ok += p.ok; merged.non2xx += p.non2xx; merged.errors += p.errors; merged.mismatches += p.mismatches;
    merged.bodyHits += p.bodyHits;
    for (const [s, c] of Object.entries(p.statuses)) merged.statuses[s] = (merged.statuses[s] ?? 0) + c;
    for (const l of p.lat) merged.lat.push(l);
    for (const l of p.serverMs) merged.serverMs.push(l);
  }
  return merged;
}
