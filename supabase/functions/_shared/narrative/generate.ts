// One attempt of one narrative job: claim (lease) -> read memories within the prompt budget ->
// provider -> validate -> store + succeed in one transaction. Failures are classified and
// written to the job row (retry with backoff, or failed); nothing is dropped silently.
// claimJob answers the caller (pg_net) at once; runClaimed is the slow part, which the
// function continues in the background while it holds the job's lease.
import { type ClaimOutcome, type CompleteOutcome, type FailOutcome, type JobReason, laneOf } from '../../../../shared/narrative.ts';
import { acceptClaims, type PromptNoteRow } from './claims.ts';
import { fitMemories } from './prompt.ts';
import { service, sql } from '../db.ts';
import { HttpError } from '../http.ts';
import { log } from '../log.ts';
import { createProvider } from '../providers/index.ts';
import { stopsWithWorker } from './shutdown.ts';
import { LocalProvider } from '../providers/local.ts';
import { providerEnv } from '../env.ts';
import { ProviderError, type NarrativeProvider, type PromptMemory, type Usage } from '../providers/types.ts';

// Cancelled when the platform stops this worker (shutdown.ts): the attempt fails as worker_shutdown.
const provider: NarrativeProvider = stopsWithWorker(createProvider());
/** The writer of an attempt that may not make a paid call (private.spend_limit_reached): the
 *  user still gets a correct narrative, at no cost. */
const localWriter: NarrativeProvider = provider.name === 'local' ? provider : new LocalProvider();
const timeoutMs = providerEnv().timeoutMs;

export interface ClaimedJob {
  jobId: number;
  userId: string;
  lease: string;
  reason: JobReason;
  startedAt: number;
}

export interface AttemptResult {
  job_id: number;
  /** lease_lost: the lease expired and another attempt took the job; this result was discarded. */
  status: 'succeeded' | 'queued' | 'failed' | 'lease_lost';
  version?: number;
  error_code?: string;
}

interface Claim {
  outcome: ClaimOutcome;
  user_id: string | null;
  attempts: number | null;
  lease_token: string | null;
  reason: string | null;
}

interface MemoryRow {
  id: string;
  content: string;
  created_at: Date;
  importance: number | null;
  total: number;
  as_of: Date;
}

function step(jobId: number, userId: string | null, name: string, started: number, outcome: string, extra: Record<string, unknown> = {}) {
  log({ level: 'info', job_id: jobId, user_id: userId, step: name, duration_ms: Math.round(performance.now() - started), outcome, ...extra });
}

/** Takes the job's lease, or says (as an HttpError) why the job cannot be run now. */
export async function claimJob(jobId: number): Promise<ClaimedJob> {
  const t0 = performance.now();
  const [claim] = await service<Claim[]>`select * from private.claim_job(${jobId})`;
  step(jobId, claim.user_id, 'claim', t0, claim.outcome, { attempt: claim.attempts, reason: claim.reason });
  if (claim.outcome === 'not_found') throw new HttpError(409, 'job_not_found', `Job ${jobId} does not exist`);
  if (claim.outcome === 'not_claimable') {
    throw new HttpError(409, 'job_not_claimable', `Job ${jobId} is not queued and due (already running, finished or scheduled later)`);
  }
  if (claim.outcome === 'concurrency_limited') {
    throw new HttpError(429, 'concurrency_limited', 'The running-job cap is reached; the job stays queued and is dispatched when a slot frees',
      { 'retry-after': '5' });
  }
  return {
    jobId, userId: claim.user_id!, lease: claim.lease_token!,
    reason: claim.reason as JobReason, startedAt: t0,
  };
}

