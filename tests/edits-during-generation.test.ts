// An edit that races a generation never leaves its old text stored (docs/targets.md, "Proved by tests"). The
// editing transaction begins before the job is claimed (so its now(), which updated_at takes, is
// older than the generation's read), updates the memory or note while the fake Gemini holds the
// request (the prompt already quotes the old text), and commits before the answer is released.
// complete_job must still drop every claim resting on it: change detection by identity (the ids
// the change triggers record on the running job), not by comparing updated_at with the read time.
// Checked on every read path: the stored row, GET narrative, orchestrate, a table read under RLS,
// the history table and GET narrative/history/<v>.
import type { TransactionSql } from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import {
  NARRATIVE_SECTIONS, narrativeHistoryResponse, narrativeResponse, orchestrateResponse, renderClaims,
} from '../shared/narrative.ts';
import { fakeGeminiControl } from '../local/fakes/gemini.ts';
import { enqueue, marker, memoriesOf, narrative, waitForJob } from './helpers/pipeline.ts';
import { API_URL, FAKE_GEMINI_URL } from '../local/config.ts';
import { actAsUser, db } from './helpers/stack.ts';
import { createUser, type TestUser } from './helpers/users.ts';

const sql = db(6);
const fake = fakeGeminiControl(FAKE_GEMINI_URL);
afterAll(() => sql.end({ timeout: 2 }));

const fn = (path: string) => `${API_URL}/functions/v1/${path}`;
const [WHO, WORK, HOW, THEMES] = NARRATIVE_SECTIONS;
const get = (user: TestUser, path: string) => fetch(fn(path), { headers: { authorization: `Bearer ${user.accessToken}` } });

/** The first statement of a transaction as the user under RLS, as PostgREST runs a supabase-js
 *  call (role authenticated and the user's JWT claims); it fixes the transaction's now(). */
const becomeUser = (tx: TransactionSql, user: { id: string }) => actAsUser(tx, user.id);

/** Every stored or served text of the user's narrative and history, as one string. */
async function everyPath(user: TestUser): Promise<string> {
  const parts: unknown[] = [await narrative(sql, user.id)];
  const n = await get(user, 'narrative');
  expect(n.status, 'GET narrative serves a narrative').toBe(200);
  const body = narrativeResponse.parse(await n.json());
  expect(body.narrative, 'GET narrative: content is its claims rendered').toBe(renderClaims(body.claims));
  parts.push(body);
  const o = await fetch(fn('orchestrate'), {
    method: 'POST', headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ user_message: 'hello', is_new_conversation: true }),
  });
  parts.push(orchestrateResponse.parse(await o.json()));
  parts.push(await sql.begin(async (tx) => {
    await becomeUser(tx, user);
    return [await tx`select * from user_narratives`, await tx`select * from user_narrative_versions`];
  }));
  const h = narrativeHistoryResponse.parse(await (await get(user, 'narrative/history')).json());
  expect(h.versions.length, 'the history has the raced version').toBeGreaterThanOrEqual(1);
  parts.push(h);
  for (const v of h.versions) {
    const r = await get(user, `narrative/history/${v.version}`);
    expect(r.status, `GET narrative/history/${v.version}`).toBe(200);
    parts.push(await r.json());
  }
  return JSON.stringify(parts);
}

/** Registers answers (each a list of [section, text, refs], written from a tag unique to the
 *  test) for a new marker, played in turn. */
async function script(write: (tag: string) => [string, string, string[]][][]) {
  const m = marker();
  const answers = write(m.slice(8, 20));
  await fake.scenario(m, answers.map((claims) => ({
    kind: 'ok' as const, text: JSON.stringify({ claims: claims.map(([section, text, memory_refs]) => ({ section, text, memory_refs })) }),
  })));
  return { marker: m, tag: m.slice(8, 20) };
}

/** Holds the user's next generation at the provider while `edit` runs in a transaction begun
 *  before the job is claimed; commits, releases, and returns the finished job. */
async function raceGeneration(user: TestUser, m: string, edit: (tx: TransactionSql) => Promise<unknown>) {
  await fake.hold(m, 1);
  let jobId = 0;
  try {
    await sql.begin(async (tx) => {
      await becomeUser(tx, user); // before the claim: this transaction's now() predates the read
      ({ job_id: jobId } = await enqueue(sql, user.id, 'manual'));
      await fake.waitForCalls(m, 1); // the memories and notes were read; the prompt quotes the old text
      const [running] = await sql`select status from narrative_jobs where id = ${jobId}`;
      expect(running.status, 'the job is generating while the edit runs').toBe('running');
      await edit(tx);
    });
  } finally {
    await fake.release(m);
  }
  const done = await waitForJob(sql, jobId, (j) => j.status === 'succeeded' || j.status === 'failed', 'the held job to finish', 20_000);
  expect(done.status, `the raced attempt succeeded (${done.last_error ?? ''})`).toBe('succeeded');
  return done;
}

