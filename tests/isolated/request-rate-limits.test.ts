// Per-user request limits on orchestrate and MCP (docs/settings-and-limits.md, Limits): a burst of N a minute per user,
// then 429 rate_limited with Retry-After, on every way in (the user's token, a service key acting
// for the user), without touching anything (a limited cache miss queues no job). Each route and
// each user has a bucket of its own; a fresh cache hit is not counted. Isolated: it lowers private.settings, which every suite reads.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mcpToken } from '../helpers/mcp.ts';
import { addMemories } from '../helpers/pipeline.ts';
import { API_URL } from '../../local/config.ts';
import { db, keys } from '../helpers/stack.ts';
import { createUser } from '../helpers/users.ts';
import { overrideSettings } from '../../local/settings.ts';

const sql = db();
let restore: () => Promise<void>;

beforeAll(async () => {
  restore = await overrideSettings(sql, { orchestrate_requests_per_minute: 3, mcp_requests_per_minute: 2 });
});
afterAll(async () => {
  await restore();
  await sql.end();
});

const fn = (name: string) => `${API_URL}/functions/v1/${name}`;
const jsonHeaders = { 'content-type': 'application/json' };

async function expectLimited(res: Response, what: string, maxWait: number) {
  expect(res.status, `${what}: 429`).toBe(429);
  const retryAfter = Number(res.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= maxWait,
    `${what}: Retry-After ${res.headers.get('retry-after')} is whole seconds in 1..${maxWait}`).toBe(true);
  expect(res.headers.get('access-control-expose-headers') ?? '', `${what}: a browser may read Retry-After`).toMatch(/retry-after/);
  const body = await res.json();
  expect(body, `${what}: the one error shape`).toEqual({ error: { code: 'rate_limited', message: expect.stringMatching(/at most \d+ a minute/) } });
}

describe('request limits', () => {
  it('orchestrate: 3 a minute per user, then 429 with Retry-After; the limited miss queues nothing', async () => {
    const user = await createUser();
    await addMemories(sql, user.id, 6, 'I sail');
    const auth = { ...jsonHeaders, authorization: `Bearer ${user.accessToken}` };
    const call = (isNew: boolean) => fetch(fn('orchestrate'), {
      method: 'POST', headers: auth, body: JSON.stringify({ user_message: 'sailing', is_new_conversation: isNew }),
    });
    for (let i = 1; i <= 3; i++) expect((await call(false)).status, `request ${i} of the burst`).toBe(200);

    // The fourth is a new conversation of an eligible user with no narrative: allowed, it would
    // queue a cache_miss job. Limited, it must not.
    await expectLimited(await call(true), 'the fourth request', 20);
    const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from narrative_jobs where user_id = ${user.id}`;
    expect(n, 'the refused cache miss queued no job').toBe(0);

    // A service key acting for the user spends the same bucket; another user has their own.
    const service = await fetch(fn('orchestrate'), {
      method: 'POST', headers: { ...jsonHeaders, apikey: keys().secretKey },
      body: JSON.stringify({ user_id: user.id, user_message: 'hi', is_new_conversation: false }),
    });
    await expectLimited(service, 'the service key for the same user', 20);
    const other = await createUser();
    const otherRes = await fetch(fn('orchestrate'), {
      method: 'POST', headers: { ...jsonHeaders, authorization: `Bearer ${other.accessToken}` },
      body: JSON.stringify({ user_message: 'hi', is_new_conversation: false }),
    });
    expect(otherRes.status, 'another user is not limited by this one').toBe(200);

    // Time refills the bucket: move its clock back a minute instead of waiting one.
    await sql`update private.request_buckets set refilled_at = refilled_at - interval '1 minute' where user_id = ${user.id}`;
    expect((await call(true)).status, 'a minute later the user is served again').toBe(200);
  });

  it('fresh cache hits are not counted: they cost less than the bucket would', async () => {
    const user = await createUser();
    await addMemories(sql, user.id, 6, 'I sail');
    await sql`insert into user_narratives (user_id, narrative_content, generated_at, memories_as_of)
      values (${user.id}, ${'## Who they are\nA sailor.'}, now(), now())`;
    const auth = { ...jsonHeaders, authorization: `Bearer ${user.accessToken}` };
    for (let i = 1; i <= 6; i++) {
      const res = await fetch(fn('orchestrate'), {
        method: 'POST', headers: auth, body: JSON.stringify({ user_message: 'hi', is_new_conversation: true }),
      });
      expect(res.status, `hit ${i} of 6 with a limit of 3`).toBe(200);
      expect((await res.json()).source, `hit ${i} served the narrative`).toBe('narrative');
    }
    const [bucket] = await sql`select 1 from private.request_buckets where user_id = ${user.id}`;
    expect(bucket, 'no bucket was touched').toBeUndefined();
  });

  it('invalid requests are refused before they cost a request', async () => {
    const user = await createUser();
    const auth = { ...jsonHeaders, authorization: `Bearer ${user.accessToken}` };
    for (let i = 0; i < 5; i++) {
      const bad = await fetch(fn('orchestrate'), { method: 'POST', headers: auth, body: '{"user_message": 5}' });
      expect(bad.status, `bad body ${i}: 400, not 429`).toBe(400);
    }
    const good = await fetch(fn('orchestrate'), {
      method: 'POST', headers: auth, body: JSON.stringify({ user_message: 'hi', is_new_conversation: false }),
    });
    expect(good.status, 'the budget is whole after five bad requests').toBe(200);
  });

  it('MCP: 2 messages a minute per user, then 429 with Retry-After; orchestrate\'s bucket is separate', async () => {
    const user = await createUser();
    const headers = {
      ...jsonHeaders, accept: 'application/json, text/event-stream', authorization: `Bearer ${await mcpToken(user)}`,
    };
    const initialize = JSON.stringify({
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'fetch', version: '1' } },
    });
    for (let i = 1; i <= 2; i++) {
      const res = await fetch(fn('mcp'), { method: 'POST', headers, body: initialize });
      expect(res.status, `message ${i}`).toBe(200);
    }
    await expectLimited(await fetch(fn('mcp'), { method: 'POST', headers, body: initialize }), 'the third MCP message', 30);
    const orch = await fetch(fn('orchestrate'), {
      method: 'POST', headers: { ...jsonHeaders, authorization: `Bearer ${user.accessToken}` },
      body: JSON.stringify({ user_message: 'hi', is_new_conversation: false }),
    });
    expect(orch.status, 'orchestrate still answers: one bucket per route').toBe(200);
  });
});
