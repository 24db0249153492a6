// A fake Gemini REST server for tests (node:http, no framework). It speaks the wire format of the
// Gemini API's generateContent (POST /{v1|v1beta}/models/{model}:generateContent, key in the
// x-goog-api-key header, Google's JSON error shape), so the real @google/genai client can be
// pointed at it with httpOptions.baseUrl.
//
// It "thinks" like Gemini 3: an answer spends thoughtsTokenCount (from the request's thinkingConfig,
// or forced by a step's thoughtsTokens) out of maxOutputTokens, reports it in usageMetadata with
// modelVersion, and when thoughts plus answer do not fit the cap it answers finishReason
// MAX_TOKENS with the text cut (empty when the thoughts alone took the cap).
//
// Many tests share one fake without interfering: a *scenario* is registered under a marker string
// and a request whose raw body contains the marker plays the scenario's next step (the last step
// repeats). Requests matching no marker get the default behaviour; a seeded chaos mode can replace
// them with failures. Calls are recorded per marker (model, API version, prompt size, time) —
// never the prompt itself. The same operations are exposed as an HTTP control API under /__fake/
// so test workers in other processes can drive a shared fake (see fakeGeminiControl).
//
// Tests synchronise with hold(marker) / release(marker), never with time: a held request is
// recorded on arrival (calls() sees it) and then waits, unanswered, until the test releases it
// (or the client gives up). `latencyMs` stays for the bench and chaos runs, which model a slow
// provider; no test uses it to order events.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { FAKE_GEMINI_API_KEY } from '../config.ts';
import {
  type FakeUsage, FAKE_MODEL_MAX_OUTPUT, type FakeThinkingConfig, type FakeBehavior, type FakeChaos, type FakeCall, assertBehavior, thoughtsFor, assertChaos, countMemoryLines, defaultNarrative, defaultClaimsJson, quotedClaimsJson, googleError, API_KEY_INVALID, errorBody, SAFETY_RATINGS, tokens
} from './gemini-behaviors.ts';

export * from './gemini-behaviors.ts';
export * from './gemini-control.ts';

// ---------------------------------------------------------------------------------------------
// Server

export interface StartFakeGeminiOptions {
  /** 0 or absent: a random free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** The only key accepted in x-goog-api-key (or ?key=); default FAKE_GEMINI_API_KEY. */
  apiKey?: string;
}

export interface FakeGemini {
  /** Base URL to give the client as httpOptions.baseUrl, e.g. http://127.0.0.1:40123 (no trailing slash). */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
  setDefault(behavior: FakeBehavior): void;
  /** Registers (or replaces, restarting at step 1) the scenario for `marker`. */
  scenario(marker: string, steps: FakeBehavior[]): void;
  /** Calls that matched `marker`, or every call when absent, oldest first. */
  calls(marker?: string): FakeCall[];
  /** Resolves once `count` calls matched `marker` (arrival, not answer); rejects after timeoutMs. */
  waitForCalls(marker: string, count?: number, timeoutMs?: number): Promise<FakeCall[]>;
  /** Back to the initial state: default ok, no scenarios, no chaos, no recorded calls. */
  reset(): void;
  /** Turns chaos on, or off with null / failureRate 0. */
  setChaos(chaos: FakeChaos | null): void;
  /** The next `times` requests for `marker` (default: all until release) are recorded, then wait unanswered. */
  hold(marker: string, times?: number): void;
  /** Stops holding `marker` and lets its waiting requests play their step; returns how many it let go. */
  release(marker: string): number;
}

