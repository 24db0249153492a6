// The bench prints percentiles only from enough samples: a "p95" of 7 runs is their maximum under
// another name. Below 100 samples it prints min / median / max and judges a p95 target on the max.
import { describe, expect, it } from 'vitest';
import { latencyText, MIN_PERCENTILE_SAMPLES, summarize, tailWithin } from './report.ts';

const ms = (n: number) => Array.from({ length: n }, (_, i) => i + 1); // 1, 2, … n ms

describe('bench latency figures', () => {
  it('has no p95 or p99 below 100 samples: min / median / max instead', () => {
    const s = summarize(ms(7));
    expect(MIN_PERCENTILE_SAMPLES, 'the soak\'s threshold too').toBe(100);
    expect(s, '7 samples').toEqual({ samples: 7, min: 1, p50: 4, p95: null, p99: null, max: 7 });
    expect(latencyText(s)).toBe('min 1.00 · median 4.00 · max 7.00');
  });

  it('prints percentiles from 100 samples up', () => {
    const s = summarize(ms(100));
    expect([s.p50, s.p95, s.p99], '100 samples').toEqual([50, 95, 99]);
    expect(latencyText(s)).toBe('p50 50.00 · p95 95.00 · p99 99.00');
  });

  it('judges a p95 target on the maximum when there are too few samples for a p95', () => {
    const few = tailWithin(summarize([...ms(6), 2500]), 2000, 's');
    expect(few, 'one slow run of 7 fails the target').toEqual({ target: 'max ≤ 2.00 s (7 samples: no p95)', measured: 'max 2.50 s', ok: false });
    const many = tailWithin(summarize([...ms(99), 2500]), 2000, 's');
    expect(many, 'one slow run of 100 is beyond the p95').toEqual({ target: 'p95 ≤ 2.00 s', measured: 'p95 0.10 s', ok: true });
  });
});
