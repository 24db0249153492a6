// The rules behind `npm run chaos`'s exit code (no stack): each failure is matched to the fault
// that caused it, permanent injected faults leave the floor's denominator, and a run where every
// job fails is below the floor.
import { describe, expect, it } from 'vitest';
import type { FakeCall } from '../local/fakes/gemini-behaviors.ts';
import { causeOf, chaosVerdict, type EndedJob } from './chaos-faults.ts';

const call = (at: number, over: Partial<FakeCall>): FakeCall => ({
  marker: 'chaos-u', model: 'm', apiVersion: 'v1beta', promptChars: 1, memoryBlockChars: null, maxOutputTokens: null, structured: true, thinkingConfig: null,
  thoughtsTokens: null, finishReason: null, at, behavior: 'ok', status: 200, chaos: false, ...over,
});
const job = (user: string, over: Partial<EndedJob> = {}): EndedJob => ({
  user_id: user, status: 'succeeded', attempts: 1, last_error_code: null, last_error: null, finished_at: new Date(10_000), ...over,
});
const truncated = (user: string) => job(user, { status: 'failed', attempts: 2, last_error_code: 'output_truncated', last_error: 'output_truncated: cut twice' });
const exhausted = (user: string) => job(user, { status: 'failed', attempts: 6, last_error_code: 'provider_unavailable', last_error: 'provider_unavailable: 503 (gave up after 6 attempts)' });

describe('causeOf', () => {
  it('matches a provider error to the injected answer of the last call', () => {
    expect(causeOf(truncated('u'), [call(1, {}), call(2, { behavior: 'truncated', chaos: true })], []), 'cut twice: permanent')
      .toEqual({ fault: 'injected truncated 200', permanent: true });
    expect(causeOf(exhausted('u'), [call(2, { behavior: 'error', status: 503, chaos: true })], []), 'retries ran out')
      .toEqual({ fault: 'injected error 503', permanent: false });
  });

  it('matches nothing when the last call was not injected or does not cause that code', () => {
    expect(causeOf(truncated('u'), [call(1, { behavior: 'truncated', chaos: true }), call(2, {})], []), 'the last call was fine').toBeNull();
    expect(causeOf(truncated('u'), [call(2, { behavior: 'error', status: 503, chaos: true })], []), 'a 503 does not cut answers').toBeNull();
    expect(causeOf(truncated('u'), [], []), 'no call at all').toBeNull();
  });

  it('matches a lost lease to a disruption before the job ended, not after', () => {
    const lease = job('u', { status: 'failed', last_error_code: 'lease_expired', last_error: 'lease expired (gave up after 6 attempts)' });
    expect(causeOf(lease, [], [{ at: 5_000, what: 'restart Postgres' }]), 'before').toEqual({ fault: 'restart Postgres', permanent: false });
    expect(causeOf(lease, [], [{ at: 20_000, what: 'restart Postgres' }]), 'after').toBeNull();
  });
});

describe('chaosVerdict', () => {
  const calls = new Map([
    ['t', [call(2, { behavior: 'truncated', chaos: true })]],
    ['e', [call(2, { behavior: 'error', status: 503, chaos: true })]],
  ]);

  it('leaves permanent injected faults out of the floor and counts retried ones', () => {
    const v = chaosVerdict([job('a'), job('b'), truncated('t'), exhausted('e')], calls, [], 0.6);
    expect(v, 'two of the three jobs outside the permanent fault succeeded').toMatchObject({
      jobs: 4, succeeded: 2, failed: 2, injectedPermanent: 1, outside: 3, belowFloor: false, unmatched: [],
    });
    expect(v.successRate, '2/3').toBeCloseTo(2 / 3);
    expect(Object.keys(v.causes).sort(), 'each failure by cause').toEqual([
      'output_truncated: injected truncated 200 (permanent)', 'provider_unavailable: injected error 503 (retries ran out)',
    ]);
  });

  it('is below the floor when every job fails (the mutation chaos must catch), and names unmatched failures', () => {
    const allFailed = chaosVerdict([exhausted('e'), { ...exhausted('x') }], calls, [], 0.95);
    expect(allFailed.belowFloor, '0 % succeeded').toBe(true);
    expect(allFailed.unmatched, 'x had no injected call').toEqual(['x']);
    expect(chaosVerdict([truncated('t')], calls, [], 0.95).belowFloor, 'no job outside permanent faults: nothing proved').toBe(true);
    expect(chaosVerdict([job('a')], new Map(), [], 0.95).belowFloor, 'all succeeded').toBe(false);
  });
});
