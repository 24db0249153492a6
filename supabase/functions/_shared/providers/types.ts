// The one small interface every narrative writer implements (Gemini, the offline local writer).

/** A memory as it goes into a prompt: content is user data, never instructions. */
export interface PromptMemory {
  content: string;
  created_at: string; // ISO timestamp
  importance: number | null; // 0..1 from memory metadata, when known
}

export interface NarrativeInput {
  memories: PromptMemory[]; // newest and most important first, already within the prompt budget
  omitted: number; // active memories left out to stay within the budget
  total: number; // active memories the user has
}

export interface GenerationResult {
  text: string;
  /** Provider's finish reason; only "STOP" is a complete answer. */
  finishReason: string;
  model: string;
  promptTokens: number | null;
  outputTokens: number | null;
}

/** A prompt for one model call: system instruction, user text, optional output cap. */
export interface CompletionPrompt {
  system: string;
  user: string;
  maxOutputTokens?: number;
}

export interface NarrativeProvider {
  readonly name: 'gemini' | 'local';
  readonly model: string;
  generate(input: NarrativeInput, signal: AbortSignal): Promise<GenerationResult>;
}

/** A provider failure, classified for the job: retryable failures go back to the queue. */
export class ProviderError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
    readonly retryAfterMs: number | null = null,
  ) {
    super(message);
    this.name = 'ProviderError';
  }
}
