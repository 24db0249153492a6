// The one small interface every narrative writer implements (Gemini, the offline local writer).
import type { JobErrorCode } from '../../../../shared/narrative.ts';

/** A memory as it goes into a prompt: content is user data, never instructions. */
export interface PromptMemory {
  content: string;
  created_at: string; // ISO timestamp
  importance: number | null; // 0..1 from memory metadata, when known
}

/** A note the user wrote for their narrative: it outranks memories, but is data like them. */
export interface PromptNote {
  content: string;
  /** Quoted verbatim under "Pinned by you" by generate-narrative itself; the writer does not repeat it. */
  pinned: boolean;
}

export interface NarrativeInput {
  memories: PromptMemory[]; // newest and most important first, already within the prompt budget
  notes?: PromptNote[]; // the user's notes, oldest first (refs n1, n2, ...); none when absent
  omitted: number; // active memories left out to stay within the budget
  total: number; // active memories the user has
}

/** Which model a call is for: interactive reasons (someone is waiting) get the Flash model, bulk
 *  reasons (weekly, backfill, stale) the cheaper Flash-Lite class. */
export type ModelLane = 'interactive' | 'bulk';

/** What the provider reported spending: summed over every response of one attempt (a cut answer
 *  retried with a bigger cap is two responses). Counts are null when the provider did not say. */
export interface Usage {
  /** The model asked for (from configuration). */
  requestedModel: string;
  /** The model that actually answered (Gemini's modelVersion), or the requested one. */
  model: string;
  /** Paid provider responses these counts cover (0 for the local writer: nothing to record in
   *  the spend ledger). */
  calls: number;
  promptTokens: number | null;
  /** Answer tokens (Gemini's candidatesTokenCount), thoughts excluded. */
  outputTokens: number | null;
  thoughtsTokens: number | null;
  /** Prompt tokens served from the provider's context cache (part of promptTokens). */
  cachedTokens: number | null;
  totalTokens: number | null;
  /** True when these counts are our estimate, not the provider's (a call that timed out after it
   *  was sent: it may have been answered and billed). */
  estimated?: boolean;
}

export interface GenerationResult extends Usage {
  /** The answer. For a narrative (NarrativeProvider.generate) it is JSON
   *  `{"claims": [{section, text, memory_refs}]}`, memory_refs being the prompt's refs (m1, m2…). */
  text: string;
  /** Provider's finish reason; only "STOP" is a complete answer. */
  finishReason: string;
}

/** Sums two nullable counts: null only when neither is known. */
export function addCounts(a: number | null, b: number | null): number | null {
  return a === null && b === null ? null : (a ?? 0) + (b ?? 0);
}

/** A prompt for one model call: system instruction, user text, optional output cap. */
export interface CompletionPrompt {
  system: string;
  user: string;
  maxOutputTokens?: number;
  /** Default 'interactive'. */
  lane?: ModelLane;
  /** Ask for JSON matching this JSON Schema (Gemini structured output); the answer text is the JSON. */
  jsonSchema?: unknown;
}

export interface NarrativeProvider {
  readonly name: 'gemini' | 'local';
  generate(input: NarrativeInput, signal: AbortSignal, lane: ModelLane): Promise<GenerationResult>;
}

/** A provider failure, classified for the job: retryable failures go back to the queue. */
export class ProviderError extends Error {
  constructor(
    readonly code: JobErrorCode,
    message: string,
    readonly retryable: boolean,
    readonly retryAfterMs: number | null = null,
    /** What the failed attempt spent, when a response said so (a blocked prompt, a cut answer
     *  whose retry failed); recorded on the job like a success's usage. */
    public usage: Usage | null = null,
  ) {
    super(message);
    this.name = 'ProviderError';
  }
}
