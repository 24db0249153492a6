// The daily generation budget against the edit loop (docs/settings-and-limits.md, Limits): every reason counts, edits
// included. With generations_per_day = 2, editing the user's memories again and again makes
// exactly two generations; the third change still strips the claims at once, and the job it
// queues waits until the oldest generation ages out, which every path says as retry_after.
// Isolated: it changes private.settings, which every other suite reads.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orchestrateResponse, regenerateResponse } from '../../shared/narrative.ts';
import { addMemories, waitForJob } from '../helpers/pipeline.ts';
import { API_URL } from '../../local/config.ts';
import { db, eventually } from '../helpers/stack.ts';
import { createUser } from '../helpers/users.ts';
import { overrideSettings } from '../../local/settings.ts';

const sql = db();
let restore: () => Promise<void>;

beforeAll(async () => {
  restore = await overrideSettings(sql, { generations_per_day: 2, change_debounce_seconds: 0 });
});
afterAll(async () => {
  await restore();
  await sql.end();
});

const fn = (name: string) => `${API_URL}/functions/v1/${name}`;

describe('generation budget', () => {
  it('holds against an edit loop: generations in the window = budget, the narrative stripped, retry_after everywhere', async () => {
    const user = await createUser();
    const other = await createUser();
    await addMemories(sql, user.id, 6, 'I sail and write compilers');
    await addMemories(sql, other.id, 6, 'I garden');
    const auth = { authorization: `Bearer ${user.accessToken}` };

    // Generation 1: the first read's cache miss.
    await eventually('the first narrative', async () => (await fetch(fn('narrative'), { headers: auth })).status === 200, 20_000);
    const edit = () => sql`update memories set content = content || ' (edited)' where user_id = ${user.id}`;
    const activeJob = async () => (await sql<{ id: number; run_after: Date }[]>`
      select id::int, run_after from narrative_jobs where user_id = ${user.id} and status in ('queued', 'running')`)[0];

    // Generation 2: an edit (memories_changed, no debounce here).
    await edit();
    const second = await activeJob();
    expect(second, 'the edit queued a job').toBeTruthy();
    expect(second.run_after.getTime(), 'under budget it may run now').toBeLessThanOrEqual(Date.now() + 1000);
    await waitForJob(sql, second.id, (j) => j.status === 'succeeded', 'the second generation', 20_000);

    // Edits 3 and 4: over budget. Claims go at once; the job waits about 24 h.
    for (let i = 0; i < 2; i++) await edit();
    const [n] = await sql`select partial, jsonb_array_length(claims) as claims from user_narratives where user_id = ${user.id}`;
    expect(n.partial, 'the served narrative is partial after the edit').toBe(true);
    expect(n.claims, 'every claim cited an edited memory: none left').toBe(0);
    const third = await activeJob();
    expect(third.run_after.getTime(), 'the third job waits for the oldest generation to age out')
      .toBeGreaterThan(Date.now() + 23 * 3600_000);
    await sql`select private.sweep()`;
    const [{ started, jobs }] = await sql`select count(*) filter (where started_at > now() - interval '24 hours')::int as started,
      count(*)::int as jobs from narrative_jobs where user_id = ${user.id}`;
    expect(started, 'generations started in the window = the budget').toBe(2);
    expect(jobs, 'two finished, one waiting: the edits after the budget made one job').toBe(3);

    const get = await fetch(fn('narrative'), { headers: auth });
    const body = await get.json();
    expect(get.status, 'GET still serves the stripped narrative').toBe(200);
    expect(body.partial && body.stale, 'as partial and stale').toBe(true);

    const o = orchestrateResponse.parse(await (await fetch(fn('orchestrate'), {
      method: 'POST', headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ user_message: 'hi', is_new_conversation: true }),
    })).json());
    expect(o.job?.id, 'orchestrate names the waiting job').toBe(third.id);
    expect(o.job?.retry_after, 'with its retry_after (about 24 h)').toBeGreaterThan(23 * 3600);

    const post = await fetch(fn('narrative'), { method: 'POST', headers: auth });
    expect(post.status, 'a manual regeneration is accepted as the same waiting job').toBe(202);
    const r = regenerateResponse.parse(await post.json());
    expect(r.job_id, 'the same job').toBe(third.id);
    expect(r.retry_after, 'retry_after in the body').toBeGreaterThan(23 * 3600);
    expect(Number(post.headers.get('retry-after')), 'and as Retry-After').toBe(r.retry_after);
    expect((await activeJob()).run_after, 'the manual ask did not pull it forward').toEqual(third.run_after);

    // Another user is not affected.
    const oget = await eventually('the other user\'s narrative', async () => {
      const res = await fetch(fn('narrative'), { headers: { authorization: `Bearer ${other.accessToken}` } });
      return res.status === 200 ? res : null;
    }, 20_000);
    expect(oget.status, 'other users generate as usual').toBe(200);
  });

  it('answers a 204 with Retry-After when the user has nothing to serve and no budget left', async () => {
    const user = await createUser();
    await addMemories(sql, user.id, 6);
    await sql`insert into narrative_jobs (user_id, reason, status, started_at, finished_at)
      select ${user.id}, 'manual', 'succeeded', now() - make_interval(hours => h), now() - make_interval(hours => h)
      from unnest(array[2, 1]) h`;
    const res = await fetch(fn('narrative'), { headers: { authorization: `Bearer ${user.accessToken}` } });
    expect(res.status, 'nothing to serve').toBe(204);
    expect(res.headers.get('narrative-status'), 'a job is queued').toBe('queued');
    const wait = Number(res.headers.get('retry-after'));
    expect(wait, 'Retry-After: until the older generation (2 h ago) ages out, about 22 h').toBeGreaterThan(21 * 3600);
    expect(wait, 'not longer').toBeLessThanOrEqual(22 * 3600 + 5);
  });
});
