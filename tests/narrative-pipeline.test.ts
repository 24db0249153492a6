// The durable pipeline end to end: enqueue -> trigger -> pg_net -> generate-narrative ->
// (fake) Gemini through the real @google/genai client -> stored narrative, and every failure
// path ending in a job row that says what happened.
import { afterAll, describe, expect, it } from 'vitest';
import { logSince, logSize } from '../local/processes.ts';
import { JOB_REASONS, laneOf, type NarrativeClaim, renderClaims } from '../shared/narrative.ts';
import { FAKE_THOUGHTS, fakeGeminiControl } from '../local/fakes/gemini.ts';
import {
  addMemories, enqueue, fastForward, job, makeUser, marker, narrative, waitForJob,
} from './helpers/pipeline.ts';
import { API_URL, FAKE_GEMINI_URL } from '../local/config.ts';
import { actAsUser, db, eventually, keys } from './helpers/stack.ts';

const sql = db(8);
const fake = fakeGeminiControl(FAKE_GEMINI_URL);
afterAll(() => sql.end({ timeout: 2 }));

const finished = (j: { status: string }) => j.status === 'succeeded' || j.status === 'failed';

/** A user with `n` memories carrying a fresh scenario marker (and the scenario registered). */
async function scenarioUser(steps: Parameters<typeof fake.scenario>[1], n = 6) {
  const m = marker();
  await fake.scenario(m, steps);
  const userId = await makeUser(sql);
  await addMemories(sql, userId, n, `I work on ${m}`);
  return { userId, marker: m };
}

