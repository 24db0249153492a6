// The Gemini narrative writer, on @google/genai. Configuration comes in as a plain object (a
// factory reads the environment), and there are no Deno globals, so Node tests import it too.
// One attempt per call: every failure becomes a ProviderError (./gemini-errors.ts), classified so
// the job queue knows whether to retry (and when).
//
// Thinking: Gemini 3 models think before answering, and the thoughts count against
// maxOutputTokens. So the thinking level is always sent explicitly, the cap leaves room for
// thoughts plus the answer, and an answer cut at the cap (finishReason MAX_TOKENS) is asked once
// more with a bigger cap, never again with the identical request.
import { type GenerateContentResponse, GoogleGenAI, ThinkingLevel } from '@google/genai';
import { buildPrompt, CLAIMS_JSON_SCHEMA } from '../narrative/prompt.ts';
import { callerAbort, classifyError } from './gemini-errors.ts';
import {
  addCounts, type CompletionPrompt, type GenerationResult, type ModelLane, type NarrativeInput, type NarrativeProvider,
  ProviderError, type Usage,
} from './types.ts';

/** The levels Gemini 3 Flash and Flash-Lite document (3.8 Flash has no MINIMAL). */
export const GEMINI_THINKING_LEVELS = ['MINIMAL', 'LOW', 'MEDIUM', 'HIGH'] as const;
export type GeminiThinkingLevel = (typeof GEMINI_THINKING_LEVELS)[number];

/** The largest maxOutputTokens current Flash and Flash-Lite models accept. */
export const GEMINI_MAX_OUTPUT_TOKENS = 65_536;

export interface GeminiProviderOptions {
  apiKey: string;
  /** Model per lane: interactive (manual, cache_miss, memories_changed, MCP answers) and bulk. */
  models: Record<ModelLane, string>;
  /** Default https://generativelanguage.googleapis.com (tests point this at a fake). */
  baseUrl?: string;
  /** Default 'v1beta'. */
  apiVersion?: string;
  /** Deadline for one request, response body included. */
  timeoutMs: number;
  /** Cap of the first request, thoughts and answer together. Default 8192: a narrative is at
   *  most ~3,000 tokens, the rest is room for LOW-level thinking. */
  maxOutputTokens?: number;
  /** Cap of the one retry after MAX_TOKENS. Default twice maxOutputTokens, at most 65536. */
  retryMaxOutputTokens?: number;
  /** Default 'LOW': enough reasoning for a portrait from notes, supported by every current Flash
   *  and Flash-Lite model. */
  thinkingLevel?: GeminiThinkingLevel;
  /** Unset by default: Gemini 3 models are tuned for their default temperature (Flash-Lite 3.5
   *  ignores custom values). */
  temperature?: number;
}

export const GEMINI_DEFAULT_BASE_URL = 'https://generativelanguage.googleapis.com';

function tokenCap(n: number | undefined, what: string): number | undefined {
  if (n !== undefined && !(Number.isInteger(n) && n > 0 && n <= GEMINI_MAX_OUTPUT_TOKENS)) {
    throw new Error(`GeminiProvider: ${what} must be an integer in 1..${GEMINI_MAX_OUTPUT_TOKENS}`);
  }
  return n;
}

/** Usage of two responses of one attempt, the later one naming the model. */
function sumUsage(a: Usage, b: Usage): Usage {
  return {
    requestedModel: b.requestedModel,
    model: b.model,
    calls: a.calls + b.calls,
    promptTokens: addCounts(a.promptTokens, b.promptTokens),
    outputTokens: addCounts(a.outputTokens, b.outputTokens),
    thoughtsTokens: addCounts(a.thoughtsTokens, b.thoughtsTokens),
    cachedTokens: addCounts(a.cachedTokens, b.cachedTokens),
    totalTokens: addCounts(a.totalTokens, b.totalTokens),
  };
}

export class GeminiProvider implements NarrativeProvider {
  readonly name = 'gemini' as const;
  readonly models: Readonly<Record<ModelLane, string>>;
  private readonly ai: GoogleGenAI;
  private readonly timeoutMs: number;
  private readonly maxOutputTokens: number;
  private readonly retryMaxOutputTokens: number;
  private readonly thinkingLevel: GeminiThinkingLevel;
  private readonly temperature: number | undefined;

  constructor(opts: GeminiProviderOptions) {
    if (!opts.apiKey) throw new Error('GeminiProvider: apiKey is required');
    if (!opts.models?.interactive || !opts.models?.bulk) throw new Error('GeminiProvider: a model per lane (interactive, bulk) is required');
    if (!(opts.timeoutMs > 0)) throw new Error('GeminiProvider: timeoutMs must be positive');
    const level = opts.thinkingLevel ?? 'LOW';
    if (!GEMINI_THINKING_LEVELS.includes(level)) {
      throw new Error(`GeminiProvider: thinkingLevel must be one of ${GEMINI_THINKING_LEVELS.join(', ')}, got "${level}"`);
    }
    this.models = { ...opts.models };
    this.timeoutMs = opts.timeoutMs;
    this.maxOutputTokens = tokenCap(opts.maxOutputTokens, 'maxOutputTokens') ?? 8192;
    this.retryMaxOutputTokens = tokenCap(opts.retryMaxOutputTokens, 'retryMaxOutputTokens')
      ?? Math.min(GEMINI_MAX_OUTPUT_TOKENS, this.maxOutputTokens * 2);
    if (this.retryMaxOutputTokens <= this.maxOutputTokens) {
      throw new Error('GeminiProvider: retryMaxOutputTokens must be larger than maxOutputTokens (the retry needs more room)');
    }
    this.thinkingLevel = level;
    this.temperature = opts.temperature;
    this.ai = new GoogleGenAI({
      apiKey: opts.apiKey,
      vertexai: false, // explicit, so GOOGLE_GENAI_USE_VERTEXAI in the environment cannot switch backends
      httpOptions: {
        baseUrl: opts.baseUrl ?? GEMINI_DEFAULT_BASE_URL,
        apiVersion: opts.apiVersion ?? 'v1beta',
        timeout: opts.timeoutMs,
        // No retryOptions on purpose: unset means one plain fetch (retries belong to the job queue); set, errors go through p-retry and lose their HTTP status.
      },
    });
  }

