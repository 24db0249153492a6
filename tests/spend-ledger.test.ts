// The spend ledger sees every MCP answer's paid calls (docs/targets.md), not just the clean ones: the
// retry at double the cap after MAX_TOKENS (one answer, two responses), a failed call that
// reports its usage (a blocked prompt), and a call that timed out unanswered (counted at an
// estimate: its prompt and its whole output cap, marked as such). Default settings: the fake's
// model has no price, so the rows are priced at the highest listed rates.
import { afterAll, describe, expect, it } from 'vitest';
import { fakeGeminiControl } from '../local/fakes/gemini.ts';
import { mcpClients, toolOk as ok } from './helpers/mcp.ts';
import { addMemories, marker } from './helpers/pipeline.ts';
import { FAKE_GEMINI_URL } from '../local/config.ts';
import { db } from './helpers/stack.ts';
import { createUser } from './helpers/users.ts';

const sql = db(4);
const fake = fakeGeminiControl(FAKE_GEMINI_URL);
const session = mcpClients('spend-ledger');
afterAll(async () => {
  await session.close();
  await sql.end({ timeout: 2 });
});

interface Answer { source: string; fallback_reason: string | null }

async function answeredBy(steps: Parameters<typeof fake.scenario>[1]) {
  const m = marker();
  await fake.scenario(m, steps);
  const user = await createUser();
  await addMemories(sql, user.id, 3, `I keep bees named ${m}`);
  const client = await session.connect(user);
  const a = await ok<Answer>(client, 'ask_memory', { question: `What about ${m}?` });
  const rows = await sql<{ kind: string; provider_calls: number; prompt_tokens: number; output_tokens: number | null;
    thoughts_tokens: number | null; cost: number; pricing: string; usage_estimated: boolean }[]>`
    select kind, provider_calls, prompt_tokens, output_tokens, thoughts_tokens, cost_usd::float8 as cost, pricing, usage_estimated
    from private.spend_ledger where user_id = ${user.id}`;
  return { a, rows, calls: await fake.calls(m) };
}

describe('MCP answers in the spend ledger', () => {
  it('an answer cut at MAX_TOKENS and retried at double the cap is one row of two provider calls', async () => {
    // 600 thinking tokens fill ask_memory's 512 cap (an empty, cut answer); the retry at 1024 has room.
    const { a, rows, calls } = await answeredBy([{ kind: 'ok', text: 'Bees.', thoughtsTokens: 600 }]);
    expect(calls.map((c) => [c.maxOutputTokens, c.finishReason]), 'cut, then answered at double the cap').toEqual([[512, 'MAX_TOKENS'], [1024, 'STOP']]);
    expect(a.source, 'the retry answered').toBe('model');
    expect(rows.map((r) => [r.kind, r.provider_calls, r.thoughts_tokens, r.usage_estimated]), 'both responses in one ledger row')
      .toEqual([['mcp_answer', 2, 512 + 600, false]]);
    expect(rows[0].cost, 'with a cost (unpriced: the highest listed rates)').toBeGreaterThan(0);
    expect(rows[0].pricing, 'and says so').toBe('highest');
  });

  it('a failed call that reports usage (a blocked prompt) is counted', async () => {
    const { a, rows } = await answeredBy([{ kind: 'blocked' }]);
    expect(a, 'the extract, with the failure').toMatchObject({ source: 'extractive', fallback_reason: 'prompt_blocked' });
    expect(rows.map((r) => [r.provider_calls, r.prompt_tokens > 0, r.usage_estimated]), 'its prompt tokens are in the ledger').toEqual([[1, true, false]]);
  });

  it('a call that timed out unanswered is counted at an estimate: its prompt and its whole output cap', async () => {
    const { a, rows, calls } = await answeredBy([{ kind: 'hang' }]);
    expect(a, 'the extract after the deadline').toMatchObject({ source: 'extractive', fallback_reason: 'timeout' });
    expect(rows.map((r) => [r.provider_calls, r.output_tokens, r.usage_estimated]), 'one estimated row, the cap as output').toEqual([[1, 512, true]]);
    expect(rows[0].prompt_tokens, 'the prompt at about four characters a token').toBe(Math.ceil(calls[0].promptChars / 4));
  });
});