describe('happy path', () => {
  it('queued -> running -> succeeded stores version 1, then a new job makes version 2', async () => {
    const { userId, marker: m } = await scenarioUser([{ kind: 'ok' }]);
    const first = await enqueue(sql, userId, 'cache_miss');
    expect(first.created, 'a new job').toBe(true);
    expect(first.status, 'new jobs start queued').toBe('queued');

    const done = await waitForJob(sql, first.job_id, finished, 'finish');
    expect(done.status, `succeeded (last_error: ${done.last_error})`).toBe('succeeded');
    expect(done.attempts, 'one attempt').toBe(1);
    expect(done.dispatch_count, 'dispatched by the insert trigger (again if the shared cap deferred it)').toBeGreaterThanOrEqual(1);
    expect(done.started_at && done.finished_at && done.finished_at >= done.started_at, 'timings recorded').toBe(true);
    expect(done.requested_model, 'a cache miss asks for GEMINI_MODEL_INTERACTIVE').toBe('gemini-fake-model');
    expect(done.model, 'the model that answered (modelVersion)').toBe('gemini-fake-model');
    expect(done.provider_calls, 'one provider response').toBe(1);
    expect(done.prompt_tokens, 'prompt tokens recorded').toBeGreaterThan(0);
    expect(done.output_tokens, 'output tokens recorded').toBeGreaterThan(0);
    expect(done.thoughts_tokens, 'thinking tokens recorded (level LOW)').toBe(FAKE_THOUGHTS.LOW);
    expect(done.total_tokens, 'total = prompt + output + thoughts').toBe(done.prompt_tokens! + done.output_tokens! + done.thoughts_tokens!);
    expect(done.cached_tokens, 'no cached content reported').toBeNull();
    expect(done.duration_ms, 'duration recorded').toBeGreaterThanOrEqual(0);
    expect(done.memories_used, 'memory count recorded').toBe(6);
    expect(done.lease_token, 'lease released').toBeNull();
    expect(done.narrative_version, 'version produced').toBe(1);

    const n1 = await narrative(sql, userId);
    expect(n1?.version, 'stored as version 1').toBe(1);
    expect(n1?.model, 'model stored').toBe('gemini-fake-model');
    expect(n1?.source_memory_count, 'memory count stored').toBe(6);
    for (let k = 1; k <= 6; k++) {
      expect(n1?.narrative_content, `the Gemini text, quoting each of the 6 memory lines (#${k})`).toContain(`I work on ${m} #${k}`);
    }
    const calls = await fake.calls(m);
    expect(calls.length, 'one Gemini call').toBe(1);
    expect(calls[0].thinkingConfig, 'the request carries an explicit thinking level').toEqual({ thinkingLevel: 'LOW' });
    expect(calls[0].maxOutputTokens, 'and the output cap that leaves room for it').toBe(8192);

    const second = await enqueue(sql, userId, 'manual');
    const done2 = await waitForJob(sql, second.job_id, finished, 'finish');
    expect(done2.status, 'second job succeeded').toBe('succeeded');
    expect((await narrative(sql, userId))?.version, 'version only grows').toBe(2);
  });

  it('concurrent enqueues for one user make exactly one active job', async () => {
    // A held provider call keeps the job active while the callers race.
    const { userId, marker: m } = await scenarioUser([{ kind: 'ok' }]);
    await fake.hold(m);
    const results = await Promise.all(Array.from({ length: 16 }, () => enqueue(sql, userId, 'cache_miss')));
    const ids = new Set(results.map((r) => r.job_id));
    expect(ids.size, 'every caller got the same job').toBe(1);
    expect(results.filter((r) => r.created).length, 'exactly one caller created it').toBe(1);
    const [{ active }] = await sql`select count(*)::int as active from narrative_jobs
      where user_id = ${userId} and status in ('queued', 'running')`;
    expect(active, 'one active job').toBe(1);
    await fake.release(m);
    await waitForJob(sql, [...ids][0], finished, 'finish');
  });

  it('generate-narrative answers pg_net 202 at claim and generates in the background', async () => {
    // pg_net takes its next batch only when every request of the current one has finished, so
    // the dispatch must not wait for the LLM call.
    const { userId, marker: m } = await scenarioUser([{ kind: 'ok' }]);
    await fake.hold(m);
    const { job_id } = await enqueue(sql, userId);
    const answer = await eventually('pg_net to record generate-narrative\'s answer', async () => {
      const [r] = await sql<{ status_code: number; content: string; job_status: string }[]>`
        select r.status_code, r.content, j.status as job_status from net._http_response r
        join narrative_jobs j on j.last_request_id = r.id where j.id = ${job_id}`;
      return r;
    });
    expect(answer.status_code, 'accepted').toBe(202);
    expect(JSON.parse(answer.content), 'body').toEqual({ job_id, status: 'running' });
    expect(answer.job_status, 'answered while the generation was still running').toBe('running');
    await fake.waitForCalls(m, 1);
    expect((await job(sql, job_id)).status, 'the provider call is held: still generating').toBe('running');
    expect(await fake.release(m), 'the provider call was waiting').toBe(1);
    const done = await waitForJob(sql, job_id, finished, 'finish in the background');
    expect(done.status, `succeeded (last_error: ${done.last_error})`).toBe('succeeded');
  });

  it('a duplicate or late delivery is refused with 409 and writes nothing', async () => {
    const userId = await makeUser(sql);
    await addMemories(sql, userId, 5);
    const { job_id } = await enqueue(sql, userId);
    await waitForJob(sql, job_id, (j) => j.status === 'succeeded', 'succeed');
    const before = await narrative(sql, userId);
    const res = await fetch(`${API_URL}/functions/v1/generate-narrative`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keys().narrativeServiceSecret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ job_id }),
    });
    expect(res.status, 'finished jobs are not claimable').toBe(409);
    expect((await res.json()).error.code, 'error code').toBe('job_not_claimable');
    const after = await narrative(sql, userId);
    expect(after?.version, 'no second write').toBe(before?.version);
    expect((await job(sql, job_id)).attempts, 'no extra attempt counted').toBe(1);

    const missing = await fetch(`${API_URL}/functions/v1/generate-narrative`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keys().narrativeServiceSecret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ job_id: 2_000_000_000 }),
    });
    expect(missing.status, 'unknown job').toBe(409);
  });
});

describe('generate-narrative refuses bad callers and input', () => {
  const url = `${API_URL}/functions/v1/generate-narrative`;
  const cases: [string, RequestInit, number][] = [
    ['no secret', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"job_id":1}' }, 401],
    ['wrong secret', { method: 'POST', headers: { authorization: 'Bearer nope', 'content-type': 'application/json' }, body: '{"job_id":1}' }, 401],
    ['a user JWT instead of the secret', { method: 'POST', headers: { authorization: `Bearer ${keys().anonKey}`, 'content-type': 'application/json' }, body: '{"job_id":1}' }, 401],
    ['GET', { method: 'GET' }, 405],
  ];
  for (const [name, init, status] of cases) {
    it(name, async () => {
      const res = await fetch(url, init);
      expect(res.status, name).toBe(status);
      expect((await res.json()).error.code, 'error shape').toMatch(/^[a-z_]+$/);
    });
  }
  const bodies: [string, string, string, number][] = [
    ['non-JSON', 'application/json', '{job', 400],
    ['missing job_id', 'application/json', '{}', 400],
    ['string job_id', 'application/json', '{"job_id":"1"}', 400],
    ['negative job_id', 'application/json', '{"job_id":-4}', 400],
    ['extra field', 'application/json', '{"job_id":1,"force":true}', 400],
    ['wrong content type', 'text/plain', '{"job_id":1}', 415],
    ['huge body', 'application/json', JSON.stringify({ job_id: 1, pad: 'x'.repeat(200_000) }), 413],
  ];
  for (const [name, type, body, status] of bodies) {
    it(`${name} -> ${status}`, async () => {
      const res = await fetch(url, {
        method: 'POST', headers: { authorization: `Bearer ${keys().narrativeServiceSecret}`, 'content-type': type }, body,
      });
      expect(res.status, name).toBe(status);
    });
  }
});