  async generate(input: NarrativeInput, signal: AbortSignal, lane: ModelLane = 'interactive'): Promise<GenerationResult> {
    return await this.complete({ ...buildPrompt(input), lane, jsonSchema: CLAIMS_JSON_SCHEMA }, signal);
  }

  /** One answer to any prompt (the narrative, or the MCP server's answers over memories): one
   *  request, plus one with a bigger cap when the first was cut at MAX_TOKENS. The result may
   *  still say MAX_TOKENS; the caller decides what a cut answer is worth. */
  async complete(prompt: CompletionPrompt, signal: AbortSignal): Promise<GenerationResult> {
    const model = this.models[prompt.lane ?? 'interactive'];
    const cap = prompt.maxOutputTokens ?? this.maxOutputTokens;
    const retryCap = prompt.maxOutputTokens === undefined
      ? this.retryMaxOutputTokens
      : Math.min(GEMINI_MAX_OUTPUT_TOKENS, cap * 2);
    const first = await this.call(model, prompt, cap, signal);
    if (first.finishReason !== 'MAX_TOKENS' || retryCap <= cap) return first;
    try {
      const second = await this.call(model, prompt, retryCap, signal);
      return { ...sumUsage(first, second), text: second.text, finishReason: second.finishReason };
    } catch (err) {
      // The first response was paid for: the failure carries its usage too.
      if (err instanceof ProviderError) err.usage = err.usage ? sumUsage(first, err.usage) : first;
      throw err;
    }
  }

  private async call(model: string, prompt: CompletionPrompt, maxOutputTokens: number, signal: AbortSignal): Promise<GenerationResult> {
    if (signal.aborted) throw callerAbort(signal);
    const { system, user } = prompt;

    // The SDK links our signal with addEventListener('abort'), which never fires if the signal
    // aborts before it gets there, and never removes its listener. So: hand it a per-call signal,
    // and race the call against the caller's abort so we always return promptly.
    const call = new AbortController();
    let onAbort = () => {};
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => {
        call.abort(signal.reason);
        reject(callerAbort(signal));
      };
    });
    signal.addEventListener('abort', onAbort, { once: true });

    let response: GenerateContentResponse;
    try {
      response = await Promise.race([
        this.ai.models.generateContent({
          model,
          contents: [{ role: 'user', parts: [{ text: user }] }],
          config: {
            systemInstruction: system,
            ...(this.temperature === undefined ? {} : { temperature: this.temperature }),
            maxOutputTokens,
            ...(prompt.jsonSchema === undefined ? {} : { responseMimeType: 'application/json', responseJsonSchema: prompt.jsonSchema }),
            thinkingConfig: { thinkingLevel: ThinkingLevel[this.thinkingLevel] },
            abortSignal: call.signal,
          },
        }),
        aborted,
      ]);
    } catch (err) {
      if (err instanceof ProviderError) throw err;
      if (signal.aborted) throw callerAbort(signal);
      throw classifyError(err, this.timeoutMs);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    return toResult(response, model);
  }
}

/** The answer and everything the response says it cost. */
function toResult(response: GenerateContentResponse, requestedModel: string): GenerationResult {
  const u = response.usageMetadata;
  const usage: Usage = {
    requestedModel,
    model: response.modelVersion || requestedModel,
    calls: 1,
    promptTokens: u?.promptTokenCount ?? null,
    outputTokens: u?.candidatesTokenCount ?? null,
    thoughtsTokens: u?.thoughtsTokenCount ?? null,
    cachedTokens: u?.cachedContentTokenCount ?? null,
    totalTokens: u?.totalTokenCount ?? null,
  };
  const blockReason = response.promptFeedback?.blockReason;
  if (blockReason) {
    throw new ProviderError('prompt_blocked', `Gemini blocked the prompt (BLOCKED:${blockReason})`, false, null, usage);
  }
  const candidate = response.candidates?.[0];
  if (!candidate) {
    throw new ProviderError('invalid_response', 'Gemini response has no candidates and no block reason', true, null, usage);
  }
  const text = (candidate.content?.parts ?? [])
    .filter((p) => typeof p.text === 'string' && !p.thought)
    .map((p) => p.text)
    .join('');
  return { ...usage, text, finishReason: candidate.finishReason ?? 'FINISH_REASON_UNSPECIFIED' };
}
