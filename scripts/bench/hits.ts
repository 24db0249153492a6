// Cache hits: POST orchestrate and GET narrative at CONNS connections, and the ceiling they are
// compared with — a raw primary-key read of the same rows straight from Postgres, same run.
import autocannon from 'autocannon';
import postgres from 'postgres';
import { DB_URL } from '../../local/config.ts';
import { API, CONNS, D, HIT_RATIO_TARGET, WARMUP_S, progress } from './options.ts';
import { checkErrors, latencyText, notes, rows, summarize, type Row } from './report.ts';
import { afterHttpRun, badOf, describeBad, runAutocannon, serverTiming, state, type LoadResult } from './load.ts';
import type { BenchUser } from './fixtures.ts';
import { describeCpu, perRequest, sampleCpu } from './cpu.ts';

/** One request of each kind before any load, so a broken stack fails fast and clearly; the
 *  size of each answer body (what a hit sends). */
export async function preflight(u: BenchUser): Promise<Record<'orchestrate' | 'narrative', number>> {
  const bodies = { orchestrate: 0, narrative: 0 };
  const checks = [
    { kind: 'orchestrate' as const, method: 'POST', p: '/functions/v1/orchestrate', body: JSON.stringify({ user_message: 'hi', is_new_conversation: true }), expect: HIT_EXPECT.orchestrate },
    { kind: 'narrative' as const, method: 'GET', p: '/functions/v1/narrative', body: undefined, expect: HIT_EXPECT.narrative },
  ];
  for (const c of checks) {
    const res = await fetch(`${API}${c.p}`, {
      method: c.method, body: c.body, signal: AbortSignal.timeout(5000),
      headers: { authorization: `Bearer ${u.token}`, ...(c.body ? { 'content-type': 'application/json' } : {}) },
    }).catch(() => null);
    if (!res) throw new Error(`preflight: ${c.method} ${c.p} did not answer within 5 s`);
    const text = await res.text();
    if (res.status !== 200 || !text.includes(c.expect)) {
      throw new Error(`preflight: ${c.method} ${c.p} answered HTTP ${res.status} ${text.slice(0, 200)} (expected 200 with ${c.expect})`);
    }
    bodies[c.kind] = Buffer.byteLength(text);
  }
  return bodies;
}

export function hitRequests(users: BenchUser[], kind: 'orchestrate' | 'narrative') {
  const body = JSON.stringify({ user_message: 'hi', is_new_conversation: true });
  return (c: number): autocannon.Request[] => users.map((_, i) => {
    const u = users[(i + c) % users.length];
    return kind === 'orchestrate'
      ? { method: 'POST', path: '/functions/v1/orchestrate', headers: { authorization: `Bearer ${u.token}`, 'content-type': 'application/json' }, body }
      : { method: 'GET', path: '/functions/v1/narrative', headers: { authorization: `Bearer ${u.token}` } };
  });
}

/** µs of CPU per request by part (runtime, postgres, bench = the load generator or the raw
 *  read's client), from each measured run: the CPU table (split.ts) reads them. */
export const cpuPerRequest: Partial<Record<'orchestrate' | 'narrative' | 'raw', Record<'runtime' | 'postgres' | 'bench', number>>> = {};

export const HIT_EXPECT = { orchestrate: '"source":"narrative"', narrative: '"narrative":"' } as const;

export async function measureHits(users: BenchUser[], kind: 'orchestrate' | 'narrative'): Promise<{ r: LoadResult; row: Row }> {
  const label = kind === 'orchestrate' ? 'cache-hit POST /orchestrate' : 'cache-hit GET /narrative';
  progress(`${label}: warm-up ${WARMUP_S} s at ${CONNS} connections`);
  afterHttpRun(`${label} warm-up`, await runAutocannon({ requestsFor: hitRequests(users, kind), connections: CONNS, duration: WARMUP_S, expect: HIT_EXPECT[kind] }));
  if (state.httpBroken) throw new Error(`warm-up failed: ${state.httpBroken}`);
  progress(`${label}: measuring ${D} s at ${CONNS} connections`);
  const cpu = sampleCpu();
  const r = await runAutocannon({ requestsFor: hitRequests(users, kind), connections: CONNS, duration: D, expect: HIT_EXPECT[kind] });
  const split = cpu();
  afterHttpRun(label, r);
  const s = summarize(r.lat);
  const bad = badOf(r);
  checkErrors(label, r.total, bad, describeBad(r));
  const rate = r.ok / r.elapsedS;
  serverTiming(label, r);
  notes.push(`${label}: ${describeCpu(split, rate, 'load generator')}.`);
  if (split) cpuPerRequest[kind] = perRequest(split, rate);
  progress(`${label}: ${r.total} requests, ${rate.toFixed(0)} req/s, ${latencyText(s)} ms, bad: ${describeBad(r)}`);
  const row: Row = {
    key: `hit_${kind}`, measurement: `${label}, ${CONNS} conns, ${D} s`, n: r.total, errors: bad, latency: s, rate,
    measured: `${rate.toFixed(0)} req/s`, target: 'see ratio', verdict: '—', detail: { statuses: r.statuses },
  };
  rows.push(row);
  return { r, row };
}

export async function measureRawReads(userIds: string[]): Promise<Row> {
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
    const cpu = sampleCpu();
    const r = await runFor(D);
    const split = cpu();
    const s = summarize(r.lat);
    const total = r.lat.length + r.errors;
    const bad = r.errors + r.rowsMissing;
    checkErrors('raw PK read', total, bad, `${r.errors} errors, ${r.rowsMissing} without a row`);
    const rate = r.lat.length / r.elapsedS;
    notes.push(`raw PK read: ${describeCpu(split, rate, 'client (postgres.js in this process)')}.`);
    if (split) cpuPerRequest.raw = perRequest(split, rate);
    progress(`raw PK read: ${total} queries, ${rate.toFixed(0)} q/s, ${latencyText(s)} ms`);
    const row: Row = {
      key: 'raw_pk_read', measurement: `ceiling: raw PK read, postgres.js ${CONNS} conns, ${D} s`, n: total, errors: bad, latency: s, rate,
      measured: `${rate.toFixed(0)} q/s`, target: '(ceiling)', verdict: '—',
    };
    rows.push(row);
    return row;
  } finally {
    await pool.end({ timeout: 5 });
  }
}

/** Each cache hit's throughput as a share of the raw read's, measured in the same run. */
export function ratioRows(hits: { name: string; row: Row | undefined }[], raw: Row): void {
  for (const { name, row } of hits) {
    if (!row) continue;
    const ratio = (row.rate ?? 0) / (raw.rate ?? 1);
    rows.push({
      key: `ratio_${name}`, measurement: `${name} req/s ÷ raw reads/s`, n: null, errors: null, latency: null, rate: null, measured: ratio.toFixed(3), target: `≥ ${HIT_RATIO_TARGET}`, verdict: ratio >= HIT_RATIO_TARGET ? 'PASS' : 'MISS',
    });
  }
}