describe('failures end in a row that says what happened', () => {
  it('429 with RetryInfo is retried after the provider\'s delay, then succeeds', async () => {
    const { userId } = await scenarioUser([{ kind: 'error', status: 429, retryDelaySeconds: 7 }, { kind: 'ok' }]);
    const { job_id } = await enqueue(sql, userId);
    const retry = await waitForJob(sql, job_id, (j) => j.status === 'queued' && j.attempts === 1, 'be requeued after the 429');
    expect(retry.last_error_code, 'classified').toBe('rate_limited');
    const [{ wait }] = await sql<{ wait: number }[]>`
      select extract(epoch from run_after - started_at)::float8 as wait from narrative_jobs where id = ${job_id}`;
    expect(wait, 'RetryInfo.retryDelay honoured: due no sooner than 7 s after the attempt began').toBeGreaterThanOrEqual(7);
    await fastForward(sql, job_id);
    const done = await waitForJob(sql, job_id, finished, 'finish');
    expect(done.status, 'second attempt succeeds').toBe('succeeded');
    expect(done.attempts, 'two attempts').toBe(2);
    expect((await narrative(sql, userId))?.version, 'stored').toBe(1);
  });

  it('503 forever fails after max_attempts with the error recorded', async () => {
    const { userId, marker: m } = await scenarioUser([{ kind: 'error', status: 503 }]);
    const { job_id } = await enqueue(sql, userId);
    await sql`update narrative_jobs set max_attempts = 3 where id = ${job_id}`;
    for (let attempt = 1; attempt <= 2; attempt++) {
      const j = await waitForJob(sql, job_id, (x) => x.status === 'queued' && x.attempts === attempt, `be requeued after attempt ${attempt}`);
      expect(j.last_error_code, 'classified as retryable unavailability').toBe('provider_unavailable');
      expect(j.run_after > new Date(), 'backoff scheduled').toBe(true);
      await fastForward(sql, job_id);
    }
    const failed = await waitForJob(sql, job_id, finished, 'fail');
    expect(failed.status, 'failed after max attempts').toBe('failed');
    expect(failed.attempts, 'three attempts').toBe(3);
    expect(failed.last_error, 'the reason is kept').toMatch(/provider_unavailable.*gave up after 3 attempts/);
    expect(failed.finished_at, 'finished').not.toBeNull();
    expect(await narrative(sql, userId), 'nothing stored').toBeUndefined();
    expect((await fake.calls(m)).length, 'one call per attempt').toBe(3);
  });

  it('a provider that hangs past the timeout is retried', async () => {
    const { userId } = await scenarioUser([{ kind: 'hang' }, { kind: 'ok' }]);
    const { job_id } = await enqueue(sql, userId);
    const j = await waitForJob(sql, job_id, (x) => x.status === 'queued' && x.attempts === 1, 'time out and requeue');
    expect(j.last_error_code, 'timeout').toBe('timeout');
    await fastForward(sql, job_id);
    expect((await waitForJob(sql, job_id, finished, 'finish')).status, 'then succeeds').toBe('succeeded');
  });

  it('a blocked prompt fails at once', async () => {
    const { userId } = await scenarioUser([{ kind: 'blocked', reason: 'SAFETY' }]);
    const { job_id } = await enqueue(sql, userId);
    const j = await waitForJob(sql, job_id, finished, 'fail');
    expect(j.status, 'failed').toBe('failed');
    expect(j.attempts, 'no retry for a permanent error').toBe(1);
    expect(j.last_error_code, 'classified').toBe('prompt_blocked');
  });

  // malformed reached the provider and was paid for (usage recorded); garbage had no usable body.
  for (const [kind, code, paidCalls] of [['malformed', 'invalid_output', 1], ['garbage', 'invalid_response', 0]] as const) {
    it(`${kind} output is never stored (${code}) and is retried; usage adds up over attempts`, async () => {
      const { userId } = await scenarioUser([{ kind }, { kind: 'ok' }]);
      const { job_id } = await enqueue(sql, userId);
      const j = await waitForJob(sql, job_id, (x) => x.attempts === 1 && x.status !== 'running', 'first attempt to end');
      expect(j.status, 'requeued').toBe('queued');
      expect(j.last_error_code, 'classified').toBe(code);
      expect(j.provider_calls, 'responses with usage so far').toBe(paidCalls);
      expect(j.thoughts_tokens, 'the failed attempt\'s thoughts recorded when known').toBe(paidCalls ? FAKE_THOUGHTS.LOW : null);
      expect(await narrative(sql, userId), 'nothing stored').toBeUndefined();
      await fastForward(sql, job_id);
      const done = await waitForJob(sql, job_id, finished, 'finish');
      expect(done.status, 'the retry succeeds').toBe('succeeded');
      expect(done.provider_calls, 'both attempts counted').toBe(paidCalls + 1);
      expect(done.thoughts_tokens, 'thoughts of every paid response').toBe((paidCalls + 1) * FAKE_THOUGHTS.LOW);
    });
  }

  it('MAX_TOKENS (thoughts took the cap): one bigger-cap retry inside the same attempt, then stored', async () => {
    const { userId, marker: m } = await scenarioUser([{ kind: 'ok', thoughtsTokens: 9000 }]);
    const { job_id } = await enqueue(sql, userId, 'manual');
    const done = await waitForJob(sql, job_id, finished, 'finish');
    expect(done.status, `succeeded (${done.last_error})`).toBe('succeeded');
    expect(done.attempts, 'no second attempt: the retry is inside the first').toBe(1);
    const calls = await fake.calls(m);
    expect(calls.map((c) => c.maxOutputTokens), 'the cap, then the retry cap: never the identical request').toEqual([8192, 16384]);
    expect(calls.map((c) => c.finishReason), 'cut (empty), then complete').toEqual(['MAX_TOKENS', 'STOP']);
    expect(done.provider_calls, 'two responses recorded').toBe(2);
    expect(done.thoughts_tokens, 'thoughts of both responses').toBe(8192 + 9000);
    expect(done.total_tokens, 'total of both').toBe(done.prompt_tokens! + done.output_tokens! + done.thoughts_tokens!);
    expect((await narrative(sql, userId))?.version, 'stored').toBe(1);
  });

  it('MAX_TOKENS twice: failed at once with output_truncated, usage of both responses kept', async () => {
    const { userId, marker: m } = await scenarioUser([{ kind: 'truncated' }, { kind: 'truncated' }, { kind: 'ok' }]);
    const { job_id } = await enqueue(sql, userId, 'manual');
    const failed = await waitForJob(sql, job_id, finished, 'fail');
    expect(failed.status, 'failed: the same two requests would be cut again').toBe('failed');
    expect(failed.attempts, 'not retried').toBe(1);
    expect(failed.last_error_code, 'a clear code').toBe('output_truncated');
    expect(failed.last_error, 'says what to change').toMatch(/MAX_TOKENS.*NARRATIVE_MAX_OUTPUT_TOKENS/);
    expect((await fake.calls(m)).map((c) => c.maxOutputTokens), 'exactly one bigger-cap retry').toEqual([8192, 16384]);
    expect(failed.provider_calls, 'both responses recorded').toBe(2);
    expect(failed.thoughts_tokens, 'their thoughts').toBe(2 * FAKE_THOUGHTS.LOW);
    expect(failed.prompt_tokens, 'their prompts').toBeGreaterThan(0);
    expect(failed.model, 'who answered').toBe('gemini-fake-model');
    expect(await narrative(sql, userId), 'a cut narrative is never stored').toBeUndefined();
  });

  it('20,000 memories make a bounded prompt and record how many were left out', async () => {
    const { userId, marker: m } = await scenarioUser([{ kind: 'ok' }], 20_000);
    const { job_id } = await enqueue(sql, userId);
    const j = await waitForJob(sql, job_id, finished, 'finish', 30_000);
    expect(j.status, `succeeded (${j.last_error})`).toBe('succeeded');
    expect(j.memories_used! + j.memories_omitted!, 'used + omitted = all').toBe(20_000);
    expect(j.memories_omitted, 'some were left out').toBeGreaterThan(0);
    const [call] = await fake.calls(m);
    const [{ prompt_char_budget: budget }] = await sql`select prompt_char_budget from private.settings`;
    expect(call.promptChars, 'prompt within the budget plus instructions').toBeLessThan(budget * 1.5);
  }, 60_000);

  it('prompt_char_budget holds for the memory block as sent: memories of "<" (escaped to "&lt;") do not pass it', async () => {
    // On main the budget counted raw characters: 60,000 of "<" became a 240,918-character prompt.
    const m = marker();
    await fake.scenario(m, [{ kind: 'ok' }]);
    const userId = await makeUser(sql);
    const [{ budget, cap }] = await sql<{ budget: number; cap: number }[]>`
      select prompt_char_budget as budget, memory_char_cap as cap from private.settings`;
    const n = Math.ceil(budget / cap) + 1;
    await sql`insert into memories (user_id, content) select ${userId}, repeat('<', ${cap}) from generate_series(1, ${n})`;
    // The scenario marker rides in a note, so every memory is nothing but "<".
    await sql`insert into narrative_notes (user_id, content) values (${userId}, ${`Project code name ${m}`})`;
    // What is judged is the request the provider received (claims about nothing but "<" rest on
    // nothing, so validation refuses them and the job retries; that is not this test's concern).
    await enqueue(sql, userId);
    const [call] = await fake.waitForCalls(m, 1, 15_000);
    expect(call.memoryBlockChars, 'the request had a memory block').not.toBeNull();
    expect(call.memoryBlockChars!, `the memory block the provider received (${call.memoryBlockChars} chars) is within prompt_char_budget`)
      .toBeLessThanOrEqual(budget);
    // Each line is its 16-character head ("N. [YYYY-MM-DD] ") and 4 x cap characters once escaped:
    // as many as fit, the block's exact length says how many.
    const line = 16 + 4 * cap;
    const fit = Math.floor((budget + 1) / (line + 1));
    expect(fit, 'the budget holds fewer memories than the user has').toBeLessThan(n);
    expect(call.memoryBlockChars, `${fit} lines of ${line} characters: as many as fit`).toBe(fit * line + fit - 1);
  });
});

