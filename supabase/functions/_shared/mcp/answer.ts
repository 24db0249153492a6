// Answers over a user's memories for ask_memory and deep_memory_query: Gemini when configured,
// within a deadline and a prompt-size cap; otherwise, or when the model fails or runs late, an
// extractive answer that quotes the memories. A slow or broken model is never an error here.
// Memories are data, never instructions: they are fenced and sanitised as in the narrative prompt.
import { CLOSE, fenceRule, OPEN, sanitizeMemoryText } from '../narrative/prompt.ts';
import type { GeminiProvider } from '../providers/gemini.ts';
import { createGemini } from '../providers/index.ts';
import { type CompletionPrompt, type GenerationResult, ProviderError, type Usage } from '../providers/types.ts';
import type { Memory } from './memories.ts';

export interface AnswerSpec {
  /** How long the model may take before the extractive answer is used. */
  deadlineMs: number;
  /** Characters of memory text the prompt may carry. */
  promptChars: number;
  maxOutputTokens: number;
  /** Memories quoted by the extractive answer: relevant ones, then recent ones. */
  quoteRelevant: number;
  quoteRecent: number;
  style: string;
}

export const ASK: AnswerSpec = {
  deadlineMs: 3_000, promptChars: 8_000, maxOutputTokens: 512, quoteRelevant: 5, quoteRecent: 3,
  style: 'Answer the question directly in a few sentences.',
};

export const DEEP: AnswerSpec = {
  deadlineMs: 10_000, promptChars: 40_000, maxOutputTokens: 2_048, quoteRelevant: 12, quoteRecent: 8,
  style: 'Write a thorough synthesis (at most about 400 words): the direct answer first, then the supporting '
    + 'details, patterns and changes over time, in short paragraphs or bullet points.',
};

export interface Answer {
  answer: string;
  source: 'model' | 'extractive';
  model: string | null;
  memories_used: number;
  /** Why the extractive answer was given: `offline` (no model configured), a spend limit
   *  (`daily_ceiling_reached`, `token_budget_reached`), `concurrency_limited`, or the model's failure. */
  fallback_reason: string | null;
}

/** Characters of one memory's text in an answer prompt. */
const PROMPT_MEMORY_CHARS = 2_000;
const QUOTE_MAX_CHARS = 300;

const day = (d: Date) => d.toISOString().slice(0, 10);

function system(spec: AnswerSpec): string {
  return [
    'You answer questions about one user of an AI assistant, using only that user\'s stored memories, given in the '
      + `user message inside a ${OPEN} block (the most relevant first, then recent ones).`,
    spec.style,
    'Ground every statement in the memories and mention dates when they matter. If the memories do not answer the '
      + 'question, say so plainly. Do not invent facts. Never reproduce secrets or credentials.',
    fenceRule('N. [YYYY-MM-DD] text'),
  ].join('\n');
}

/** The prompt, memories in order until the character budget is spent. */
function prompt(spec: AnswerSpec, question: string, memories: Memory[]) {
  const lines: string[] = [];
  let used = 0;
  for (const m of memories) {
    const line = `${lines.length + 1}. [${day(m.created_at)}] ${sanitizeMemoryText(m.content).slice(0, PROMPT_MEMORY_CHARS)}`;
    if (used + line.length > spec.promptChars) break;
    lines.push(line);
    used += line.length + 1;
  }
  const user = [OPEN, ...lines, CLOSE, '', `Question: ${sanitizeMemoryText(question)}`].join('\n');
  return { prompt: { system: system(spec), user, maxOutputTokens: spec.maxOutputTokens }, used: lines.length };
}

function quote(m: Memory): string {
  const flat = m.content.replace(/\s+/g, ' ').trim();
  return `- [${day(m.created_at)}] ${flat.length <= QUOTE_MAX_CHARS ? flat : `${flat.slice(0, QUOTE_MAX_CHARS - 1)}…`}`;
}

