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
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { FAKE_GEMINI_API_KEY } from '../config.ts';
import { type FakeBehavior, type FakeChaos, type FakeCall, assertBehavior, assertChaos, prng } from './gemini-behaviors.ts';
import { type ControlledFake, controlRoute } from './gemini-control.ts';
import { answerFor, answering, API_KEY_INVALID, googleError, parseGenerateRequest } from './gemini-wire.ts';

export * from './gemini-behaviors.ts';
export * from './gemini-control.ts';
export * from './gemini-wire.ts';

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

/** The running fake: its control operations (ControlledFake, documented there) and its address. */
export interface FakeGemini extends ControlledFake {
  /** Base URL to give the client as httpOptions.baseUrl, e.g. http://127.0.0.1:40123 (no trailing slash). */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
  /** Resolves once `count` calls matched `marker` (arrival, not answer); rejects after timeoutMs. */
  waitForCalls(marker: string, count?: number, timeoutMs?: number): Promise<FakeCall[]>;
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
    const request = parseGenerateRequest(raw);
    const { maxOutputTokens, thinkingConfig, structured } = request;
    const base = { marker, model, apiVersion, promptChars: request.promptChars, memoryBlockChars: request.memoryBlockChars, at, maxOutputTokens, thinkingConfig, structured, thoughtsTokens: null, finishReason: null };

    if (key !== (opts.apiKey ?? FAKE_GEMINI_API_KEY)) {
      record({ ...base, behavior: 'auth_error', status: 400, chaos: false });
      return send(res, 400, API_KEY_INVALID);
    }
    if (!request.contents) {
      record({ ...base, behavior: 'bad_request', status: 400, chaos: false });
      return send(res, 400, googleError(400, 'INVALID_ARGUMENT', request.json ? '* GenerateContentRequest.contents: contents is not specified\n' : 'Invalid JSON payload received.'));
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

    const a = answering(model, request);
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
      if (behavior.kind === 'hang') return; // never answers
      later(res, behavior.latencyMs, () => {
        const r = answerFor(behavior, a, (thoughts, finishReason) => {
          call.thoughtsTokens = thoughts;
          call.finishReason = finishReason;
        });
        if (r === null || res.destroyed) return;
        if ('json' in r) return send(res, r.status, r.json);
        res.writeHead(r.status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(r.raw) });
        res.end(r.raw);
      });
    }
  }

  function handleControl(req: http.IncomingMessage, res: http.ServerResponse, url: URL, raw: string) {
    const { status, body } = controlRoute(api, req.method ?? 'GET', url, raw);
    return send(res, status, body);
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

