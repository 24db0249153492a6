// Every paid call counted and capped (docs/targets.md): an MCP answer is a row of the spend ledger and
// moves today's spend; past the daily ceiling the next answer quotes memories with no request to
// Gemini, a generation is written by the local writer and queue health says so; a response
// naming an unpriced version is priced as the requested model; a job's twelve attempts count
// twelve times against the user's token budget, which then degrades that user alone.
// Isolated: it changes private.settings (prices, the ceiling, the token budget), which every
// other suite reads, and the ceiling is global.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logSince, logSize } from '../../local/processes.ts';
import { overrideSettings } from '../../local/settings.ts';
import { FAKE_THOUGHTS, fakeGeminiControl } from '../../local/fakes/gemini.ts';
import { mcpClients, toolOk as ok } from '../helpers/mcp.ts';
import { addMemories, enqueue, fastForward, type JobRow, marker, narrative, waitForJob } from '../helpers/pipeline.ts';
import { API_URL, FAKE_GEMINI_URL } from '../../local/config.ts';
import { db, eventually, keys } from '../helpers/stack.ts';
import { createUser } from '../helpers/users.ts';

const sql = db(4);
const fake = fakeGeminiControl(FAKE_GEMINI_URL);
const session = mcpClients('spend-limits');
let restore: () => Promise<void>;

/** Test prices for the fake's interactive model (USD per million tokens), beside the defaults. */
const FAKE_PRICE = { input_per_mtok: 1, output_per_mtok: 4 };
const price = (prompt: number, output: number) => (prompt * FAKE_PRICE.input_per_mtok + output * FAKE_PRICE.output_per_mtok) / 1e6;

beforeAll(async () => {
  const [{ prices }] = await sql<{ prices: Record<string, unknown> }[]>`select model_prices as prices from private.settings`;
  restore = await overrideSettings(sql, {
    model_prices: { ...prices, 'gemini-fake-model': FAKE_PRICE }, daily_ceiling_usd: null, daily_budget_usd: null,
    tokens_per_user_per_day: 1_000_000, content_retry_limit: 2,
  });
});
afterAll(async () => {
  await restore();
  await session.close();
  await sql.end({ timeout: 2 });
});

interface Answer { answer: string; source: string; model: string | null; fallback_reason: string | null }
interface LedgerRow {
  kind: string; job_id: number | null; model: string; requested_model: string; provider_calls: number;
  prompt_tokens: number; output_tokens: number; thoughts_tokens: number | null; tokens: number; cost: number; pricing: string; priced_as: string | null;
}

const finished = (j: JobRow) => j.status === 'succeeded' || j.status === 'failed';
const spentToday = async () => (await sql<{ v: number }[]>`select private.spent_today()::float8 as v`)[0].v;
const ledger = (where: { user?: string; job?: number }) => sql<LedgerRow[]>`
  select kind, job_id::int, model, requested_model, provider_calls, prompt_tokens, output_tokens, thoughts_tokens, tokens,
         cost_usd::float8 as cost, pricing, priced_as
  from private.spend_ledger
  where ${where.job === undefined ? sql`user_id = ${where.user!}` : sql`job_id = ${where.job}`} order by id`;
const costOf = async (jobId: number) =>
  Number((await sql<{ c: string }[]>`select estimated_cost_usd as c from narrative_jobs where id = ${jobId}`)[0].c);

/** A signed-in user with six memories, one carrying a fresh scenario marker (the others give
 *  the local writer something to quote: it skips the marker's long run of hex as secret-like),
 *  and an MCP client. */
async function scenarioUser(steps: Parameters<typeof fake.scenario>[1]) {
  const m = marker();
  await fake.scenario(m, steps);
  const user = await createUser();
  await addMemories(sql, user.id, 5, 'I keep bees and write Go services');
  await sql`insert into memories (user_id, content) values (${user.id}, ${`I keep bees named ${m}`})`;
  return { user, m, client: await session.connect(user) };
}