describe('models and usage on the job row', () => {
  it('the reason picks the model: interactive reasons GEMINI_MODEL_INTERACTIVE, bulk ones GEMINI_MODEL_BULK', async () => {
    const expected = { interactive: 'gemini-fake-model', bulk: 'gemini-fake-lite-model' };
    const runs = await Promise.all(JOB_REASONS.map(async (reason) => {
      const { userId, marker: m } = await scenarioUser([{ kind: 'ok' }]);
      const { job_id } = await enqueue(sql, userId, reason);
      await fastForward(sql, job_id); // debounced reasons (stale) are due now too
      const j = await waitForJob(sql, job_id, finished, `finish (${reason})`);
      return { reason, j, calls: await fake.calls(m) };
    }));
    for (const { reason, j, calls } of runs) {
      const model = expected[laneOf(reason)];
      expect(j.status, `${reason}: succeeded (${j.last_error})`).toBe('succeeded');
      expect(j.requested_model, `${reason}: requested model`).toBe(model);
      expect(calls.map((c) => c.model), `${reason}: the model in the request path`).toEqual([model]);
    }
    expect(runs.filter((r) => laneOf(r.reason) === 'bulk').map((r) => r.reason).sort(), 'the bulk reasons').toEqual(['backfill', 'stale', 'weekly']);
  });

  it('records the model that answered (modelVersion) and cached tokens; the narrative names the answering model', async () => {
    const { userId } = await scenarioUser([{ kind: 'ok', modelVersion: 'gemini-fake-model-002', usage: { cachedContentTokenCount: 30 } }]);
    const { job_id } = await enqueue(sql, userId, 'manual');
    const done = await waitForJob(sql, job_id, finished, 'finish');
    expect(done.requested_model, 'asked for').toBe('gemini-fake-model');
    expect(done.model, 'answered by').toBe('gemini-fake-model-002');
    expect(done.cached_tokens, 'cachedContentTokenCount').toBe(30);
    expect((await narrative(sql, userId))?.model, 'stored with the answering model').toBe('gemini-fake-model-002');
  });

  it('prices the job from the fake\'s usage metadata and settings.model_prices; an unpriced model fails closed at the highest price', async () => {
    // The answering model is a priced default (gemini-3.8-flash: 0.50 in, 3.00 out, 0.05 cached per MTok, estimates).
    const { userId } = await scenarioUser([{ kind: 'ok', modelVersion: 'gemini-3.8-flash', usage: { promptTokenCount: 10_000, candidatesTokenCount: 2_000, cachedContentTokenCount: 4_000 } }]);
    const { job_id } = await enqueue(sql, userId, 'manual');
    const j = await waitForJob(sql, job_id, finished, 'finish');
    expect(j.model, 'answered by the priced model').toBe('gemini-3.8-flash');
    expect([j.prompt_tokens, j.output_tokens, j.cached_tokens], 'the usage metadata on the row').toEqual([10_000, 2_000, 4_000]);
    const expected = ((10_000 - 4_000) * 0.5 + 4_000 * 0.05 + (2_000 + (j.thoughts_tokens ?? 0)) * 3) / 1e6;
    expect(Number((j as unknown as { estimated_cost_usd: string }).estimated_cost_usd), 'cost: uncached + cached input, output and thinking as output')
      .toBeCloseTo(expected, 8);

    // Neither the answering model nor the requested one (gemini-fake-model) has a price: counted
    // at the highest listed rates (the defaults': 0.50 in, 3.00 out), in the ledger and the log.
    const logFrom = logSize('runtime') ?? 0;
    const unpriced = await scenarioUser([{ kind: 'ok', modelVersion: 'mystery-model-7', usage: { promptTokenCount: 20_000, candidatesTokenCount: 1_000 } }]);
    const u = await enqueue(sql, unpriced.userId, 'manual');
    const uj = await waitForJob(sql, u.job_id, finished, 'finish');
    const highest = (20_000 * 0.5 + (1_000 + (uj.thoughts_tokens ?? 0)) * 3) / 1e6;
    expect(Number((uj as unknown as { estimated_cost_usd: string }).estimated_cost_usd), `no price for ${uj.model}: the highest listed price, never null`)
      .toBeCloseTo(highest, 8);
    const [row] = await sql`select pricing, priced_as, cost_usd::float8 as cost from private.spend_ledger where job_id = ${u.job_id}`;
    expect([row?.pricing, row?.priced_as], 'its ledger row says how it was priced').toEqual(['highest', null]);
    expect(row?.cost, 'at the cost on the job').toBeCloseTo(highest, 8);
    const line = await eventually('the unpriced_model log line', async () =>
      jobLog(u.job_id, logFrom).find((l) => l.msg === 'unpriced_model'));
    expect(line, 'logged with the job, the models and the cost counted').toMatchObject({
      level: 'warn', kind: 'narrative', job_id: u.job_id, user_id: unpriced.userId, model: 'mystery-model-7',
      requested_model: 'gemini-fake-model', priced_at: 'highest_listed_price',
    });
  });

  it('a user reads the usage of their own jobs only', async () => {
    const { userId } = await scenarioUser([{ kind: 'ok' }]);
    const other = await makeUser(sql);
    await addMemories(sql, other, 5);
    const mine = await enqueue(sql, userId);
    const theirs = await enqueue(sql, other);
    await waitForJob(sql, mine.job_id, finished, 'finish');
    await waitForJob(sql, theirs.job_id, finished, 'finish');
    const rows = await sql.begin(async (tx) => {
      await actAsUser(tx, userId);
      return tx`select id::int, requested_model, provider_calls, thoughts_tokens, total_tokens from public.narrative_jobs`;
    });
    expect(rows.map((r) => r.id), 'only their own job').toEqual([mine.job_id]);
    expect(rows[0].thoughts_tokens, 'its thoughts').toBe(FAKE_THOUGHTS.LOW);
    expect(rows[0].provider_calls, 'its calls').toBe(1);
  });
});

