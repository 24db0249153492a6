// A claim must rest on what it cites, checked in validation (acceptClaims, claim_support_min),
// through the real stack: the fake Gemini answers honest claims and one that quotes memory X
// while citing memory Y (every ref valid). The mis-cited claim is not stored; the validate log
// line counts it apart (ids and counts only). Then the user deletes X: the delete strips the
// claims CITING X, and since nothing stored states X's fact under another citation, no path —
// GET narrative, orchestrate (new conversation and a question about it), MCP get_narrative,
// jean_memory and narrative://me, the tables under RLS, the history and every version — serves
// X's words, neither while the regeneration waits nor after it.
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { logSince, logSize } from '../local/processes.ts';
import {
  NARRATIVE_SECTIONS, narrativeHistoryResponse, narrativeResponse, orchestrateResponse,
} from '../shared/narrative.ts';
import { narrativeStateOutput } from '../shared/mcp.ts';
import { fakeGeminiControl } from '../local/fakes/gemini.ts';
import { mcpClients, toolOk } from './helpers/mcp.ts';
import { enqueue, marker, memoriesOf, waitForJob } from './helpers/pipeline.ts';
import { API_URL, FAKE_GEMINI_URL } from '../local/config.ts';
import { actAsUser, db, eventually } from './helpers/stack.ts';
import { createUser, type TestUser } from './helpers/users.ts';

const sql = db(4);
const fake = fakeGeminiControl(FAKE_GEMINI_URL);
const mcpSession = mcpClients('claim-support-test');
afterAll(async () => {
  await mcpSession.close();
  await sql.end({ timeout: 2 });
});

const fn = (path: string) => `${API_URL}/functions/v1/${path}`;
const [WHO, WORK, HOW, THEMES] = NARRATIVE_SECTIONS;
const answer = (claims: [string, string, string[]][]) => ({
  kind: 'ok' as const, text: JSON.stringify({ claims: claims.map(([section, text, memory_refs]) => ({ section, text, memory_refs })) }),
});
const call = (user: TestUser, path: string, init: RequestInit = {}) =>
  fetch(fn(path), { ...init, headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': 'application/json', ...init.headers } });

/** Everything the user can read about themselves, as one string. */
async function everyPath(user: TestUser): Promise<string> {
  const parts: unknown[] = [];
  const n = await call(user, 'narrative');
  parts.push(n.status === 200 ? narrativeResponse.parse(await n.json()) : n.status);
  for (const [message, isNew] of [['hello', true], ['Which marathon am I training for?', false]] as const) {
    const o = await call(user, 'orchestrate', { method: 'POST', body: JSON.stringify({ user_message: message, is_new_conversation: isNew }) });
    parts.push(orchestrateResponse.parse(await o.json()));
  }
  const client = await mcpSession.connect(user);
  parts.push(narrativeStateOutput.parse(await toolOk(client, 'get_narrative')));
  parts.push(await toolOk(client, 'jean_memory', { user_message: 'hello', is_new_conversation: true }));
  parts.push(await client.readResource({ uri: 'narrative://me' }));
  parts.push(await sql.begin(async (tx) => {
    await actAsUser(tx, user.id);
    return [await tx`select * from user_narratives`, await tx`select * from user_narrative_versions`];
  }));
  const h = narrativeHistoryResponse.parse(await (await call(user, 'narrative/history')).json());
  for (const v of h.versions) parts.push(await (await call(user, `narrative/history/${v.version}`)).json());
  return JSON.stringify(parts);
}

describe('a claim stating one memory while citing another', () => {
  it('is not stored, so once that memory is deleted no path serves its words', async () => {
    const m = marker();
    // m1 is the newest memory: X, the one deleted later.
    const x = "I'm training for the Reykjavik marathon in August.";
    const contents = [x, 'I play the cello in an amateur orchestra.', 'I prefer short answers with SQL examples.',
      'I live in Lisbon.', 'I work at Globex on streaming ingestion.', `I read about durable queues (${m}).`];
    await fake.scenario(m, [
      answer([[WHO, 'Training for the Reykjavik marathon in August.', ['m1']], [THEMES, 'Plays the cello in an amateur orchestra.', ['m2']],
        [HOW, 'Prefers short answers with SQL examples.', ['m3']], [WORK, 'Works at Globex on streaming ingestion.', ['m5']],
        // X's fact under the Lisbon memory's ref: a valid citation that does not support it.
        [WHO, x, ['m4']]]),
      // Regenerated from the prompt without X (m1 the cello now).
      answer([[THEMES, 'Plays the cello in an amateur orchestra.', ['m1']], [HOW, 'Prefers short answers with SQL examples.', ['m2']],
        [WHO, 'Lives in Lisbon.', ['m3']], [WORK, 'Works at Globex on streaming ingestion.', ['m4']]]),
    ]);
    const user = await createUser();
    const ids = await memoriesOf(sql, user.id, contents);
    const from = logSize('runtime');
    const { job_id } = await enqueue(sql, user.id, 'manual');
    const done = await waitForJob(sql, job_id, (j) => j.status === 'succeeded' || j.status === 'failed', 'the first generation', 20_000);
    expect(done.status, `stored (${done.last_error ?? ''})`).toBe('succeeded');

    const [row] = await sql<{ claims: { text: string; memory_ids: string[] }[] }[]>`select claims from user_narratives where user_id = ${user.id}`;
    expect(row.claims.map((c) => [c.text, c.memory_ids]).sort(), 'the four supported claims; the one quoting X under the Lisbon memory\'s ref is not stored')
      .toEqual([['Plays the cello in an amateur orchestra.', [ids[1]]], ['Prefers short answers with SQL examples.', [ids[2]]],
        ['Training for the Reykjavik marathon in August.', [ids[0]]], ['Works at Globex on streaming ingestion.', [ids[4]]]]);
    const validate = await eventually('the validate log line', async () => (logSince('runtime', from) ?? '').split('\n')
      .find((l) => l.includes(`"job_id":${job_id},`) && l.includes('"step":"validate"')) ?? null, 5_000, 50);
    expect(JSON.parse(validate.slice(validate.indexOf('{'))), 'counted apart from bad refs')
      .toMatchObject({ claims: 4, claims_dropped: 0, claims_dropped_unsupported: 1 });
    expect(validate, 'the log line carries no memory text').not.toContain('Reykjavik');
    expect(await everyPath(user), 'before the delete: X is served, citing X').toContain('Reykjavik');

    // The regeneration the delete queues waits at the provider: the reads see the stripped version.
    await fake.hold(m);
    onTestFinished(async () => { await fake.release(m); });
    const del = await call(user, `memories/${ids[0]}`, { method: 'DELETE' });
    expect(del.status, 'the user deletes X').toBe(200);
    const stripped = await everyPath(user);
    expect(stripped, 'right after the delete, on every path: not one of X\'s words').not.toMatch(/Reykjavik|marathon/i);
    expect(stripped, 'nor its id').not.toContain(ids[0]);
    expect(stripped, 'the rest is still served').toContain('Plays the cello in an amateur orchestra.');

    await fake.release(m);
    const regenerated = await eventually('the regenerated version', async () => {
      const r = await call(user, 'narrative');
      const n = r.status === 200 ? narrativeResponse.parse(await r.json()) : null;
      return n && n.version > 1 && !n.partial ? n : null;
    }, 20_000);
    expect(regenerated.claims.map((c) => c.text), 'written without X').toContain('Lives in Lisbon.');
    expect(await everyPath(user), 'after the regeneration too, on every path and in every version').not.toMatch(/Reykjavik|marathon/i);
  });
});