describe('the spend ledger and the daily ceiling', () => {
  it('an MCP answer is counted; past the ceiling answers quote memories without a request, generations are local, health says so', async () => {
    const { user, m, client } = await scenarioUser([{ kind: 'ok', text: 'They keep bees.', usage: { promptTokenCount: 50_000, candidatesTokenCount: 400 } }]);
    const before = await spentToday();
    const answered = await ok<Answer>(client, 'ask_memory', { question: `What about ${m}?` });
    expect(answered, 'the model answered').toMatchObject({ source: 'model', answer: 'They keep bees.', model: 'gemini-fake-model' });
    const [row, ...more] = await ledger({ user: user.id });
    expect(more, 'one ledger row for one answer').toEqual([]);
    expect(row, 'an MCP answer with the tokens the response reported').toMatchObject({
      kind: 'mcp_answer', job_id: null, model: 'gemini-fake-model', requested_model: 'gemini-fake-model', provider_calls: 1,
      prompt_tokens: 50_000, output_tokens: 400, thoughts_tokens: FAKE_THOUGHTS.LOW, tokens: 50_000 + 400 + FAKE_THOUGHTS.LOW, pricing: 'model',
    });
    expect(row.cost, 'priced at the model\'s entry, thinking as output').toBeCloseTo(price(50_000, 400 + FAKE_THOUGHTS.LOW), 8);
    expect(await spentToday() - before, 'today\'s spend moved by (at least) its cost').toBeGreaterThanOrEqual(row.cost - 1e-9);

    // The ceiling just below what has been spent today: no paid call for anyone.
    const lift = await overrideSettings(sql, { daily_ceiling_usd: (await spentToday()) - 0.000001 });
    try {
      const quick = await ok<Answer>(client, 'ask_memory', { question: `What about ${m}?` });
      expect(quick, 'ask_memory quotes the memories and says why').toMatchObject({ source: 'extractive', model: null, fallback_reason: 'daily_ceiling_reached' });
      expect(quick.answer, 'the memories themselves').toContain(`I keep bees named ${m}`);
      const deep = await ok<Answer>(client, 'deep_memory_query', { search_query: `Everything about ${m}` });
      expect(deep, 'deep_memory_query too').toMatchObject({ source: 'extractive', fallback_reason: 'daily_ceiling_reached' });
      expect((await fake.calls(m)).length, 'Gemini received no request past the ceiling').toBe(1);
      expect((await ledger({ user: user.id })).length, 'and nothing more was counted').toBe(1);

      // An interactive generation past the ceiling: written by the local writer, at no cost.
      const logFrom = logSize('runtime') ?? 0;
      const { job_id } = await enqueue(sql, user.id, 'manual');
      const done = await waitForJob(sql, job_id, finished, 'the local generation', 20_000);
      expect(done.status, `succeeded (${done.last_error})`).toBe('succeeded');
      expect([done.model, done.provider_calls], 'by the local writer, no provider call').toEqual(['local-narrative-v1', 0]);
      expect(await costOf(job_id), 'recorded cost 0').toBe(0);
      expect(await ledger({ job: job_id }), 'no ledger row').toEqual([]);
      expect((await narrative(sql, user.id))?.model, 'the user still gets a narrative').toBe('local-narrative-v1');
      expect((await fake.calls(m)).length, 'still no request to Gemini').toBe(1);
      const line = await eventually('the degraded attempt in the log', async () => (logSince('runtime', logFrom) ?? '').split('\n')
        .find((l) => l.includes(`"job_id":${job_id},`) && l.includes('"step":"provider_call"')));
      expect(JSON.parse(line.slice(line.indexOf('{'))), 'the attempt logs why it wrote locally').toMatchObject({ provider: 'local', degraded: 'daily_ceiling_reached' });

      const health = await (await fetch(`${API_URL}/functions/v1/backfill`, { headers: { apikey: keys().secretKey } })).json();
      expect(health.budget, 'queue health: spent today, the ceiling, reached, what degrades').toMatchObject({
        ceiling_reached: true, spent_today_usd: expect.any(Number), daily_ceiling_usd: expect.any(Number),
        degraded: { reason: 'daily_ceiling_reached', narratives: expect.stringContaining('local writer'), mcp_answers: expect.stringContaining('extractive'), bulk: 'paused' },
      });
      expect(health.budget.spent_today_usd, 'spent is past the ceiling').toBeGreaterThanOrEqual(health.budget.daily_ceiling_usd);
      expect(health.lanes.bulk.paused, 'the bulk lane is paused by it').toBe('daily_ceiling_reached');
      expect(health.usage.last_hour.by_kind.mcp_answer.calls, 'MCP answers are in the usage').toBeGreaterThanOrEqual(1);
    } finally {
      await lift();
    }
    const again = await ok<Answer>(client, 'ask_memory', { question: `What about ${m}?` });
    expect(again.source, 'without the ceiling the model answers again').toBe('model');
  });

  it('a response naming an unpriced version (gemini-3.8-flash-001) is priced as the requested model and moves today\'s spend', async () => {
    const { user } = await scenarioUser([{ kind: 'ok', modelVersion: 'gemini-3.8-flash-001', usage: { promptTokenCount: 30_000, candidatesTokenCount: 2_000 } }]);
    const before = await spentToday();
    const { job_id } = await enqueue(sql, user.id, 'manual');
    const done = await waitForJob(sql, job_id, finished, 'finish', 20_000);
    expect([done.status, done.model, done.requested_model], 'answered by the version').toEqual(['succeeded', 'gemini-3.8-flash-001', 'gemini-fake-model']);
    const [row] = await ledger({ job: job_id });
    expect([row?.pricing, row?.priced_as], 'priced as the requested model').toEqual(['requested_model', 'gemini-fake-model']);
    const expected = price(30_000, 2_000 + FAKE_THOUGHTS.LOW);
    expect(row.cost, 'at its price').toBeCloseTo(expected, 8);
    expect(await costOf(job_id), 'the job\'s cost, never null').toBeCloseTo(expected, 8);
    expect(await spentToday() - before, 'today\'s spend moved').toBeGreaterThanOrEqual(expected - 1e-9);
  });
});