describe('memory changes', () => {
  async function userWithNarrative(n = 6) {
    const userId = await makeUser(sql);
    await addMemories(sql, userId, n);
    const { job_id } = await enqueue(sql, userId);
    await waitForJob(sql, job_id, (j) => j.status === 'succeeded', 'succeed');
    return userId;
  }

  // The first claim's first cited memory.
  const citedBy = async (u: string) => (await narrative(sql, u))!.claims[0].memory_ids[0];
  for (const [change, statement] of [
    ['delete', (id: string) => sql`delete from memories where id = ${id}`],
    ['archive', (id: string) => sql`update memories set state = 'archived' where id = ${id}`],
    ['edit', (id: string) => sql`update memories set content = 'edited' where id = ${id}`],
  ] as const) {
    it(`${change} of a cited memory removes its claims at once (partial) and queues memories_changed`, async () => {
      const userId = await userWithNarrative();
      const before = (await narrative(sql, userId))!;
      const id = await citedBy(userId);
      const citing = before.claims.filter((c) => c.memory_ids.includes(id));
      await statement(id);
      const n = (await narrative(sql, userId))!;
      expect(n.partial, 'marked partial in the same transaction').toBe(true);
      expect(n.removed_claims, 'counts the removed claims').toBe(citing.length);
      expect(n.claims.length, 'the other claims stay').toBe(before.claims.length - citing.length);
      expect(n.claims.some((c) => c.memory_ids.includes(id)), 'no claim cites it').toBe(false);
      expect(n.cited_memory_ids, 'the citation index forgets it').not.toContain(id);
      for (const c of citing) expect(n.narrative_content, 'its claims\' text is gone from the content').not.toContain(c.text);
      expect(n.narrative_content, 'content re-rendered from the remaining claims').toBe(renderClaims(n.claims as NarrativeClaim[]));
      const [active] = await sql`select reason, status from narrative_jobs where user_id = ${userId} and status in ('queued', 'running')`;
      expect(active?.reason, 'a regeneration is queued').toBe('memories_changed');
    });
  }

  it('a memory deleted while a job is generating: its claims are never stored, the result is partial and another job queued', async () => {
    const { userId, marker: m } = await scenarioUser([{ kind: 'ok' }, { kind: 'ok' }]);
    await fake.hold(m, 1);
    const { job_id } = await enqueue(sql, userId);
    await fake.waitForCalls(m, 1); // the prompt is built: the memories were read
    // m1 is the newest memory: the fake's first claim cites it.
    const [newest] = await sql`select id from memories where user_id = ${userId} order by created_at desc limit 1`;
    await sql`delete from memories where id = ${newest.id}`;
    await fake.release(m);
    const done = await waitForJob(sql, job_id, finished, 'finish');
    expect(done.status, 'the attempt itself succeeded').toBe('succeeded');
    const n = (await narrative(sql, userId))!;
    expect(n.claims.some((c) => c.memory_ids.includes(newest.id)), 'no stored claim cites the deleted memory').toBe(false);
    expect(n.partial, 'stored partial').toBe(true);
    expect(n.removed_claims, 'the claims citing it were dropped').toBeGreaterThan(0);
    expect(n.narrative_content, 'rendered from what was kept').toBe(renderClaims(n.claims as NarrativeClaim[]));
    const [next] = await sql`select reason from narrative_jobs where user_id = ${userId} and status in ('queued', 'running')`;
    expect(next?.reason, 'a regeneration is queued').toBe('memories_changed');
  });

  it('metadata-only edits change nothing; regeneration clears partial', async () => {
    const userId = await userWithNarrative();
    const before = (await narrative(sql, userId))!;
    await sql`update memories set metadata = '{"importance": 0.9}' where user_id = ${userId}`;
    const same = (await narrative(sql, userId))!;
    expect(same.partial, 'metadata is not narrative input').toBe(false);
    expect(same.claims, 'claims untouched').toEqual(before.claims);
    await sql`delete from memories where id = ${await citedBy(userId)}`;
    expect((await narrative(sql, userId))!.partial, 'partial after the delete').toBe(true);
    const [queued] = await sql`select id::int from narrative_jobs where user_id = ${userId} and status = 'queued'`;
    await fastForward(sql, queued.id);
    await waitForJob(sql, queued.id, (j) => j.status === 'succeeded', 'regenerate');
    const n = (await narrative(sql, userId))!;
    expect(n.partial, 'whole again after regeneration').toBe(false);
    expect(n.removed_claims, 'nothing removed from the new version').toBe(0);
    expect(n.version, 'new version').toBe(2);
    expect(n.source_memory_count, 'built without the deleted memory').toBe(5);
  });

  it('a burst of new memories past the threshold queues one debounced stale job', async () => {
    const userId = await userWithNarrative();
    const [{ stale_after_new_memories: threshold }] = await sql`select stale_after_new_memories from private.settings`;
    for (let i = 0; i < threshold + 5; i++) await addMemories(sql, userId, 1, `new ${i}`);
    const jobs = await sql`select reason, run_after from narrative_jobs where user_id = ${userId} and status = 'queued'`;
    expect(jobs.length, 'one job for the whole burst').toBe(1);
    expect(jobs[0].reason, 'stale refresh').toBe('stale');
    expect(jobs[0].run_after > new Date(), 'debounced').toBe(true);
    expect((await narrative(sql, userId))?.partial, 'new memories remove nothing').toBe(false);
  });

  it('deleting a user removes their narrative, jobs and memories', async () => {
    const userId = await userWithNarrative();
    await sql`delete from auth.users where id = ${userId}`;
    const [counts] = await sql`select
      (select count(*)::int from user_narratives where user_id = ${userId}) as narratives,
      (select count(*)::int from narrative_jobs where user_id = ${userId}) as jobs,
      (select count(*)::int from memories where user_id = ${userId}) as memories`;
    expect(counts, 'everything of the user is gone').toEqual({ narratives: 0, jobs: 0, memories: 0 });
  });
});

