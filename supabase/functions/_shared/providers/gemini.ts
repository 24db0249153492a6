// The Gemini narrative writer, on @google/genai. Configuration comes in as a plain object (a
// factory reads the environment), and there are no Deno globals, so Node tests import it too.
// One attempt per call: every failure becomes a ProviderError, classified so the job queue knows
// whether to retry (and when). Error messages carry HTTP and Google status, never the prompt or key.
import { ApiError, type GenerateContentResponse, GoogleGenAI } from '@google/genai';
import { buildPrompt } from '../narrative/prompt.ts';
import { type CompletionPrompt, type GenerationResult, type NarrativeInput, type NarrativeProvider, ProviderError } from './types.ts';

export interface GeminiProviderOptions {
  apiKey: string;
  model: string;
  /** Default https://generativelanguage.googleapis.com (tests point this at a fake). */
  baseUrl?: string;
  /** Default 'v1beta'. */
  apiVersion?: string;
  /** Deadline for one request, response body included. */
  timeoutMs: number;
  /** Default 8192: room for a narrative plus the thinking tokens of 2.5 models. */
  maxOutputTokens?: number;
  /** Default 0.4. */
  temperature?: number;
}

export const GEMINI_DEFAULT_BASE_URL = 'https://generativelanguage.googleapis.com';

const RETRYABLE_HTTP = new Set([500, 502, 503, 504]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ECONNABORTED',
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT',
]);
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
// Deno's fetch errors have no code, only a message.
const NETWORK_MESSAGE = /fetch failed|error sending request|connection (?:refused|reset|closed)|tcp connect|dns error|network error|socket hang up|terminated|error reading a body/i;

export class GeminiProvider implements NarrativeProvider {
  readonly name = 'gemini' as const;
  readonly model: string;
  private readonly ai: GoogleGenAI;
  private readonly timeoutMs: number;
  private readonly maxOutputTokens: number;
  private readonly temperature: number;

  constructor(opts: GeminiProviderOptions) {
    if (!opts.apiKey) throw new Error('GeminiProvider: apiKey is required');
    if (!opts.model) throw new Error('GeminiProvider: model is required');
    if (!(opts.timeoutMs > 0)) throw new Error('GeminiProvider: timeoutMs must be positive');
    this.model = opts.model;
    this.timeoutMs = opts.timeoutMs;
    this.maxOutputTokens = opts.maxOutputTokens ?? 8192;
    this.temperature = opts.temperature ?? 0.4;
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

  async generate(input: NarrativeInput, signal: AbortSignal): Promise<GenerationResult> {
    return await this.complete(buildPrompt(input), signal);
  }

  /** One call with any prompt (the narrative, or the MCP server's answers over memories). */
  async complete(prompt: CompletionPrompt, signal: AbortSignal): Promise<GenerationResult> {
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
          model: this.model,
          contents: [{ role: 'user', parts: [{ text: user }] }],
          config: {
            systemInstruction: system,
            temperature: this.temperature,
            maxOutputTokens: prompt.maxOutputTokens ?? this.maxOutputTokens,
            abortSignal: call.signal,
          },
        }),
        aborted,
      ]);
    } catch (err) {
      if (err instanceof ProviderError) throw err;
      if (signal.aborted) throw callerAbort(signal);
      throw this.classify(err);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    return this.toResult(response);
  }

  private toResult(response: GenerateContentResponse): GenerationResult {
    const blockReason = response.promptFeedback?.blockReason;
    if (blockReason) {
      throw new ProviderError('prompt_blocked', `Gemini blocked the prompt (BLOCKED:${blockReason})`, false);
    }
    const candidate = response.candidates?.[0];
    if (!candidate) {
      throw new ProviderError('invalid_response', 'Gemini response has no candidates and no block reason', true);
    }
    const text = (candidate.content?.parts ?? [])
      .filter((p) => typeof p.text === 'string' && !p.thought)
      .map((p) => p.text)
      .join('');
    const usage = response.usageMetadata;
    return {
      text,
      finishReason: candidate.finishReason ?? 'FINISH_REASON_UNSPECIFIED',
      model: response.modelVersion ?? this.model,
      promptTokens: usage?.promptTokenCount ?? null,
      outputTokens: usage?.candidatesTokenCount ?? null,
    };
  }

  private classify(err: unknown): ProviderError {
    if (isApiError(err)) return fromApiError(err.status, err.message);
    const e = err as { name?: unknown; message?: unknown; code?: unknown; cause?: unknown } | null;
    const name = typeof e?.name === 'string' ? e.name : '';
    if (name === 'AbortError' || name === 'TimeoutError') {
      return new ProviderError('timeout', `Gemini request timed out after ${this.timeoutMs} ms`, true);
    }
    const codes = errorCodes(err);
    if (codes.some((c) => TIMEOUT_CODES.has(c))) {
      return new ProviderError('timeout', `Gemini request timed out (${codes.join(', ')})`, true);
    }
    const message = typeof e?.message === 'string' ? e.message : String(err);
    if (codes.some((c) => NETWORK_CODES.has(c)) || (name === 'TypeError' && NETWORK_MESSAGE.test(message))) {
      const phrase = /connection refused|connection reset|connection closed|dns error|tcp connect error/i.exec(causeMessages(err))?.[0];
      const detail = codes.length ? codes.join(', ') : (phrase ?? 'fetch failed');
      return new ProviderError('network', `Gemini unreachable: ${detail}`, true);
    }
    // A 2xx whose body is not JSON (SyntaxError from response.json()), or JSON the SDK cannot use.
    if (name === 'SyntaxError' || name === 'TypeError') {
      return new ProviderError('invalid_response', `Gemini response could not be parsed (${name})`, true);
    }
    return new ProviderError('unexpected', `Gemini call failed: ${name || 'Error'}: ${message.slice(0, 200)}`, true);
  }
}

