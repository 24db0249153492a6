// What a provider's answer must be before it may become a narrative: a complete answer, JSON
// claims, each citing only memories and notes of this prompt, and resting on what it cites.
// Pure (no env, no database), so Node tests import it too.
import {
  MAX_CLAIMS, NARRATIVE_MAX_CHARS, type NarrativeClaim, PINNED_SECTION, providerClaim, providerOutput, renderClaims,
} from '../../../../shared/narrative.ts';
import { support } from '../../../../shared/support.ts';
import { type PromptMemory, ProviderError } from '../providers/types.ts';
import { memoryEvidence, memoryRef, noteRef, sanitizeMemoryText } from './prompt.ts';

/** A memory as the prompt had it, with its id: refs m1.. follow this order. */
export interface PromptMemoryRow extends PromptMemory { id: string }
/** A note as the prompt had it: refs n1.. follow this order. */
export interface PromptNoteRow { id: string; content: string; pinned: boolean }

/** What an attempt read for its prompt, in prompt order. */
export interface PromptRows { memories: readonly PromptMemoryRow[]; notes?: readonly PromptNoteRow[] }

/** The attempt's rules, from private.settings. */
export interface ClaimRules {
  /** Fewest claims (pinned aside) that must survive; fewer is invalid_output. */
  minClaims: number;
  /** claim_support_min: the share of a claim's content words its cited texts must have
   *  (shared/support.ts); 0 turns the check off. */
  supportMin: number;
}

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
  /** Claims dropped: unparseable, or citing a ref that is not a memory or note of this prompt. */
  dropped: number;
  /** Claims dropped, their citations valid, because their text does not rest on what they cite. */
  droppedUnsupported: number;
}

/** A pinned note's claim: its text verbatim under "Pinned by you", citing the note. */
export const pinnedClaim = (n: PromptNoteRow): NarrativeClaim =>
  ({ section: PINNED_SECTION, text: n.content, memory_ids: [], note_ids: [n.id] });

/**
 * Turns the provider's JSON answer into claims citing memory ids (mN) and note ids (nN): a
 * claim citing anything but the refs of this prompt's memories and notes (read for this
 * attempt) is dropped, and so is one whose text is not supported by the prompt text of what it
 * cites (support below rules.supportMin): a claim stating memory X's fact while citing Y would
 * otherwise outlive X's delete, which strips only the claims citing X. Fewer than
 * rules.minClaims surviving is invalid_output (retryable). Claims past MAX_CLAIMS or the length
 * limit are left out, whole. The pinned notes come first, verbatim, and are not the provider's
 * to write.
 */
export function acceptClaims(text: string, finishReason: string, prompt: PromptRows, rules: ClaimRules): AcceptedClaims {
  checkFinish(finishReason);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ProviderError('invalid_output', 'the answer is not JSON', true);
  }
  const out = providerOutput.safeParse(json);
  if (!out.success) throw new ProviderError('invalid_output', 'the answer is not {"claims": [...]}', true);
  const notes = prompt.notes ?? [];
  const memoryByRef = new Map(prompt.memories.map((m, i) => [memoryRef(i), { id: m.id, evidence: memoryEvidence(m) }]));
  const noteByRef = new Map(notes.map((n, i) => [noteRef(i), { id: n.id, evidence: sanitizeMemoryText(n.content) }]));
  const pinned = notes.filter((n) => n.pinned).map(pinnedClaim);
  const claims: NarrativeClaim[] = [...pinned];
  let dropped = 0;
  let droppedUnsupported = 0;
  for (const raw of out.data.claims) {
    const c = providerClaim.safeParse(raw);
    const refs = c.success ? c.data.memory_refs.map((r) => r.trim().toLowerCase()) : [];
    if (!c.success || refs.some((r) => !memoryByRef.has(r) && !noteByRef.has(r))) {
      dropped++;
      continue;
    }
    const cited = refs.map((r) => (memoryByRef.get(r) ?? noteByRef.get(r))!);
    if (rules.supportMin > 0 && !support(c.data.text, cited.map((x) => x.evidence), rules.supportMin).supported) {
      droppedUnsupported++;
      continue;
    }
    if (claims.length - pinned.length === MAX_CLAIMS) continue;
    const memoryIds = [...new Set(refs.flatMap((r) => memoryByRef.get(r)?.id ?? []))];
    const noteIds = [...new Set(refs.flatMap((r) => noteByRef.get(r)?.id ?? []))];
    const claim: NarrativeClaim = { section: c.data.section, text: c.data.text, memory_ids: memoryIds };
    if (noteIds.length) claim.note_ids = noteIds;
    if (renderClaims([...claims, claim]).length > NARRATIVE_MAX_CHARS) continue;
    claims.push(claim);
  }
  if (claims.length - pinned.length < rules.minClaims) {
    throw new ProviderError('invalid_output',
      `only ${claims.length - pinned.length} claims with valid citations that rest on what they cite (at least ${rules.minClaims} needed; `
        + `${dropped} dropped for their citations, ${droppedUnsupported} for not resting on them)`, true);
  }
  return { claims, content: renderClaims(claims), dropped, droppedUnsupported };
}
