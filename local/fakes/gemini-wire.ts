// The fake Gemini's wire format: what it reads from a generateContent request, the response and
// error bodies it answers with and its token counting, as the real API shapes them. The server
// (./gemini.ts) picks which.
import { randomBytes } from 'node:crypto';
import {
  countMemoryLines, defaultClaimsJson, defaultNarrative, type FakeBehavior, type FakeErrorStatus, FAKE_ERROR_STATUSES,
  FAKE_MODEL_MAX_OUTPUT, type FakeThinkingConfig, type FakeUsage, quotedClaimsJson, thoughtsFor,
} from './gemini-behaviors.ts';

/** What the fake reads from a generateContent body; `contents` is null when there are none (or no JSON). */
export interface GenerateRequest {
  json: boolean;
  contents: unknown[] | null;
  /** The user turns' text: where the prompt's memory lines are. */
  userText: string;
  promptChars: number;
  /** See FakeCall.memoryBlockChars. */
  memoryBlockChars: number | null;
  maxOutputTokens: number | null;
  thinkingConfig: FakeThinkingConfig | null;
  /** Structured output asked for (responseMimeType application/json with a responseJsonSchema). */
  structured: boolean;
}

type Parts = { text?: unknown }[] | undefined;
const textOf = (parts: Parts) => (parts ?? []).map((p) => (typeof p?.text === 'string' ? p.text : '')).join('');

/** Length of what lies between the first `<memories>` line and the `</memories>` line after it. */
function memoryBlockChars(userText: string): number | null {
  const lines = userText.split('\n');
  const open = lines.indexOf('<memories>');
  const close = open < 0 ? -1 : lines.indexOf('</memories>', open + 1);
  return close < 0 ? null : lines.slice(open + 1, close).join('\n').length;
}

export function parseGenerateRequest(raw: string): GenerateRequest {
  let parsed: {
    contents?: { role?: string; parts?: Parts }[];
    systemInstruction?: { parts?: Parts };
    generationConfig?: { maxOutputTokens?: number; thinkingConfig?: FakeThinkingConfig; responseMimeType?: string; responseJsonSchema?: unknown };
  } | null = null;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = null;
  }
  const contents = Array.isArray(parsed?.contents) ? parsed.contents : null;
  const generation = parsed?.generationConfig;
  const userText = (contents ?? []).filter((c) => c?.role !== 'model').map((c) => textOf(c?.parts)).join('\n');
  return {
    json: parsed !== null,
    contents: contents && contents.length > 0 ? contents : null,
    userText,
    memoryBlockChars: memoryBlockChars(userText),
    promptChars: (contents ?? []).reduce((n, c) => n + textOf(c?.parts).length, 0) + textOf(parsed?.systemInstruction?.parts).length,
    maxOutputTokens: typeof generation?.maxOutputTokens === 'number' ? generation.maxOutputTokens : null,
    thinkingConfig: generation?.thinkingConfig && typeof generation.thinkingConfig === 'object' ? { ...generation.thinkingConfig } : null,
    structured: generation?.responseMimeType === 'application/json' && generation.responseJsonSchema !== undefined,
  };
}

/** One answer's identity and the prompt it answers: what every response body of a call shares. */
export interface Answering {
  model: string;
  request: GenerateRequest;
  promptTokenCount: number;
  responseId: string;
}

export const answering = (model: string, request: GenerateRequest): Answering =>
  ({ model, request, promptTokenCount: tokens(request.promptChars), responseId: randomBytes(15).toString('base64url') });

export interface OkOptions { usage?: Partial<FakeUsage>; modelVersion?: string; thoughtsTokens?: number; cut?: boolean }

/**
 * A 200 answer that "thinks" first: thoughts and text share the cap, as on the real API. A forced
 * MAX_TOKENS (`cut`, the truncated kind) cuts the text whatever the cap. Also returns the thought
 * tokens and finish reason, which the call record keeps.
 */
export function okResponse(a: Answering, full: string, opts: OkOptions = {}) {
  const cap = a.request.maxOutputTokens ?? FAKE_MODEL_MAX_OUTPUT;
  const thoughts = Math.min(cap, opts.thoughtsTokens ?? thoughtsFor(a.request.thinkingConfig));
  const room = cap - thoughts;
  let text = full;
  let finishReason = 'STOP';
  if (opts.cut) {
    text = full.slice(0, Math.max(1, Math.min(room * 4, Math.floor(full.length * 0.45))));
    finishReason = 'MAX_TOKENS';
  } else if (tokens(full.length) > room) {
    text = full.slice(0, room * 4); // empty when the thoughts took the whole cap
    finishReason = 'MAX_TOKENS';
  }
  const u = opts.usage ?? {};
  const p = u.promptTokenCount ?? a.promptTokenCount;
  const c = u.candidatesTokenCount ?? (text ? Math.min(room, tokens(text.length)) : 0);
  const t = u.thoughtsTokenCount ?? thoughts;
  const body = {
    candidates: [{ content: { parts: text ? [{ text }] : [], role: 'model' }, finishReason, index: 0 }],
    usageMetadata: {
      promptTokenCount: p,
      candidatesTokenCount: c,
      ...(t > 0 ? { thoughtsTokenCount: t } : {}), // the API leaves it out when nothing was thought
      ...(u.cachedContentTokenCount !== undefined ? { cachedContentTokenCount: u.cachedContentTokenCount } : {}),
      totalTokenCount: u.totalTokenCount ?? p + c + t,
      promptTokensDetails: [{ modality: 'TEXT', tokenCount: p }],
    },
    modelVersion: opts.modelVersion ?? a.model,
    responseId: a.responseId,
  };
  return { body, thoughtsTokens: t, finishReason };
}