describe('the per-user token budget', () => {
  it('twelve provider attempts of one job count twelve times; past the budget that user alone is degraded', async () => {
    const more = await overrideSettings(sql, { content_retry_limit: 11 });
    try {
      const steps = [...Array.from({ length: 11 }, () => ({ kind: 'malformed' as const })), { kind: 'ok' as const }];
      const { user, m, client } = await scenarioUser(steps);
      const { job_id } = await enqueue(sql, user.id, 'manual');
      for (let attempt = 1; attempt <= 11; attempt++) {
        await waitForJob(sql, job_id, (j) => j.status === 'queued' && j.attempts === attempt, `be requeued after attempt ${attempt}`, 20_000);
        await fastForward(sql, job_id);
      }
      const done = await waitForJob(sql, job_id, finished, 'the twelfth attempt', 20_000);
      expect([done.status, done.attempts], `succeeded on attempt 12 (${done.last_error})`).toEqual(['succeeded', 12]);
      expect((await fake.calls(m)).length, 'twelve requests').toBe(12);
      const rows = await ledger({ job: job_id });
      expect(rows.length, 'twelve ledger rows, one per attempt').toBe(12);
      expect(rows.every((r) => r.provider_calls === 1 && r.prompt_tokens > 0), 'each with its own tokens').toBe(true);
      const [{ total }] = await sql<{ total: number }[]>`select private.user_tokens_24h(${user.id})::int as total`;
      expect(total, 'the user\'s 24-hour total counts every attempt').toBe(rows.reduce((n, r) => n + r.tokens, 0));
      expect(total, 'as the job row does').toBe(done.total_tokens);

      // The budget at what they spent: this user is degraded, others are not.
      await overrideSettings(sql, { tokens_per_user_per_day: total }); // the suite's restore puts it back
      const ask = await ok<Answer>(client, 'ask_memory', { question: `What about ${m}?` });
      expect(ask, 'their MCP answers quote memories').toMatchObject({ source: 'extractive', fallback_reason: 'token_budget_reached' });
      const next = await enqueue(sql, user.id, 'manual');
      const local = await waitForJob(sql, next.job_id, finished, 'their next generation', 20_000);
      expect([local.status, local.model], 'their generations are written locally').toEqual(['succeeded', 'local-narrative-v1']);
      expect((await fake.calls(m)).length, 'no request to Gemini for them').toBe(12);

      const other = await scenarioUser([{ kind: 'ok', text: 'Bees, mostly.' }]);
      const theirs = await ok<Answer>(other.client, 'ask_memory', { question: `What about ${other.m}?` });
      expect(theirs, 'another user still gets the model').toMatchObject({ source: 'model', answer: 'Bees, mostly.' });
    } finally {
      await more();
    }
  }, 120_000);
});
