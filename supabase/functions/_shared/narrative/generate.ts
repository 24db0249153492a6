// One attempt of one narrative job: claim (lease) -> read memories within the prompt budget ->
// provider -> validate -> store + succeed in one transaction. Failures are classified and
// written to the job row (retry with backoff, or failed); nothing is dropped silently.
// claimJob answers the caller (pg_net) at once; runClaimed is the slow part, which the
// function continues in the background while it holds the job's lease.
import {
  type ClaimOutcome, type CompleteOutcome, type FailOutcome, type JobReason, laneOf, MAX_CLAIMS, NARRATIVE_MAX_CHARS,
  type NarrativeClaim, providerClaim, providerOutput, renderClaims,
} from '../../../../shared/narrative.ts';
import { memoryRef } from './prompt.ts';
import { sql } from '../db.ts';
import { HttpError, log } from '../http.ts';
import { createProvider } from '../providers/index.ts';
import { providerEnv } from '../env.ts';
import { ProviderError, type NarrativeProvider, type PromptMemory, type Usage } from '../providers/types.ts';

const provider: NarrativeProvider = createProvider();
const timeoutMs = providerEnv().timeoutMs;

export interface ClaimedJob {
  jobId: number;
  userId: string;
  lease: string;
  attempts: number;
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

/** Fails on what the provider's finish reason says is not a complete answer. */
function checkFinish(finishReason: string): void {
  if (finishReason.startsWith('BLOCKED')) {
    throw new ProviderError('prompt_blocked', `the provider blocked the prompt (${finishReason})`, false);
  }
  if (finishReason === 'SAFETY' || finishReason === 'PROHIBITED_CONTENT' || finishReason === 'BLOCKLIST') {
    throw new ProviderError('output_blocked', `the provider withheld the output (finishReason ${finishReason})`, false);
  }
  // Still cut after the provider's one bigger-cap retry: the cap does not fit this model's
  // thinking plus the narrative. Not retryable: every later attempt would send the same two
  // requests and pay for them again; the cap (NARRATIVE_*MAX_OUTPUT_TOKENS) or the thinking level
  // needs changing, and the next regeneration (manual, weekly, an edit) tries again.
  if (finishReason === 'MAX_TOKENS') {
    throw new ProviderError('output_truncated', 'the answer was cut at the output cap twice (finishReason MAX_TOKENS, '
      + 'thinking and answer share the cap); raise NARRATIVE_MAX_OUTPUT_TOKENS or lower GEMINI_THINKING_LEVEL', false);
  }
  if (finishReason !== 'STOP') {
    throw new ProviderError('incomplete_output', `generation did not finish (finishReason ${finishReason})`, true);
  }
}

export interface AcceptedClaims {
  claims: NarrativeClaim[];
  content: string;
  /** Claims dropped: unparseable, or citing a ref that is not a memory of this prompt. */
  dropped: number;
}

/**
 * Turns the provider's JSON answer into claims citing memory ids: a claim citing anything but
 * the refs of this prompt's memories (the user's active memories, read for this attempt) is
 * dropped; fewer than minClaims surviving is invalid_output (retryable). Claims past MAX_CLAIMS
 * or the length limit are left out, whole.
 */
export function acceptClaims(text: string, finishReason: string, promptIds: readonly string[], minClaims: number): AcceptedClaims {
  checkFinish(finishReason);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ProviderError('invalid_output', 'the answer is not JSON', true);
  }
  const out = providerOutput.safeParse(json);
  if (!out.success) throw new ProviderError('invalid_output', 'the answer is not {"claims": [...]}', true);
  const byRef = new Map(promptIds.map((id, i) => [memoryRef(i), id]));
  const claims: NarrativeClaim[] = [];
  let dropped = 0;
  for (const raw of out.data.claims) {
    const c = providerClaim.safeParse(raw);
    const ids = c.success ? c.data.memory_refs.map((r) => byRef.get(r.trim().toLowerCase())) : [];
    if (!c.success || ids.some((id) => id === undefined)) {
      dropped++;
      continue;
    }
    if (claims.length === MAX_CLAIMS) continue;
    const next = [...claims, { section: c.data.section, text: c.data.text, memory_ids: [...new Set(ids as string[])] }];
    if (renderClaims(next).length > NARRATIVE_MAX_CHARS) continue;
    claims.push(next[next.length - 1]);
  }
  if (claims.length < minClaims) {
    throw new ProviderError('invalid_output',
      `only ${claims.length} claims with valid citations (at least ${minClaims} needed; ${dropped} dropped)`, true);
  }
  return { claims, content: renderClaims(claims), dropped };
}

/** Takes the job's lease, or says (as an HttpError) why the job cannot be run now. */
export async function claimJob(jobId: number): Promise<ClaimedJob> {
  const t0 = performance.now();
  const [claim] = await sql<Claim[]>`select * from private.claim_job(${jobId})`;
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
    jobId, userId: claim.user_id!, lease: claim.lease_token!, attempts: claim.attempts!,
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
    const [eligible] = await sql<{ ok: boolean; min_claims: number }[]>`
      select private.is_eligible(${userId}) as ok, min_claims from private.settings`;
    if (!eligible.ok) throw new ProviderError('not_eligible', 'the user no longer has enough active memories', false);
    const rows = await sql<MemoryRow[]>`select * from private.memories_for_prompt(${userId})`;
    // Nothing fits (or the memories went away since the eligibility check): nothing to write from.
    if (rows.length === 0) throw new ProviderError('not_eligible', 'no active memories to write from', false);
    const total = rows[0].total;
    const memories: PromptMemory[] = rows.map((r) => ({
      content: r.content, created_at: r.created_at.toISOString(), importance: r.importance,
    }));
    const asOf = rows[0].as_of;
    step(jobId, userId, 'load_memories', t1, 'ok', { memories_used: memories.length, memories_omitted: total - memories.length });

    const t2 = performance.now();
    const lane = laneOf(job.reason);
    let result;
    try {
      result = await provider.generate({ memories, omitted: total - memories.length, total }, AbortSignal.timeout(timeoutMs), lane);
    } catch (err) {
      if (err instanceof ProviderError) usage = err.usage;
      step(jobId, userId, 'provider_call', t2, 'error', { provider: provider.name, lane, error_code: err instanceof ProviderError ? err.code : 'unexpected' });
      throw err;
    }
    usage = result;
    step(jobId, userId, 'provider_call', t2, 'ok', {
      provider: provider.name, lane, model: result.model, requested_model: result.requestedModel, finish_reason: result.finishReason,
      provider_calls: result.calls, prompt_tokens: result.promptTokens, output_tokens: result.outputTokens,
      thoughts_tokens: result.thoughtsTokens, cached_tokens: result.cachedTokens, total_tokens: result.totalTokens,
    });
    const accepted = acceptClaims(result.text, result.finishReason, rows.map((r) => r.id), eligible.min_claims);
    step(jobId, userId, 'validate', t2, 'ok', { claims: accepted.claims.length, claims_dropped: accepted.dropped });

    const t3 = performance.now();
    const [done] = await sql<{ outcome: CompleteOutcome; version: number | null }[]>`
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
    const [failed] = await sql<{ outcome: FailOutcome; status: 'queued' | 'failed' | null }[]>`
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