/** Runs a claimed attempt to its end and records the outcome on the job row. */
export async function runClaimed(job: ClaimedJob): Promise<AttemptResult> {
  const { jobId, userId, lease, startedAt: t0 } = job;
  // What the provider reported spending in this attempt, recorded whether it succeeds or fails.
  let usage: Usage | null = null;
  try {
    const t1 = performance.now();
    // Asked once per attempt: whether this attempt may make a paid call (the daily ceiling, the
    // user's token budget), with eligibility and the prompt budget in the same round trip.
    // The validation rules are read here too, so one attempt validates by one set of them.
    const [eligible] = await service<{ ok: boolean; min_claims: number; claim_support_min: number; prompt_char_budget: number; spend_limit: string | null }[]>`
      select private.is_eligible(${userId}) as ok, min_claims, claim_support_min, prompt_char_budget,
        private.spend_limit_reached(${userId}) as spend_limit
      from private.settings`;
    if (!eligible.ok) throw new ProviderError('not_eligible', 'the user no longer has enough active memories', false);
    // Best-ranked first: every candidate that could fit the budget.
    const rows = await service<MemoryRow[]>`select * from private.memories_for_prompt(${userId})`;
    // The memories went away since the eligibility check: nothing to write from.
    if (rows.length === 0) throw new ProviderError('not_eligible', 'no active memories to write from', false);
    const total = rows[0].total;
    // The budget holds for the lines as sent (sanitised), not for the raw text: fitMemories
    // measures them, in rank order, and gives them back in prompt order (refs m1… follow it).
    const chosen = fitMemories(rows.map((r) => ({
      id: r.id, content: r.content, created_at: r.created_at.toISOString(), importance: r.importance,
    })), eligible.prompt_char_budget);
    if (chosen.length === 0) {
      throw new ProviderError('not_eligible', 'not even the best-ranked memory fits prompt_char_budget once sanitised', false);
    }
    const memories: PromptMemory[] = chosen.map(({ content, created_at, importance }) => ({ content, created_at, importance }));
    const asOf = rows[0].as_of;
    // Read after the memories: a note changed after asOf is caught at store time either way.
    const notes = await service<PromptNoteRow[]>`select id, content, pinned from private.notes_for_prompt(${userId})`;
    step(jobId, userId, 'load_memories', t1, 'ok', {
      memories_used: memories.length, memories_omitted: total - memories.length, notes: notes.length,
    });

    const t2 = performance.now();
    const lane = laneOf(job.reason);
    const writer = eligible.spend_limit === null ? provider : localWriter;
    const degraded = writer === provider ? {} : { degraded: eligible.spend_limit };
    let result;
    try {
      result = await writer.generate({ memories, notes: notes.map((n) => ({ content: n.content, pinned: n.pinned })), omitted: total - memories.length, total }, AbortSignal.timeout(timeoutMs), lane);
    } catch (err) {
      if (err instanceof ProviderError) usage = err.usage;
      step(jobId, userId, 'provider_call', t2, 'error', { provider: writer.name, lane, ...degraded, error_code: err instanceof ProviderError ? err.code : 'unexpected' });
      throw err;
    }
    usage = result;
    step(jobId, userId, 'provider_call', t2, 'ok', {
      provider: writer.name, lane, ...degraded, model: result.model, requested_model: result.requestedModel, finish_reason: result.finishReason,
      provider_calls: result.calls, prompt_tokens: result.promptTokens, output_tokens: result.outputTokens,
      thoughts_tokens: result.thoughtsTokens, cached_tokens: result.cachedTokens, total_tokens: result.totalTokens,
    });
    // chosen: the memories in prompt order, with their ids (refs m1… map back to them).
    const accepted = acceptClaims(result.text, result.finishReason, { memories: chosen, notes },
      { minClaims: eligible.min_claims, supportMin: eligible.claim_support_min });
    step(jobId, userId, 'validate', t2, 'ok', {
      claims: accepted.claims.length, claims_dropped: accepted.dropped, claims_dropped_unsupported: accepted.droppedUnsupported,
    });

    const t3 = performance.now();
    const [done] = await service<{ outcome: CompleteOutcome; version: number | null }[]>`
      select * from private.complete_job(${jobId}, ${lease}, ${accepted.content}, ${result.model}, ${memories.length},
        ${total - memories.length}, ${asOf}, ${result.promptTokens}, ${result.outputTokens},
        ${Math.round(performance.now() - t0)}, ${result.thoughtsTokens}, ${result.cachedTokens}, ${result.totalTokens},
        ${result.requestedModel}, ${result.calls}, ${sql.json(accepted.claims)})`;
    step(jobId, userId, 'store', t3, done.outcome, { version: done.version });
    if (done.outcome === 'lease_lost') return { job_id: jobId, status: 'lease_lost' };
    return { job_id: jobId, status: 'succeeded', version: done.version ?? undefined };
  } catch (err) {
    const failure = err instanceof ProviderError
      ? err
      : new ProviderError('internal_error', err instanceof Error ? err.message : String(err), true);
    const [failed] = await service<{ outcome: FailOutcome; status: 'queued' | 'failed' | null }[]>`
      select * from private.fail_job(${jobId}, ${lease}, ${failure.code}, ${failure.message}, ${failure.retryable},
        ${failure.retryAfterMs === null ? null : failure.retryAfterMs / 1000}, ${Math.round(performance.now() - t0)},
        ${usage?.model ?? null}, ${usage?.requestedModel ?? null}, ${usage?.calls ?? 0}, ${usage?.promptTokens ?? null},
        ${usage?.outputTokens ?? null}, ${usage?.thoughtsTokens ?? null}, ${usage?.cachedTokens ?? null},
        ${usage?.totalTokens ?? null})`;
    step(jobId, userId, failed.outcome === 'retry_scheduled' ? 'retry' : 'fail', t0, failed.outcome, {
      error_code: failure.code, retryable: failure.retryable,
    });
    if (failed.outcome === 'lease_lost') return { job_id: jobId, status: 'lease_lost', error_code: failure.code };
    return { job_id: jobId, status: failed.status!, error_code: failure.code };
  }
}