describe('an edit that commits after the generation read its input', () => {
  it('a memory edit: the old text is stored nowhere, not in the narrative and not in history', async () => {
    const s = await script((tag) => [
      [[WHO, `Lives at 12 Elm St (ELM${tag}).`, ['m1']], [WORK, 'Builds boats (memory 2).', ['m2']],
        [HOW, 'Likes short answers (memory 3).', ['m3']], [THEMES, `Elm St and boats (JOINT${tag}).`, ['m1', 'm2']]],
      // The regeneration the edit queues: nothing from memory 1.
      [[WORK, 'Builds boats (memory 2).', ['m2']], [HOW, 'Likes short answers (memory 3).', ['m3']], [THEMES, 'Sails (memory 4).', ['m4']]],
    ]);
    const user = await createUser();
    // Each claim rests on what it cites (validation drops any that does not).
    const [m1Id] = await memoriesOf(sql, user.id, [`I live at 12 Elm St ${s.marker}`, `I build boats ${s.marker}`, `I like short answers ${s.marker}`,
      ...[4, 5, 6].map((i) => `I sail ${s.marker} #${i}`)]);
    const m1 = { id: m1Id };

    const done = await raceGeneration(user, s.marker, (tx) => tx`update memories set content = 'I moved to 3 Oak Ave' where id = ${m1.id}`);
    const n = (await narrative(sql, user.id))!;
    expect(Number(n.job_id), 'the stored narrative is the raced job\'s').toBe(done.id);
    expect(n.partial, 'stored partial: claims were dropped').toBe(true);
    expect(n.removed_claims, 'both claims citing the edited memory were dropped').toBe(2);
    expect(n.claims.map((c) => c.text), 'the claims on other memories stay').toEqual(['Builds boats (memory 2).', 'Likes short answers (memory 3).']);
    const [next] = await sql`select reason from narrative_jobs where user_id = ${user.id} and status in ('queued', 'running')`;
    expect(next?.reason, 'a regeneration is queued for the edit').toBe('memories_changed');

    const all = await everyPath(user);
    expect(all, 'no path quotes the old memory text').not.toContain(`ELM${s.tag}`);
    expect(all, 'nor a claim built on it').not.toContain(`JOINT${s.tag}`);
    expect(all, 'nor cites the edited memory').not.toContain(m1.id);
  });

  it('a note edit ("Call me Sam" -> "Call me Alex"): the old name is stored nowhere', async () => {
    const s = await script((tag) => [
      [[WHO, `Called Sam (SAM${tag}).`, ['n1']], [WORK, 'Builds boats (memory 1).', ['m1']],
        [HOW, 'Likes short answers (memory 2).', ['m2']], [THEMES, `Sam sails (SAMSAILS${tag}).`, ['n1', 'm3']]],
      [[WORK, 'Builds boats (memory 1).', ['m1']], [HOW, 'Likes short answers (memory 2).', ['m2']], [THEMES, 'Sails (memory 3).', ['m3']]],
    ]);
    const user = await createUser();
    // The note first: the user is not eligible yet, so adding it queues nothing.
    const [note] = await sql.begin(async (tx) => {
      await becomeUser(tx, user);
      return await tx<{ id: string }[]>`insert into narrative_notes (content) values ('Call me Sam') returning id`;
    });
    await memoriesOf(sql, user.id, [`I build boats ${s.marker}`, `I like short answers ${s.marker}`, ...[3, 4, 5, 6].map((i) => `I sail ${s.marker} #${i}`)]);

    const done = await raceGeneration(user, s.marker, (tx) => tx`update narrative_notes set content = 'Call me Alex' where id = ${note.id}`);
    const n = (await narrative(sql, user.id))!;
    expect(Number(n.job_id), 'the stored narrative is the raced job\'s').toBe(done.id);
    expect(n.partial, 'stored partial').toBe(true);
    expect(n.removed_claims, 'both claims citing the edited note were dropped').toBe(2);
    expect(n.claims.map((c) => c.text), 'the claims on memories stay').toEqual(['Builds boats (memory 1).', 'Likes short answers (memory 2).']);

    const all = await everyPath(user);
    expect(all, 'no path quotes the old name').not.toContain(`SAM${s.tag}`);
    expect(all, 'nor a claim built on it').not.toContain(`SAMSAILS${s.tag}`);
    expect(all, 'nor cites the edited note').not.toContain(note.id);
  });
});
