// What a provider's answer must be before it may become a narrative: a complete answer, JSON
// claims, each citing only memories of this prompt. Pure (no env, no database), so Node tests
// import it too.
import {
  MAX_CLAIMS, NARRATIVE_MAX_CHARS, type NarrativeClaim, providerClaim, providerOutput, renderClaims,
} from '../../../../shared/narrative.ts';
import { ProviderError } from '../providers/types.ts';
import { memoryRef } from './prompt.ts';

/** Fails on what the provider's finish reason says is not a complete answer. */
export function checkFinish(finishReason: string): void {
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

