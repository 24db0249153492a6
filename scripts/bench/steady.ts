// Cache-hit orchestrate at a fixed rate (latency, not throughput).
import { D, RATE_SLICES, STEADY_P95_MS, STEADY_RATE, WARMUP_S, progress } from './options.ts';
import { checkErrors, latencyText, rows, summarize, tailWithin } from './report.ts';
import { afterHttpRun, badOf, describeBad, mergeResults, runAutocannon, serverTiming } from './load.ts';
import type { BenchUser } from './fixtures.ts';
import { HIT_EXPECT, hitRequests } from './hits.ts';

/** Fixed 500 req/s, spread over the second: RATE_SLICES autocannon instances of overallRate
 *  500/RATE_SLICES each, started 1000/RATE_SLICES ms apart (one instance bursts its whole
 *  per-second quota at the start of each second). */
export async function measureSteady(users: BenchUser[]): Promise<void> {
  const label = `cache-hit POST /orchestrate at a fixed ${STEADY_RATE} req/s`;
  const slice = async (duration: number) => {
    const parts = await Promise.all(Array.from({ length: RATE_SLICES }, async (_, i) => {
      await new Promise((res) => setTimeout(res, (i * 1000) / RATE_SLICES));
      return runAutocannon({
        requestsFor: (c) => hitRequests(users, 'orchestrate')(c + i * 7), connections: 1, duration,
        overallRate: STEADY_RATE / RATE_SLICES, expect: HIT_EXPECT.orchestrate,
      });
    }));
    return mergeResults(parts, duration);
  };
  progress(`${label}: warm-up ${WARMUP_S} s`);
  await slice(WARMUP_S);
  progress(`${label}: measuring ${D} s (${RATE_SLICES} staggered autocannon instances, overallRate ${STEADY_RATE / RATE_SLICES} each)`);
  const r = await slice(D);
  afterHttpRun(label, r);
  const s = summarize(r.lat);
  const bad = badOf(r);
  checkErrors(label, r.total, bad, describeBad(r));
  const rate = r.ok / D;
  serverTiming(label, r);
  const achieved = rate >= STEADY_RATE * 0.95;
  progress(`${label}: ${r.total} requests (${rate.toFixed(0)} req/s achieved), ${latencyText(s)} ms`);
  const t = tailWithin(s, STEADY_P95_MS);
  rows.push({
    key: 'steady_orchestrate', measurement: `${label}, ${D} s`, n: r.total, errors: bad, latency: s, rate,
    measured: t.measured, target: `${t.target} @ ${STEADY_RATE}/s`,
    verdict: t.ok && achieved ? 'PASS' : 'MISS', detail: { achieved_rate_ok: achieved, statuses: r.statuses },
  });
}
