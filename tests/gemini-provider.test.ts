// GeminiProvider (the real @google/genai client) against the local fake Gemini server: results,
// and the classification of every failure into retryable / permanent ProviderErrors. Also a few
// checks of the fake itself (scenarios, markers, control API, chaos). No network, no stack needed.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NARRATIVE_SECTIONS, providerClaim } from '../shared/narrative.ts';
import { GeminiProvider, type GeminiProviderOptions } from '../supabase/functions/_shared/providers/gemini.ts';
import { parseDuration } from '../supabase/functions/_shared/providers/gemini-errors.ts';
import { type NarrativeInput, ProviderError } from '../supabase/functions/_shared/providers/types.ts';
import {
  defaultNarrative, FAKE_THOUGHTS, type FakeBehavior, type FakeGemini, fakeGeminiControl, startFakeGemini,
} from '../local/fakes/gemini.ts';

const KEY = `test-key-${randomUUID()}`;
const MODEL = 'gemini-3.8-flash';
const BULK_MODEL = 'gemini-3.5-flash-lite';

let fake: FakeGemini;
beforeAll(async () => {
  fake = await startFakeGemini({ apiKey: KEY });
});
afterAll(async () => {
  await fake?.close();
});

/** A marker unique to one test: it goes into a memory, so into the request body. */
const newMarker = () => `mk${randomUUID().replaceAll('-', '')}`;

function input(marker: string, n = 3): NarrativeInput {
  const memories = Array.from({ length: n }, (_, i) => ({
    content: i === 0 ? `I am building a narrative cache (ref ${marker}).` : `Memory number ${i + 1}: prefers short answers.`,
    created_at: `2026-01-${String(10 + i).padStart(2, '0')}T12:00:00Z`,
    importance: i === 0 ? 0.9 : null,
  }));
  return { memories, omitted: 0, total: n };
}

function provider(over: Partial<GeminiProviderOptions> = {}): GeminiProvider {
  return new GeminiProvider({ apiKey: KEY, models: { interactive: MODEL, bulk: BULK_MODEL }, baseUrl: fake.url, timeoutMs: 5_000, ...over });
}

const live = () => new AbortController().signal;

/** The ProviderError a call rejects with; fails the test if it resolves or throws anything else. */
async function failure(p: Promise<unknown>, why: string): Promise<ProviderError> {
  let result: unknown;
  try {
    result = await p;
  } catch (err) {
    expect(err, `${why}: rejects with a ProviderError`).toBeInstanceOf(ProviderError);
    return err as ProviderError;
  }
  throw new Error(`${why}: expected a ProviderError, got a result: ${JSON.stringify(result).slice(0, 200)}`);
}

/** Runs one scenario step through the provider and returns the error it is classified as. */
async function failWith(behavior: FakeBehavior, over: Partial<GeminiProviderOptions> = {}) {
  const m = newMarker();
  fake.scenario(m, [behavior]);
  const err = await failure(provider(over).generate(input(m), live()), `behavior ${behavior.kind}`);
  expect(err.message, 'error message never contains the prompt').not.toContain(m);
  expect(err.message, 'error message never contains the API key').not.toContain(KEY);
  return { err, marker: m };
}

