// How a failed Gemini call becomes a ProviderError: HTTP errors by status and Google's error
// details (RetryInfo for 429), transport errors by their codes or, on Deno, their messages.
// Messages carry HTTP and Google status, never the prompt or the key.
import { ApiError } from '@google/genai';
import { ProviderError } from './types.ts';

const RETRYABLE_HTTP = new Set([500, 502, 503, 504]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ECONNABORTED',
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT',
]);
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
// Deno's fetch errors have no code, only a message.
const NETWORK_MESSAGE = /fetch failed|error sending request|connection (?:refused|reset|closed)|tcp connect|dns error|network error|socket hang up|terminated|error reading a body/i;

/** Any failure of a generateContent call other than the caller's abort, as a ProviderError. */
export function classifyError(err: unknown, timeoutMs: number): ProviderError {
  if (isApiError(err)) return fromApiError(err.status, err.message);
  const e = err as { name?: unknown; message?: unknown; code?: unknown; cause?: unknown } | null;
  const name = typeof e?.name === 'string' ? e.name : '';
  if (name === 'AbortError' || name === 'TimeoutError') {
    return new ProviderError('timeout', `Gemini request timed out after ${timeoutMs} ms`, true);
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

function isApiError(err: unknown): err is ApiError {
  return err instanceof ApiError
    || (err instanceof Error && err.name === 'ApiError' && typeof (err as { status?: unknown }).status === 'number');
}

export function callerAbort(signal: AbortSignal): ProviderError {
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
