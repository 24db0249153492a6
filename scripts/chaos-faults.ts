// What `npm run chaos` injected, matched to how jobs ended: pure (no stack), so the rules that
// decide its exit code are unit-tested (scripts/chaos-faults.test.ts).
//
// Chaos knows what it did: every fake Gemini call of a user's job is recorded under that user's
// marker (what it answered, whether chaos replaced the answer), and the disruptions (a killed
// runtime, a killed pg_net worker, a Postgres restart) have times. A failed job is matched to
// the fault that caused it: its last call's injected answer for a provider error code, or a
// disruption before it ended for the codes a disruption leaves (a lease that expired, a lost
// dispatch). A permanent fault (one the queue must not retry, like a cut answer twice) is the
// fault's, not the pipeline's: those jobs leave the success floor's denominator. Every other
// job, retried faults included, counts.
import type { FakeCall } from '../local/fakes/gemini-behaviors.ts';

/** A job as chaos reads it at the end. */
export interface EndedJob {
  user_id: string;
  status: string;
  attempts: number;
  last_error_code: string | null;
  last_error: string | null;
  finished_at: Date | null;
}

export interface Disruption { at: number; what: string }

/** The provider error codes an injected answer causes (generate-narrative's classification). */
const INJECTED: Record<string, (c: FakeCall) => boolean> = {
  rate_limited: (c) => c.behavior === 'error' && c.status === 429,
  provider_unavailable: (c) => c.behavior === 'error' && (c.status ?? 0) >= 500,
  provider_rejected: (c) => c.behavior === 'error' && (c.status ?? 0) < 500 && c.status !== 429,
  timeout: (c) => c.behavior === 'hang',
  output_truncated: (c) => c.behavior === 'truncated',
  invalid_response: (c) => c.behavior === 'garbage',
  invalid_output: (c) => c.behavior === 'garbage' || c.behavior === 'malformed',
  output_blocked: (c) => c.behavior === 'safety',
  prompt_blocked: (c) => c.behavior === 'blocked',
};
/** Codes a disruption leaves: the attempt's lease expired, its dispatch or its connection was lost. */
const DISRUPTED = new Set(['lease_expired', 'dispatch_failed', 'network', 'timeout', 'unexpected', 'internal_error']);

export interface Cause { fault: string; permanent: boolean }

/** What made a failed job fail, or null when nothing chaos did explains it. */
export function causeOf(job: EndedJob, calls: readonly FakeCall[], disruptions: readonly Disruption[]): Cause | null {
  const code = job.last_error_code ?? '';
  // fail_job says "(gave up after N attempts)" when a retryable failure ran out of attempts.
  const permanent = !(job.last_error ?? '').includes('gave up after');
  const last = [...calls].sort((a, b) => a.at - b.at).at(-1);
  if (last?.chaos && INJECTED[code]?.(last)) return { fault: `injected ${last.behavior}${last.status ? ` ${last.status}` : ''}`, permanent };
  const ended = job.finished_at?.getTime() ?? Number.POSITIVE_INFINITY;
  const hit = disruptions.filter((d) => d.at <= ended).at(-1);
  if (DISRUPTED.has(code) && hit) return { fault: hit.what, permanent };
  return null;
}

export interface ChaosVerdict {
  jobs: number;
  succeeded: number;
  failed: number;
  /** Failed jobs whose cause is a permanent injected fault: outside the floor's denominator. */
  injectedPermanent: number;
  /** Jobs the floor is over, and the share of them that succeeded (0 when there are none). */
  outside: number;
  successRate: number;
  floor: number;
  belowFloor: boolean;
  /** Failed jobs by cause. */
  causes: Record<string, number>;
  /** Failed jobs nothing chaos did explains (user ids). */
  unmatched: string[];
}

/** The floor (0..1) over the jobs outside injected permanent faults, and every failure's cause. */
export function chaosVerdict(jobs: readonly EndedJob[], callsByUser: ReadonlyMap<string, readonly FakeCall[]>,
  disruptions: readonly Disruption[], floor: number): ChaosVerdict {
  const causes: Record<string, number> = {};
  const unmatched: string[] = [];
  let injectedPermanent = 0;
  for (const j of jobs.filter((x) => x.status === 'failed')) {
    const cause = causeOf(j, callsByUser.get(j.user_id) ?? [], disruptions);
    if (!cause) {
      unmatched.push(j.user_id);
      continue;
    }
    const key = `${j.last_error_code}: ${cause.fault}${cause.permanent ? ' (permanent)' : ' (retries ran out)'}`;
    causes[key] = (causes[key] ?? 0) + 1;
    if (cause.permanent && cause.fault.startsWith('injected')) injectedPermanent++;
  }
  const succeeded = jobs.filter((x) => x.status === 'succeeded').length;
  const outside = jobs.length - injectedPermanent;
  const successRate = outside > 0 ? succeeded / outside : 0;
  return {
    jobs: jobs.length, succeeded, failed: jobs.filter((x) => x.status === 'failed').length, injectedPermanent, outside,
    successRate, floor, belowFloor: outside === 0 || successRate < floor, causes, unmatched,
  };
}