/** A response: JSON, or raw bytes (the garbage kind's non-JSON body). */
export type Answer = { status: number; json: unknown } | { status: number; raw: string };

/**
 * What a behaviour answers when it plays (null: it never answers). `answered` learns an ok
 * answer's thinking tokens and finish reason, which the call record keeps. Structured output is
 * answered as the real API does: the JSON is the text of the candidate part.
 */
export function answerFor(b: FakeBehavior, a: Answering, answered: (thoughtsTokens: number, finishReason: string) => void): Answer | null {
  const ok = (full: string, o?: OkOptions): Answer => {
    const r = okResponse(a, full, o);
    answered(r.thoughtsTokens, r.finishReason);
    return { status: 200, json: r.body };
  };
  const { structured, userText } = a.request;
  const narrative = (n?: { claims?: number; bogusRef?: boolean }) => structured
    ? defaultClaimsJson(a.model, userText, n?.claims, n?.bogusRef)
    : defaultNarrative(a.model, countMemoryLines(userText));
  switch (b.kind) {
    case 'hang':
      return null; // the socket closes when the client gives up (or on close())
    case 'ok':
      return ok(b.text ?? narrative(b), b);
    case 'error':
      return { status: b.status, json: errorBody(b, a.model) };
    case 'blocked':
      return { status: 200, json: blockedResponse(a, b.reason ?? 'SAFETY') };
    case 'truncated':
      return ok(b.text ?? narrative(), { thoughtsTokens: b.thoughtsTokens, cut: true });
    case 'safety':
      return { status: 200, json: safetyResponse(a) };
    case 'garbage':
      return { status: 200, raw: b.body ?? '<!DOCTYPE html><html><head><title>Oops</title></head><body>upstream hiccup</body></html>' };
    case 'malformed':
      return ok(b.text ?? 'Sure! Here you go.', { thoughtsTokens: b.thoughtsTokens });
    case 'quote':
      return ok(structured ? quotedClaimsJson(userText, { careless: b.careless, unsupported: b.unsupported }) : narrative(), { thoughtsTokens: b.thoughtsTokens });
  }
}

/** The prompt itself refused (promptFeedback.blockReason, no candidates). */
export const blockedResponse = (a: Answering, reason: string) => ({
  promptFeedback: { blockReason: reason, safetyRatings: SAFETY_RATINGS },
  usageMetadata: { promptTokenCount: a.promptTokenCount, totalTokenCount: a.promptTokenCount, promptTokensDetails: [{ modality: 'TEXT', tokenCount: a.promptTokenCount }] },
  modelVersion: a.model,
  responseId: a.responseId,
});

/** The answer stopped for safety (finishReason SAFETY, no content). */
export const safetyResponse = (a: Answering) => ({
  candidates: [{ finishReason: 'SAFETY', index: 0, safetyRatings: SAFETY_RATINGS }],
  usageMetadata: { promptTokenCount: a.promptTokenCount, totalTokenCount: a.promptTokenCount },
  modelVersion: a.model,
  responseId: a.responseId,
});

// ---------------------------------------------------------------------------------------------
// Google's wire shapes

const GOOGLE_MESSAGES: Record<FakeErrorStatus, string> = {
  400: 'Request contains an invalid argument.',
  403: 'The caller does not have permission',
  404: 'Requested entity was not found.',
  429: 'You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.',
  500: 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting',
  503: 'The model is overloaded. Please try again later.',
  504: 'The request timed out. Please try again.',
};

export function googleError(code: number, status: string, message: string, details?: unknown[]) {
  return { error: { code, message, status, ...(details ? { details } : {}) } };
}

export const API_KEY_INVALID = googleError(400, 'INVALID_ARGUMENT', 'API key not valid. Please pass a valid API key.', [
  {
    '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
    reason: 'API_KEY_INVALID',
    domain: 'googleapis.com',
    metadata: { service: 'generativelanguage.googleapis.com' },
  },
  { '@type': 'type.googleapis.com/google.rpc.LocalizedMessage', locale: 'en-US', message: 'API key not valid. Please pass a valid API key.' },
]);

export function errorBody(b: Extract<FakeBehavior, { kind: 'error' }>, model: string) {
  const status = FAKE_ERROR_STATUSES[b.status];
  const details: unknown[] = [];
  if (b.status === 429) {
    details.push({
      '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
      violations: [{
        quotaMetric: 'generativelanguage.googleapis.com/generate_content_free_tier_requests',
        quotaId: 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier',
        quotaDimensions: { location: 'global', model },
        quotaValue: '10',
      }],
    });
    details.push({ '@type': 'type.googleapis.com/google.rpc.Help', links: [{ description: 'Learn more about Gemini API quotas', url: 'https://ai.google.dev/gemini-api/docs/rate-limits' }] });
    if (b.retryDelaySeconds !== undefined) {
      details.push({ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${b.retryDelaySeconds}s` });
    }
  }
  return googleError(b.status, status, b.message ?? GOOGLE_MESSAGES[b.status], details.length ? details : undefined);
}

export const SAFETY_RATINGS = [
  { category: 'HARM_CATEGORY_SEXUALLY_EXPLICIT', probability: 'NEGLIGIBLE' },
  { category: 'HARM_CATEGORY_HATE_SPEECH', probability: 'NEGLIGIBLE' },
  { category: 'HARM_CATEGORY_HARASSMENT', probability: 'NEGLIGIBLE' },
  { category: 'HARM_CATEGORY_DANGEROUS_CONTENT', probability: 'HIGH', blocked: true },
];

export const tokens = (chars: number) => Math.max(1, Math.ceil(chars / 4));