/** The runtime's JSON log lines for `jobId` (ids, steps, outcomes; never memory text), written
 *  after byte offset `from` (job ids repeat across database resets, and the log only grows). */
function jobLog(jobId: number, from = 0): { step?: string; outcome?: string; msg?: string }[] {
  return (logSince('runtime', from) ?? '').split('\n')
    .filter((l) => l.includes(`"job_id":${jobId},`))
    .flatMap((l) => { try { return [JSON.parse(l.slice(l.indexOf('{')))]; } catch { return []; } });
}

describe('attempts that lose their job or their reason to run', () => {
  it('lease_lost: the late result of an attempt whose lease expired and was taken over is discarded', async () => {
    const { userId, marker: m } = await scenarioUser([{ kind: 'ok' }]);
    await fake.hold(m, 1); // only the first attempt waits on the provider
    const { job_id } = await enqueue(sql, userId);
    await fake.waitForCalls(m, 1);
    const first = await job(sql, job_id);
    expect(first.status, 'the first attempt is generating').toBe('running');

    // Its lease runs out while the provider is still answering: the sweeper takes the job back
    // and a second attempt, under a new lease, stores version 1.
    await sql`update narrative_jobs set locked_until = now() - interval '1 second' where id = ${job_id}`;
    await sql`select private.sweep()`;
    expect((await job(sql, job_id)).last_error_code, 'requeued because the lease expired').toBe('lease_expired');
    await fastForward(sql, job_id);
    const taken = await waitForJob(sql, job_id, finished, 'the second attempt to finish');
    expect(taken.status, `the takeover succeeded (${taken.last_error})`).toBe('succeeded');
    expect(taken.attempts, 'two attempts').toBe(2);
    expect((await narrative(sql, userId))?.version, 'stored by the second attempt').toBe(1);

    // Now the first attempt's answer arrives (or its provider timeout fires): either way it must
    // change nothing.
    const logFrom = logSize('runtime') ?? 0;
    await fake.release(m);
    await eventually('the first attempt to report lease_lost', async () => jobLog(job_id, logFrom).some((l) => l.outcome === 'lease_lost'));
    const after = await job(sql, job_id);
    expect(after.status, 'still succeeded').toBe('succeeded');
    expect(after.attempts, 'no attempt added').toBe(2);
    expect(after.lease_token, 'no lease left behind').toBeNull();
    const n = await narrative(sql, userId);
    expect(n?.version, 'the late result wrote no version').toBe(1);
    expect(Number(n?.job_id), 'the narrative is the second attempt\'s job').toBe(job_id);
    expect((await fake.calls(m)).length, 'two provider calls in all').toBe(2);
  });

  it('output_blocked: a SAFETY-withheld answer fails the job at once, not retried, no narrative', async () => {
    // A retry would succeed (second step ok): only a non-retryable classification leaves it failed.
    const { userId, marker: m } = await scenarioUser([{ kind: 'safety' }, { kind: 'ok' }]);
    const { job_id } = await enqueue(sql, userId);
    const done = await waitForJob(sql, job_id, finished, 'finish');
    expect(done.status, 'failed').toBe('failed');
    expect(done.last_error_code, 'classified').toBe('output_blocked');
    expect(done.last_error, 'says why').toMatch(/finishReason SAFETY/);
    expect(done.attempts, 'one attempt').toBe(1);
    expect(await narrative(sql, userId), 'nothing stored').toBeUndefined();
    expect((await fake.calls(m)).length, 'one provider call').toBe(1);
  });

  it('not_eligible: a user who drops below min_memories between attempts gets a failed job and no narrative', async () => {
    const { userId, marker: m } = await scenarioUser([{ kind: 'error', status: 503 }, { kind: 'ok' }], 6);
    const { job_id } = await enqueue(sql, userId);
    const retry = await waitForJob(sql, job_id, (j) => j.status === 'queued' && j.attempts === 1, 'be requeued after the 503');
    expect(retry.last_error_code, 'the first attempt failed retryably').toBe('provider_unavailable');

    const [{ min }] = await sql<{ min: number }[]>`select min_memories as min from private.settings`;
    await sql`delete from memories where id in (select id from memories where user_id = ${userId} order by id limit ${6 - min + 1})`;
    await fastForward(sql, job_id);
    const done = await waitForJob(sql, job_id, finished, 'finish');
    expect(done.status, 'failed, not retried').toBe('failed');
    expect(done.last_error_code, 'classified').toBe('not_eligible');
    expect(done.attempts, 'the second attempt ended it').toBe(2);
    expect((await fake.calls(m)).length, 'the second attempt never called the provider').toBe(1);
    expect(await narrative(sql, userId), 'nothing stored').toBeUndefined();
    const [{ active }] = await sql`select count(*)::int as active from narrative_jobs
      where user_id = ${userId} and status in ('queued', 'running')`;
    expect(active, 'and nothing queued for an ineligible user').toBe(0);
  });
});