function isApiError(err: unknown): err is ApiError {
  return err instanceof ApiError
    || (err instanceof Error && err.name === 'ApiError' && typeof (err as { status?: unknown }).status === 'number');
}

function callerAbort(signal: AbortSignal): ProviderError {
  const reason = signal.reason as { name?: unknown } | undefined;
  const why = reason?.name === 'TimeoutError' ? 'deadline exceeded' : 'aborted';
  return new ProviderError('timeout', `Gemini request cancelled by the caller (${why})`, true);
}

/** Codes on an error and its causes (Node's fetch wraps ECONNREFUSED in TypeError.cause). */
function errorCodes(err: unknown): string[] {
  const codes: string[] = [];
  let e = err as { code?: unknown; cause?: unknown; errors?: unknown } | undefined;
  for (let depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    if (typeof e.code === 'string') codes.push(e.code);
    if (Array.isArray(e.errors)) { // AggregateError (happy eyeballs: one error per address)
      for (const x of e.errors) if (typeof (x as { code?: unknown })?.code === 'string') codes.push((x as { code: string }).code);
    }
    e = e.cause as typeof e;
  }
  return [...new Set(codes)];
}

/** Messages of an error and its causes (Deno's fetch says "fetch failed" and puts the reason in cause). */
function causeMessages(err: unknown): string {
  const out: string[] = [];
  let e = err as { message?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    if (typeof e.message === 'string') out.push(e.message);
    e = e.cause as typeof e;
  }
  return out.join(' | ');
}

interface GoogleErrorBody {
  error?: {
    code?: number;
    status?: string;
    details?: { '@type'?: string; retryDelay?: string; reason?: string }[];
  };
}

/** ApiError.message is the JSON error body as the SDK stringified it. */
function fromApiError(status: number, message: string): ProviderError {
  let body: GoogleErrorBody = {};
  try {
    const parsed = JSON.parse(message);
    if (parsed && typeof parsed === 'object') body = parsed;
  } catch { /* not JSON: keep only the HTTP status */ }
  const details = Array.isArray(body.error?.details) ? body.error.details : [];
  const googleStatus = typeof body.error?.status === 'string' ? body.error.status.replace(/[^\w ]/g, '').slice(0, 60) : '';
  const reason = details.find((d) => d?.['@type']?.endsWith('google.rpc.ErrorInfo') && typeof d.reason === 'string')?.reason;
  const what = `HTTP ${status}${googleStatus ? ` ${googleStatus}` : ''}${reason ? ` (${reason.replace(/[^\w]/g, '').slice(0, 60)})` : ''}`;

  if (status === 429) {
    const delay = details.find((d) => d?.['@type']?.endsWith('google.rpc.RetryInfo'))?.retryDelay;
    return new ProviderError('rate_limited', `Gemini rate limit: ${what}`, true, parseDuration(delay));
  }
  if (status === 408) return new ProviderError('timeout', `Gemini request timed out: ${what}`, true);
  if (RETRYABLE_HTTP.has(status)) return new ProviderError('provider_unavailable', `Gemini unavailable: ${what}`, true);
  return new ProviderError('provider_rejected', `Gemini rejected the request: ${what}`, false);
}

/** A google.protobuf.Duration in JSON ("7s", "1.5s", "0.250s") in milliseconds, or null. */
export function parseDuration(value: unknown): number | null {
  if (typeof value !== 'string') return null;
  const m = /^\s*(\d+(?:\.\d+)?)s\s*$/.exec(value);
  return m ? Math.round(Number(m[1]) * 1000) : null;
}