/** mulberry32: small, fast, good enough and reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const GENERATE_PATH = /^\/(v1|v1beta|v1alpha)\/models\/([^/:]+):generateContent$/;
const MAX_BODY = 10 * 1024 * 1024;

interface Scenario { steps: FakeBehavior[]; next: number }
interface Waiter { marker: string; count: number; resolve: (c: FakeCall[]) => void }
interface Hold { remaining: number; parked: Set<() => void> }

export async function startFakeGemini(opts: StartFakeGeminiOptions): Promise<FakeGemini> {
  const host = opts.host ?? '127.0.0.1';
  let defaultBehavior: FakeBehavior = { kind: 'ok' };
  const scenarios = new Map<string, Scenario>();
  let chaos: (FakeChaos & { random: () => number }) | null = null;
  let records: FakeCall[] = [];
  let waiters: Waiter[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const holds = new Map<string, Hold>();

  const matching = (marker: string) => records.filter((r) => r.marker === marker);

  function record(call: FakeCall) {
    records.push(call);
    if (call.marker === null) return;
    waiters = waiters.filter((w) => {
      if (w.marker !== call.marker) return true;
      const got = matching(w.marker);
      if (got.length < w.count) return true;
      w.resolve(got);
      return false;
    });
  }

  function findMarker(raw: string): string | null {
    let best: string | null = null;
    for (const marker of scenarios.keys()) {
      if (raw.includes(marker) && (best === null || marker.length > best.length)) best = marker;
    }
    return best;
  }

  const api = {
    setDefault(b: FakeBehavior) {
      assertBehavior(b);
      defaultBehavior = b;
    },
    scenario(marker: string, steps: FakeBehavior[]) {
      if (typeof marker !== 'string' || marker.length < 4) throw new Error('scenario marker must be a string of at least 4 characters');
      if (!Array.isArray(steps) || steps.length === 0) throw new Error('scenario steps must be a non-empty list');
      steps.forEach(assertBehavior);
      scenarios.set(marker, { steps: [...steps], next: 0 });
    },
    calls(marker?: string): FakeCall[] {
      return (marker === undefined ? records : matching(marker)).map((r) => ({ ...r }));
    },
    reset() {
      defaultBehavior = { kind: 'ok' };
      scenarios.clear();
      chaos = null;
      records = [];
      for (const marker of [...holds.keys()]) api.release(marker);
    },
    hold(marker: string, times?: number) {
      if (typeof marker !== 'string' || marker.length < 4) throw new Error('hold marker must be a string of at least 4 characters');
      if (times !== undefined && !(Number.isInteger(times) && times > 0)) throw new Error('hold times must be a positive integer');
      const h = holds.get(marker);
      holds.set(marker, { remaining: times ?? Number.POSITIVE_INFINITY, parked: h?.parked ?? new Set() });
    },
    release(marker: string): number {
      const h = holds.get(marker);
      holds.delete(marker);
      if (!h) return 0;
      const parked = [...h.parked];
      h.parked.clear();
      for (const go of parked) go();
      return parked.length;
    },
    setChaos(c: FakeChaos | null) {
      if (c === null || c.failureRate === 0) {
        chaos = null;
        return;
      }
      assertChaos(c);
      chaos = { ...c, failures: [...c.failures], random: prng(c.seed) };
    },
  };

  function send(res: http.ServerResponse, status: number, body: unknown) {
    if (res.destroyed || res.writableEnded) return;
    const text = JSON.stringify(body, null, 2);
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  function later(res: http.ServerResponse, ms: number | undefined, fn: () => void) {
    if (!ms || ms <= 0) return fn();
    const t = setTimeout(() => {
      timers.delete(t);
      if (!res.destroyed) fn();
    }, ms);
    timers.add(t);
    res.once('close', () => {
      clearTimeout(t);
      timers.delete(t);
    });
  }

  function handleGenerate(req: http.IncomingMessage, res: http.ServerResponse, url: URL, raw: string, apiVersion: string, model: string) {
    const at = Date.now();
    const marker = findMarker(raw);
    const key = req.headers['x-goog-api-key'] ?? url.searchParams.get('key');
    let parsed: {
      contents?: { role?: string; parts?: { text?: unknown }[] }[];
      systemInstruction?: { parts?: { text?: unknown }[] };
      generationConfig?: { maxOutputTokens?: number; thinkingConfig?: FakeThinkingConfig; responseMimeType?: string; responseJsonSchema?: unknown };
    } | null = null;
    try {
      parsed = JSON.parse(raw);
    } catch {
      parsed = null;
    }
    const textOf = (parts: { text?: unknown }[] | undefined) => (parts ?? []).map((p) => (typeof p?.text === 'string' ? p.text : '')).join('');
    const contents = Array.isArray(parsed?.contents) ? parsed.contents : null;
    const userText = (contents ?? []).filter((c) => c?.role !== 'model').map((c) => textOf(c?.parts)).join('\n');
    const promptChars = (contents ?? []).reduce((n, c) => n + textOf(c?.parts).length, 0) + textOf(parsed?.systemInstruction?.parts).length;
    const generation = parsed?.generationConfig;
    const maxOutputTokens = typeof generation?.maxOutputTokens === 'number' ? generation.maxOutputTokens : null;
    const thinkingConfig = generation?.thinkingConfig && typeof generation.thinkingConfig === 'object' ? { ...generation.thinkingConfig } : null;
    const structured = generation?.responseMimeType === 'application/json' && generation.responseJsonSchema !== undefined;
    const base = { marker, model, apiVersion, promptChars, at, maxOutputTokens, thinkingConfig, structured, thoughtsTokens: null, finishReason: null };

    if (key !== (opts.apiKey ?? FAKE_GEMINI_API_KEY)) {
      record({ ...base, behavior: 'auth_error', status: 400, chaos: false });
      return send(res, 400, API_KEY_INVALID);
    }
    if (!contents || contents.length === 0) {
      record({ ...base, behavior: 'bad_request', status: 400, chaos: false });
      return send(res, 400, googleError(400, 'INVALID_ARGUMENT', parsed ? '* GenerateContentRequest.contents: contents is not specified\n' : 'Invalid JSON payload received.'));
    }
    // As the real API: a level and a budget together are refused.
    if (thinkingConfig?.thinkingLevel !== undefined && thinkingConfig.thinkingBudget !== undefined) {
      record({ ...base, behavior: 'bad_request', status: 400, chaos: false });
      return send(res, 400, googleError(400, 'INVALID_ARGUMENT', 'You can only set only one of thinking budget and thinking level.'));
    }

    let behavior: FakeBehavior;
    let chaotic = false;
    if (chaos && (chaos.scope === 'all' || marker === null) && chaos.random() < chaos.failureRate) {
      behavior = chaos.failures[Math.floor(chaos.random() * chaos.failures.length)];
      chaotic = true;
    } else if (marker !== null) {
      const s = scenarios.get(marker)!;
      behavior = s.steps[Math.min(s.next, s.steps.length - 1)];
      s.next++;
    } else {
      behavior = defaultBehavior;
    }

    const statusOf = (b: FakeBehavior) => (b.kind === 'hang' ? null : b.kind === 'error' ? b.status : 200);
    const call: FakeCall = { ...base, behavior: behavior.kind, status: statusOf(behavior), chaos: chaotic };
    record(call);

    const promptTokenCount = tokens(promptChars);
    const responseId = randomBytes(15).toString('base64url');
    const candidate = (text: string, finishReason: string) => ({
      content: { parts: text ? [{ text }] : [], role: 'model' },
      finishReason,
      index: 0,
    });
    /** A 200 answer that "thinks" first: thoughts and text share the cap, as on the real API. A
     *  forced MAX_TOKENS (the truncated kind) cuts the text whatever the cap. */
    const ok = (full: string, opts: { usage?: Partial<FakeUsage>; modelVersion?: string; thoughtsTokens?: number; cut?: boolean } = {}) => {
      const cap = maxOutputTokens ?? FAKE_MODEL_MAX_OUTPUT;
      const thoughts = Math.min(cap, opts.thoughtsTokens ?? thoughtsFor(thinkingConfig));
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
      const p = u.promptTokenCount ?? promptTokenCount;
      const c = u.candidatesTokenCount ?? (text ? Math.min(room, tokens(text.length)) : 0);
      const t = u.thoughtsTokenCount ?? thoughts;
      call.thoughtsTokens = t;
      call.finishReason = finishReason;
      return {
        candidates: [candidate(text, finishReason)],
        usageMetadata: {
          promptTokenCount: p,
          candidatesTokenCount: c,
          ...(t > 0 ? { thoughtsTokenCount: t } : {}), // the API leaves it out when nothing was thought
          ...(u.cachedContentTokenCount !== undefined ? { cachedContentTokenCount: u.cachedContentTokenCount } : {}),
          totalTokenCount: u.totalTokenCount ?? p + c + t,
          promptTokensDetails: [{ modality: 'TEXT', tokenCount: p }],
        },
        modelVersion: opts.modelVersion ?? model,
        responseId,
      };
    };
    // Structured output as the real API answers it: the JSON is the text of the candidate part.
    const narrative = (b?: { claims?: number; bogusRef?: boolean }) => structured
      ? defaultClaimsJson(model, countMemoryLines(userText), b?.claims, b?.bogusRef)
      : defaultNarrative(model, countMemoryLines(userText));

    const h = marker !== null && !chaotic ? holds.get(marker) : undefined;
    if (h && h.remaining > 0) {
      h.remaining--;
      const go = () => play();
      h.parked.add(go);
      res.once('close', () => h.parked.delete(go));
      return;
    }
    return play();

    function play(): void {
      switch (behavior.kind) {
        case 'hang':
          return; // never answers; the socket closes when the client gives up (or on close()).
        case 'ok': {
          const b = behavior;
          return later(res, b.latencyMs, () => send(res, 200, ok(b.text ?? narrative(b), b)));
        }
        case 'error': {
          const b = behavior;
          return later(res, b.latencyMs, () => send(res, b.status, errorBody(b, model)));
        }
        case 'blocked': {
          const reason = behavior.reason ?? 'SAFETY';
          return later(res, behavior.latencyMs, () => send(res, 200, {
            promptFeedback: { blockReason: reason, safetyRatings: SAFETY_RATINGS },
            usageMetadata: { promptTokenCount, totalTokenCount: promptTokenCount, promptTokensDetails: [{ modality: 'TEXT', tokenCount: promptTokenCount }] },
            modelVersion: model,
            responseId,
          }));
        }
        case 'truncated': {
          const b = behavior;
          return later(res, b.latencyMs, () => send(res, 200, ok(b.text ?? narrative(), { thoughtsTokens: b.thoughtsTokens, cut: true })));
        }
        case 'safety':
          return later(res, behavior.latencyMs, () => send(res, 200, {
            candidates: [{ finishReason: 'SAFETY', index: 0, safetyRatings: SAFETY_RATINGS }],
            usageMetadata: { promptTokenCount, totalTokenCount: promptTokenCount },
            modelVersion: model,
            responseId,
          }));
        case 'garbage': {
          const body = behavior.body ?? '<!DOCTYPE html><html><head><title>Oops</title></head><body>upstream hiccup</body></html>';
          return later(res, behavior.latencyMs, () => {
            if (res.destroyed) return;
            res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(body) });
            res.end(body);
          });
        }
        case 'malformed': {
          const b = behavior;
          return later(res, b.latencyMs, () => send(res, 200, ok(b.text ?? 'Sure! Here you go.', { thoughtsTokens: b.thoughtsTokens })));
        }
        case 'quote': {
          const b = behavior;
          const text = structured ? quotedClaimsJson(userText, b.careless) : narrative();
          return later(res, b.latencyMs, () => send(res, 200, ok(text, { thoughtsTokens: b.thoughtsTokens })));
        }
      }
    }
  }

  function handleControl(req: http.IncomingMessage, res: http.ServerResponse, url: URL, raw: string) {
    const route = `${req.method} ${url.pathname}`;
    try {
      const body = raw ? JSON.parse(raw) : {};
      switch (route) {
        case 'POST /__fake/scenario':
          api.scenario(body.marker, body.steps);
          return send(res, 200, { ok: true });
        case 'POST /__fake/default':
          api.setDefault(body.behavior);
          return send(res, 200, { ok: true });
        case 'POST /__fake/chaos':
          api.setChaos(body && Object.keys(body).length ? body : null);
          return send(res, 200, { ok: true });
        case 'POST /__fake/reset':
          api.reset();
          return send(res, 200, { ok: true });
        case 'POST /__fake/hold':
          api.hold(body.marker, body.times ?? undefined);
          return send(res, 200, { ok: true });
        case 'POST /__fake/release':
          return send(res, 200, { ok: true, released: api.release(body.marker) });
        case 'GET /__fake/calls': {
          const marker = url.searchParams.get('marker');
          return send(res, 200, { calls: api.calls(marker === null || marker === '' ? undefined : marker) });
        }
        default:
          return send(res, 404, googleError(404, 'NOT_FOUND', `Unknown control route ${route}.`));
      }
    } catch (err) {
      return send(res, 400, googleError(400, 'INVALID_ARGUMENT', err instanceof Error ? err.message : String(err)));
    }
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        send(res, 413, googleError(413, 'INVALID_ARGUMENT', 'Request payload size exceeds the limit.'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('error', () => {});
    req.on('end', () => {
      if (res.writableEnded) return;
      const raw = Buffer.concat(chunks).toString('utf8');
      if (url.pathname.startsWith('/__fake/')) return handleControl(req, res, url, raw);
      const m = GENERATE_PATH.exec(url.pathname);
      if (m && req.method === 'POST') return handleGenerate(req, res, url, raw, m[1], decodeURIComponent(m[2]));
      return send(res, 404, googleError(404, 'NOT_FOUND', `Method not found: ${req.method} ${url.pathname}`));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;

  return {
    url: `http://${urlHost}:${port}`,
    port,
    ...api,
    waitForCalls(marker: string, count = 1, timeoutMs = 10_000) {
      const got = matching(marker);
      if (got.length >= count) return Promise.resolve(got.map((r) => ({ ...r })));
      return new Promise<FakeCall[]>((resolve, reject) => {
        const t = setTimeout(() => {
          waiters = waiters.filter((w) => w !== waiter);
          reject(new Error(`fake-gemini: ${matching(marker).length}/${count} calls for marker ${marker} after ${timeoutMs} ms`));
        }, timeoutMs);
        const waiter: Waiter = {
          marker,
          count,
          resolve: (c) => {
            clearTimeout(t);
            resolve(c.map((r) => ({ ...r })));
          },
        };
        waiters.push(waiter);
      });
    },
    close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      return new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections(); // hung requests and idle keep-alive sockets
      });
    },
  };
}