/** The memories themselves, most relevant first, under a lead sentence. */
export function extractive(spec: AnswerSpec, relevant: Memory[], recent: Memory[], reason: string): Answer {
  const top = relevant.slice(0, spec.quoteRelevant);
  const latest = recent.slice(0, spec.quoteRecent);
  const parts: string[] = [];
  if (top.length === 0 && latest.length === 0) {
    parts.push('The user has no memories to answer from yet.');
  } else if (top.length === 0) {
    parts.push('No memory mentions this directly. The user\'s most recent memories:', ...latest.map(quote));
  } else {
    parts.push('What the user\'s memories say about this (quoted, most relevant first):', ...top.map(quote));
    if (latest.length) parts.push('', 'Their most recent other memories:', ...latest.map(quote));
  }
  return { answer: parts.join('\n'), source: 'extractive', model: null, memories_used: top.length + latest.length, fallback_reason: reason };
}

let gemini: GeminiProvider | null | undefined;

/** Why a paid call may not be made for the user now (the daily ceiling, their token budget, all
 *  their provider-call slots taken), or the release of the slot it may use. */
export type Admission = { refused: string } | { release: () => Promise<void> };

/** What an answer asks of the database before and after its model call (server.ts: Postgres). */
export interface PaidCalls {
  /** Decides once per answer whether a call may be made, taking one of the user's slots for
   *  `seconds` if so. */
  admit(seconds: number): Promise<Admission>;
  /** Records what a call spent (the spend ledger), success or failure alike. */
  record(usage: Usage): Promise<void>;
}

/** What a call that timed out after it was sent counts, failing closed (the provider may have
 *  answered and billed it past our deadline): its prompt at about four characters a token and
 *  its whole output cap. */
function unanswered(p: CompletionPrompt, model: string): Usage {
  return {
    requestedModel: model, model, calls: 1, promptTokens: Math.ceil((p.system.length + p.user.length) / 4),
    outputTokens: p.maxOutputTokens ?? null, thoughtsTokens: null, cachedTokens: null, totalTokens: null, estimated: true,
  };
}

/** Gemini's answer within the spec's deadline (or the caller's cancellation), else the extract.
 *  The call must be admitted (private.spend_limit_reached, mcp_llm_calls_per_user); refused, the
 *  extract says why, and no request is sent. Whatever a call reports spending is recorded (a
 *  timed-out one at an estimate). */
export async function answer(
  spec: AnswerSpec, question: string, relevant: Memory[], recent: Memory[], signal: AbortSignal, paid: PaidCalls,
): Promise<Answer> {
  if (gemini === undefined) gemini = createGemini();
  const model = gemini;
  if (!model) return extractive(spec, relevant, recent, 'offline');
  if (relevant.length + recent.length === 0) return extractive(spec, relevant, recent, 'no_memories');
  const { prompt: p, used } = prompt(spec, question, [...relevant, ...recent]);
  // The slot outlives the deadline by a margin, so a call whose release was lost frees it soon.
  const admission = await paid.admit(Math.ceil(spec.deadlineMs / 1000) + 5);
  if ('refused' in admission) return extractive(spec, relevant, recent, admission.refused);
  try {
    let r: GenerationResult;
    try {
      r = await model.complete(p, AbortSignal.any([signal, AbortSignal.timeout(spec.deadlineMs)]));
    } catch (err) {
      // A timeout reports no usage: counted at the estimate (a blocked prompt, a cut retry report theirs).
      const usage = err instanceof ProviderError ? err.usage ?? (err.code === 'timeout' ? unanswered(p, model.models.interactive) : null) : null;
      if (usage) await paid.record(usage);
      return extractive(spec, relevant, recent, err instanceof ProviderError ? err.code : 'model_error');
    }
    await paid.record(r);
    const text = r.text.trim();
    if (r.finishReason !== 'STOP') return extractive(spec, relevant, recent, 'incomplete');
    if (!text) return extractive(spec, relevant, recent, 'empty_answer');
    return { answer: text, source: 'model', model: r.model, memories_used: used, fallback_reason: null };
  } finally {
    await admission.release();
  }
}