/** A free port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('GeminiProvider against the fake', () => {
  it('happy path: narrative text, STOP, every token count, model; thinking level and cap sent; key and v1beta path used', async () => {
    const m = newMarker();
    fake.scenario(m, [{ kind: 'ok', usage: { promptTokenCount: 321, candidatesTokenCount: 123 } }]);
    const r = await provider().generate(input(m, 3), live());

    const claims = (JSON.parse(r.text) as { claims: unknown[] }).claims;
    expect(claims.every((c) => providerClaim.safeParse(c).success), 'default fake answer: claims in the structured-output shape').toBe(true);
    expect(claims.flatMap((c) => (c as { memory_refs: string[] }).memory_refs).every((ref) => ['m1', 'm2', 'm3'].includes(ref)),
      'the fake cites only the refs the prompt gave').toBe(true);
    expect(r.text, 'the fake echoes the model it was called with').toContain(`model ${MODEL}`);
    expect(r.text, 'the fake saw the three memory lines of the prompt').toContain('from 3 memory lines');
    expect(r.finishReason, 'finish reason of candidate 0').toBe('STOP');
    expect(r.model, 'model from response.modelVersion').toBe(MODEL);
    expect(r.promptTokens, 'usageMetadata.promptTokenCount').toBe(321);
    expect(r.outputTokens, 'usageMetadata.candidatesTokenCount').toBe(123);
    expect(r.thoughtsTokens, 'usageMetadata.thoughtsTokenCount: the fake thought at level LOW').toBe(FAKE_THOUGHTS.LOW);
    expect(r.totalTokens, 'usageMetadata.totalTokenCount: prompt + answer + thoughts').toBe(321 + 123 + FAKE_THOUGHTS.LOW);
    expect(r.cachedTokens, 'no context cache used: not reported').toBeNull();
    expect(r.calls, 'one response').toBe(1);
    expect(r.requestedModel, 'the interactive model by default').toBe(MODEL);

    const calls = fake.calls(m);
    expect(calls.length, 'exactly one request (no SDK retries)').toBe(1);
    expect(calls[0].status, 'the API key was accepted').toBe(200);
    expect(calls[0].behavior, 'the scenario step was played').toBe('ok');
    expect(calls[0].apiVersion, 'default API version in the path').toBe('v1beta');
    expect(calls[0].model, 'model in the path').toBe(MODEL);
    expect(calls[0].structured, 'structured output asked for (responseMimeType + responseJsonSchema)').toBe(true);
    expect(calls[0].promptChars, 'system instruction and user prompt were sent').toBeGreaterThan(500);
    expect(calls[0].thinkingConfig, 'the thinking level is always explicit').toEqual({ thinkingLevel: 'LOW' });
    expect(calls[0].maxOutputTokens, 'the default cap, room for thoughts plus a narrative').toBe(8192);
  });

  it('the lane picks the model; the thinking level and cap come from the options', async () => {
    const m = newMarker();
    fake.scenario(m, [{ kind: 'ok', usage: { cachedContentTokenCount: 40 } }]);
    const r = await provider({ thinkingLevel: 'MEDIUM', maxOutputTokens: 6000 }).generate(input(m), live(), 'bulk');
    const [call] = fake.calls(m);
    expect(call.model, 'bulk lane: the bulk model in the path').toBe(BULK_MODEL);
    expect(r.requestedModel, 'requested model reported').toBe(BULK_MODEL);
    expect(r.model, 'answered by the bulk model (modelVersion)').toBe(BULK_MODEL);
    expect(call.thinkingConfig, 'configured level sent').toEqual({ thinkingLevel: 'MEDIUM' });
    expect(call.maxOutputTokens, 'configured cap sent').toBe(6000);
    expect(r.thoughtsTokens, 'MEDIUM thoughts reported').toBe(FAKE_THOUGHTS.MEDIUM);
    expect(r.cachedTokens, 'usageMetadata.cachedContentTokenCount').toBe(40);
  });

  it('refuses an unknown thinking level and a retry cap that is not bigger', () => {
    expect(() => provider({ thinkingLevel: 'EXTREME' as never }), 'unknown level').toThrow(/thinkingLevel must be one of/);
    expect(() => provider({ maxOutputTokens: 4096, retryMaxOutputTokens: 4096 }), 'retry cap not bigger').toThrow(/must be larger/);
    expect(() => provider({ maxOutputTokens: 100_000 }), 'over the model limit').toThrow(/1\.\.65536/);
  });

  it('thoughts eat the whole cap: empty MAX_TOKENS, then one retry with a bigger cap that fits', async () => {
    const m = newMarker();
    fake.scenario(m, [{ kind: 'ok', thoughtsTokens: 9000 }]);
    const r = await provider().generate(input(m), live());
    const calls = fake.calls(m);
    expect(calls.map((c) => c.maxOutputTokens), 'first the cap, then twice the cap (never the identical request)').toEqual([8192, 16384]);
    expect(calls.map((c) => c.finishReason), 'cut, then complete').toEqual(['MAX_TOKENS', 'STOP']);
    expect(r.finishReason, 'the retry finished').toBe('STOP');
    expect(() => JSON.parse(r.text), 'the retry\'s text is whole JSON').not.toThrow();
    expect(r.calls, 'two responses').toBe(2);
    expect(r.thoughtsTokens, 'thoughts of both responses: the whole first cap, then 9000').toBe(8192 + 9000);
    expect(r.outputTokens, 'answer tokens reported').toBeGreaterThan(0);
    expect(r.totalTokens, 'total of both responses').toBe(r.promptTokens! + r.outputTokens! + r.thoughtsTokens!);
  });

  it('cut twice: the result still says MAX_TOKENS (the caller fails it) with both usages summed', async () => {
    const m = newMarker();
    fake.scenario(m, [{ kind: 'truncated' }]);
    const r = await provider({ maxOutputTokens: 2000 }).generate(input(m), live());
    expect(fake.calls(m).map((c) => c.maxOutputTokens), 'exactly one retry, with the bigger cap').toEqual([2000, 4000]);
    expect(r.finishReason, 'finish reason').toBe('MAX_TOKENS');
    expect(r.text.startsWith(`{"claims":[{"section":"${NARRATIVE_SECTIONS[0]}"`), 'the cut text is the start of the claims JSON').toBe(true);
    expect(() => JSON.parse(r.text), 'the cut text is not valid JSON').toThrow();
    expect(r.calls, 'two responses').toBe(2);
    expect(r.thoughtsTokens, 'LOW thoughts twice').toBe(2 * FAKE_THOUGHTS.LOW);
  });

  it('a retry that fails carries the first response\'s usage', async () => {
    const m = newMarker();
    fake.scenario(m, [{ kind: 'truncated' }, { kind: 'error', status: 503 }]);
    const err = await failure(provider().generate(input(m), live()), 'retry 503');
    expect(err.code, 'the retry\'s failure').toBe('provider_unavailable');
    expect(err.usage?.calls, 'one response was paid for').toBe(1);
    expect(err.usage?.thoughtsTokens, 'its thoughts').toBe(FAKE_THOUGHTS.LOW);
    expect(err.usage?.promptTokens ?? 0, 'its prompt').toBeGreaterThan(0);
  });

  it('uses the configured apiVersion, and reports modelVersion and default token counts', async () => {
    const m = newMarker();
    fake.scenario(m, [{ kind: 'ok', modelVersion: 'gemini-3.8-flash-001' }]);
    const r = await provider({ apiVersion: 'v1' }).generate(input(m, 5), live());
    expect(fake.calls(m)[0]?.apiVersion, 'request went to /v1/').toBe('v1');
    expect(r.model, 'response.modelVersion wins over the configured model').toBe('gemini-3.8-flash-001');
    expect(r.requestedModel, 'the configured model is kept as requested').toBe(MODEL);
    expect(r.text, 'five memory lines in the prompt').toContain('from 5 memory lines');
    expect(r.promptTokens ?? 0, 'prompt token count reported').toBeGreaterThan(0);
    expect(r.outputTokens ?? 0, 'output token count reported').toBeGreaterThan(0);
  });

  it('wrong API key: permanent provider_rejected with status, no key in the message', async () => {
    const m = newMarker();
    fake.scenario(m, [{ kind: 'ok' }]);
    const err = await failure(provider({ apiKey: 'wrong-key-123' }).generate(input(m), live()), 'wrong key');
    expect(err.code, 'code').toBe('provider_rejected');
    expect(err.retryable, 'a bad key does not heal by retrying').toBe(false);
    expect(err.message, 'HTTP status and Google status in the message').toMatch(/400 INVALID_ARGUMENT \(API_KEY_INVALID\)/);
    expect(err.message, 'the wrong key is not echoed').not.toContain('wrong-key-123');
    expect(err.message, 'the prompt is not echoed').not.toContain(m);
    expect(fake.calls(m).map((c) => c.behavior), 'refused before the scenario').toEqual(['auth_error']);
  });

  it('429 with RetryInfo: retryable rate_limited with retryAfterMs', async () => {
    const { err } = await failWith({ kind: 'error', status: 429, retryDelaySeconds: 7 });
    expect(err.code, 'code').toBe('rate_limited');
    expect(err.retryable, 'rate limits are retryable').toBe(true);
    expect(err.retryAfterMs, 'RetryInfo.retryDelay "7s"').toBe(7000);

    const { err: frac } = await failWith({ kind: 'error', status: 429, retryDelaySeconds: 1.5 });
    expect(frac.retryAfterMs, 'RetryInfo.retryDelay "1.5s"').toBe(1500);

    const { err: bare } = await failWith({ kind: 'error', status: 429 });
    expect(bare.code, 'code without RetryInfo').toBe('rate_limited');
    expect(bare.retryAfterMs, 'no RetryInfo, no hint').toBeNull();
  });

  it('parses protobuf durations', () => {
    expect(parseDuration('7s'), '7s').toBe(7000);
    expect(parseDuration('0.250s'), '0.250s').toBe(250);
    expect(parseDuration('soon'), 'garbage').toBeNull();
    expect(parseDuration(undefined), 'absent').toBeNull();
  });

  it('503 and 500: retryable provider_unavailable', async () => {
    for (const status of [503, 500] as const) {
      const { err } = await failWith({ kind: 'error', status });
      expect(err.code, `${status} code`).toBe('provider_unavailable');
      expect(err.retryable, `${status} is retryable`).toBe(true);
      expect(err.message, `${status} message names the status`).toContain(`HTTP ${status}`);
    }
  });

  it('400 and 403: permanent provider_rejected', async () => {
    const { err } = await failWith({ kind: 'error', status: 400 });
    expect(err.code, '400 code').toBe('provider_rejected');
    expect(err.retryable, '400 is permanent').toBe(false);
    expect(err.message, '400 message').toContain('HTTP 400 INVALID_ARGUMENT');

    const { err: denied } = await failWith({ kind: 'error', status: 403 });
    expect(denied.code, '403 code').toBe('provider_rejected');
    expect(denied.retryable, '403 is permanent').toBe(false);
    expect(denied.message, '403 message').toContain('HTTP 403 PERMISSION_DENIED');
  });

  it('hang: httpOptions.timeout gives a retryable timeout, promptly', async () => {
    // The fake never answers a hang, so any error at all is the client's own timeout firing.
    const { err, marker } = await failWith({ kind: 'hang' }, { timeoutMs: 300 });
    expect(err.code, 'code').toBe('timeout');
    expect(err.retryable, 'timeouts are retryable').toBe(true);
    expect(err.message, 'says it was our own timeout').toContain('300 ms');
    expect(fake.calls(marker).length, 'the request reached the fake').toBe(1);
  });

  it('blocked prompt: permanent prompt_blocked', async () => {
    const { err } = await failWith({ kind: 'blocked' });
    expect(err.code, 'code').toBe('prompt_blocked');
    expect(err.retryable, 'the same prompt is blocked again').toBe(false);
    expect(err.message, 'block reason in the message').toContain('BLOCKED:SAFETY');
    expect(err.usage?.promptTokens ?? 0, 'the blocked prompt\'s tokens are reported').toBeGreaterThan(0);
  });

  it('safety-stopped candidate: reports SAFETY with empty text', async () => {
    const m = newMarker();
    fake.scenario(m, [{ kind: 'safety' }]);
    const r = await provider().generate(input(m), live());
    expect(r.finishReason, 'finish reason').toBe('SAFETY');
    expect(r.text, 'no text').toBe('');
  });

  it('malformed: returns the text as is (STOP), which is not a narrative', async () => {
    const m = newMarker();
    fake.scenario(m, [{ kind: 'malformed' }]);
    const r = await provider().generate(input(m), live());
    expect(r.finishReason, 'finish reason').toBe('STOP');
    expect(r.text, 'text passed through').toBe('Sure! Here you go.');
    expect(() => JSON.parse(r.text), 'the caller will reject it (not JSON)').toThrow();
  });

  it('garbage body: retryable invalid_response', async () => {
    const { err } = await failWith({ kind: 'garbage' });
    expect(err.code, 'code').toBe('invalid_response');
    expect(err.retryable, 'a broken body may be transient').toBe(true);
  });

  it('connection refused: retryable network error', async () => {
    const port = await closedPort();
    const err = await failure(provider({ baseUrl: `http://127.0.0.1:${port}` }).generate(input(newMarker()), live()), 'closed port');
    expect(err.code, 'code').toBe('network');
    expect(err.retryable, 'network errors are retryable').toBe(true);
    expect(err.message, 'names the cause').toContain('ECONNREFUSED');
  });

  it('an already aborted signal: timeout, and nothing is sent', async () => {
    const m = newMarker();
    fake.scenario(m, [{ kind: 'ok' }]);
    const err = await failure(provider().generate(input(m), AbortSignal.abort()), 'pre-aborted');
    expect(err.code, 'code').toBe('timeout');
    expect(err.retryable, 'retryable').toBe(true);
    expect(err.message, 'says the caller cancelled').toContain('cancelled by the caller');
    expect(fake.calls(m).length, 'no request was made').toBe(0);
  });

  it('aborting the external signal mid-request: timeout, promptly, distinct from our own timeout', async () => {
    const m = newMarker();
    fake.scenario(m, [{ kind: 'hang' }]);
    const ctl = new AbortController();
    const pending = failure(provider({ timeoutMs: 30_000 }).generate(input(m), ctl.signal), 'aborted mid-flight');
    await fake.waitForCalls(m, 1);
    ctl.abort();
    const err = await pending;
    expect(err.code, 'code').toBe('timeout');
    expect(err.retryable, 'retryable').toBe(true);
    expect(err.message, 'caller abort, not the 30 s httpOptions timeout').toContain('cancelled by the caller (aborted)');
  });

  it('an AbortSignal.timeout deadline: timeout ("deadline exceeded")', async () => {
    const m = newMarker();
    fake.scenario(m, [{ kind: 'hang' }]);
    const err = await failure(provider({ timeoutMs: 30_000 }).generate(input(m), AbortSignal.timeout(200)), 'deadline');
    expect(err.code, 'code').toBe('timeout');
    expect(err.message, 'caller deadline').toContain('deadline exceeded');
  });
});

describe('the fake itself', () => {
  it('scenario steps advance and the last step repeats', async () => {
    const m = newMarker();
    fake.scenario(m, [{ kind: 'error', status: 503 }, { kind: 'error', status: 429, retryDelaySeconds: 2 }, { kind: 'ok' }]);
    const p = provider();
    const outcome = async () => p.generate(input(m), live()).then((r) => r.finishReason, (e: ProviderError) => e.code);
    const seen = [await outcome(), await outcome(), await outcome(), await outcome()];
    expect(seen, 'steps in order, then the last one again').toEqual(['provider_unavailable', 'rate_limited', 'STOP', 'STOP']);
    expect(fake.calls(m).map((c) => c.status), 'recorded statuses').toEqual([503, 429, 200, 200]);
  });

  it('markers isolate concurrent requests; unmarked requests get the default', async () => {
    const a = newMarker();
    const b = newMarker();
    fake.scenario(a, [{ kind: 'error', status: 400 }]);
    fake.scenario(b, [{ kind: 'ok', text: defaultNarrative('b', 0) }]);
    const p = provider();
    const run = (m: string) => p.generate(input(m), live()).then((r) => r.finishReason, (e: ProviderError) => e.code);
    const unmarked = `un${randomUUID().replaceAll('-', '')}`; // not registered: default behaviour
    const results = await Promise.all([run(a), run(b), run(a), run(b), run(unmarked)]);
    expect(results, 'each request got its own scenario').toEqual(['provider_rejected', 'STOP', 'provider_rejected', 'STOP', 'STOP']);
    expect(fake.calls(a).length, 'two calls for a').toBe(2);
    expect(fake.calls(b).length, 'two calls for b').toBe(2);
    expect(fake.calls(unmarked).length, 'unregistered marker records nothing under its name').toBe(0);
  });

  it('speaks Google’s error shape for bad keys and unknown paths', async () => {
    const body = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] });
    const noKey = await fetch(`${fake.url}/v1beta/models/${MODEL}:generateContent`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    expect(noKey.status, 'missing key status').toBe(400);
    expect((await noKey.json()).error, 'missing key body').toMatchObject({
      code: 400, status: 'INVALID_ARGUMENT', message: 'API key not valid. Please pass a valid API key.',
    });
    const unknown = await fetch(`${fake.url}/v1beta/models/${MODEL}:countTokens`, { method: 'POST', body, headers: { 'x-goog-api-key': KEY } });
    expect(unknown.status, 'unknown path status').toBe(404);
    expect((await unknown.json()).error, 'unknown path body').toMatchObject({ code: 404, status: 'NOT_FOUND' });

    const m = newMarker();
    fake.scenario(m, [{ kind: 'error', status: 429, retryDelaySeconds: 7 }]);
    const limited = await fetch(`${fake.url}/v1beta/models/${MODEL}:generateContent`, {
      method: 'POST',
      headers: { 'x-goog-api-key': KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: m }] }] }),
    });
    const json = await limited.json();
    expect(limited.status, '429 status').toBe(429);
    expect(json.error.status, '429 Google status').toBe('RESOURCE_EXHAUSTED');
    expect(json.error.details, '429 carries RetryInfo').toContainEqual({ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '7s' });
  });

  it('thinks out of maxOutputTokens per the thinking config, and refuses a level with a budget', async () => {
    const ask = async (generationConfig: Record<string, unknown>) => {
      const res = await fetch(`${fake.url}/v1beta/models/${MODEL}:generateContent`, {
        method: 'POST',
        headers: { 'x-goog-api-key': KEY, 'content-type': 'application/json' },
        body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: `hi ${newMarker()}` }] }], generationConfig }),
      });
      return { status: res.status, body: await res.json() };
    };
    const budget = await ask({ maxOutputTokens: 4000, thinkingConfig: { thinkingBudget: 300 } });
    expect(budget.body.usageMetadata.thoughtsTokenCount, 'a budget is spent').toBe(300);
    expect(budget.body.candidates[0].finishReason, 'room left for the answer').toBe('STOP');
    expect(budget.body.modelVersion, 'modelVersion reported').toBe(MODEL);

    const none = await ask({ maxOutputTokens: 4000, thinkingConfig: { thinkingBudget: 0 } });
    expect(none.body.usageMetadata.thoughtsTokenCount, 'budget 0: no thoughts, field left out as the API does').toBeUndefined();

    const starved = await ask({ maxOutputTokens: 100, thinkingConfig: { thinkingLevel: 'HIGH' } });
    expect(starved.body.candidates[0].finishReason, 'HIGH thoughts exceed a 100-token cap').toBe('MAX_TOKENS');
    expect(starved.body.candidates[0].content.parts, 'nothing left for the answer').toEqual([]);
    expect(starved.body.usageMetadata.thoughtsTokenCount, 'thoughts stop at the cap').toBe(100);

    const both = await ask({ thinkingConfig: { thinkingLevel: 'LOW', thinkingBudget: 10 } });
    expect(both.status, 'level and budget together').toBe(400);
    expect(both.body.error.status, 'Google status').toBe('INVALID_ARGUMENT');
  });

  it('control API: a client drives scenarios, the default, calls and reset over HTTP', async () => {
    const own = await startFakeGemini({ apiKey: KEY }); // its own fake: this test changes the default
    try {
      const control = fakeGeminiControl(own.url);
      const p = provider({ baseUrl: own.url });
      const m = newMarker();
      await control.scenario(m, [{ kind: 'error', status: 403 }, { kind: 'ok' }]);
      await control.setDefault({ kind: 'error', status: 503 });

      const first = await failure(p.generate(input(m), live()), 'scenario step 1');
      expect(first.code, 'step 1 from the HTTP-registered scenario').toBe('provider_rejected');
      expect((await p.generate(input(m), live())).finishReason, 'step 2').toBe('STOP');
      const other = await failure(p.generate(input(newMarker()), live()), 'unmarked');
      expect(other.code, 'default set over HTTP').toBe('provider_unavailable');

      const calls = await control.calls(m);
      expect(calls.map((c) => c.status), 'calls for the marker over HTTP').toEqual([403, 200]);
      expect((await control.calls()).length, 'all calls').toBe(3);
      expect(JSON.stringify(await control.calls()), 'the prompt is never recorded').not.toContain('narrative cache');

      await expect(control.scenario(m, [{ kind: 'nope' } as unknown as FakeBehavior]), 'invalid behaviour refused').rejects.toThrow(/HTTP 400/);

      await control.reset();
      expect((await control.calls()).length, 'reset clears calls').toBe(0);
      expect((await p.generate(input(m), live())).finishReason, 'reset restores the ok default and drops scenarios').toBe('STOP');
    } finally {
      await own.close();
    }
  });

  it('chaos: seeded failures are reproducible and spare scenario requests', async () => {
    const own = await startFakeGemini({ apiKey: KEY });
    try {
      const p = provider({ baseUrl: own.url });
      const chaos = { failureRate: 0.4, seed: 42, failures: [{ kind: 'error', status: 503 }, { kind: 'error', status: 429 }] as FakeBehavior[] };
      const outcomes = async () => {
        const out: string[] = [];
        for (let i = 0; i < 25; i++) out.push(await p.generate(input(newMarker()), live()).then(() => 'ok', (e: ProviderError) => e.code));
        return out;
      };
      own.setChaos(chaos);
      const first = await outcomes();
      own.reset();
      own.setChaos(chaos);
      const second = await outcomes();
      expect(second, 'same seed, same sequence').toEqual(first);
      expect(first.filter((o) => o !== 'ok').length, 'some requests failed').toBeGreaterThan(0);
      expect(first.filter((o) => o === 'ok').length, 'some requests succeeded').toBeGreaterThan(0);
      expect(own.calls().filter((c) => c.chaos).length, 'chaos recorded on the calls').toBe(second.filter((o) => o !== 'ok').length);

      const m = newMarker();
      own.scenario(m, [{ kind: 'ok' }]);
      own.setChaos({ ...chaos, failureRate: 1 });
      expect((await p.generate(input(m), live())).finishReason, "scope 'default' leaves scenario requests alone").toBe('STOP');
      own.setChaos({ ...chaos, failureRate: 1, scope: 'all' });
      await failure(p.generate(input(m), live()), "scope 'all' hits scenario requests too");
      own.setChaos(null);
      expect((await p.generate(input(newMarker()), live())).finishReason, 'chaos off').toBe('STOP');
    } finally {
      await own.close();
    }
  });
});
