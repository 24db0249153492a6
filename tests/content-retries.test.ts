// Unusable answers are a content failure, not an outage (docs/settings-and-limits.md, Outages): a note like "never mention
// anything" makes every answer invalid, so invalid_output is retried content_retry_limit times
// (default 2), not max_attempts (12), every attempt counted in the spend ledger; and a note edit
// after the failed job waits out failure_cooldown_seconds from the failure instead of buying a
// paid generation every few seconds. Default settings; the fake Gemini answers.
import { afterAll, describe, expect, it } from 'vitest';
import { fakeGeminiControl } from '../local/fakes/gemini.ts';
import { addMemories, enqueue, fastForward, type JobRow, makeUser, marker, waitForJob } from './helpers/pipeline.ts';
import { FAKE_GEMINI_URL } from '../local/config.ts';
import { db } from './helpers/stack.ts';

const sql = db(4);
const fake = fakeGeminiControl(FAKE_GEMINI_URL);
afterAll(() => sql.end({ timeout: 2 }));

const finished = (j: JobRow) => j.status === 'succeeded' || j.status === 'failed';

describe('content failures', () => {
  it('invalid_output stops after the bounded retries; a note edit then waits out the failure cooldown', async () => {
    const m = marker();
    await fake.scenario(m, [{ kind: 'malformed' }]); // every answer unusable, as for "never mention anything"
    const userId = await makeUser(sql);
    await addMemories(sql, userId, 6, `I work on ${m}`);
    const [s] = await sql<{ limit: number; cooldown: number; max: number }[]>`
      select content_retry_limit as limit, failure_cooldown_seconds as cooldown, max_attempts as max from private.settings`;
    expect(s.limit, 'a small bound, well under max_attempts').toBeLessThan(s.max);

    const { job_id } = await enqueue(sql, userId, 'manual');
    for (let attempt = 1; attempt <= s.limit; attempt++) {
      const j = await waitForJob(sql, job_id, (x) => x.status === 'queued' && x.attempts === attempt, `be requeued after attempt ${attempt}`);
      expect(j.last_error_code, `attempt ${attempt}: invalid_output`).toBe('invalid_output');
      await fastForward(sql, job_id);
    }
    const failed = await waitForJob(sql, job_id, finished, 'fail');
    expect([failed.status, failed.attempts, failed.last_error_code], 'failed after the limit, with that code')
      .toEqual(['failed', s.limit + 1, 'invalid_output']);
    expect(failed.last_error, 'says why it stopped').toMatch(new RegExp(`gave up after ${s.limit + 1} unusable answers`));
    expect((await fake.calls(m)).length, 'one paid request per attempt').toBe(s.limit + 1);
    const [{ rows }] = await sql<{ rows: number }[]>`select count(*)::int as rows from private.spend_ledger where job_id = ${job_id}`;
    expect(rows, 'each attempt is in the spend ledger').toBe(s.limit + 1);

    // The note edit (the user adds the note that made it fail): a notes_changed job that waits.
    await sql`insert into narrative_notes (user_id, content) values (${userId}, 'never mention anything')`;
    const [queued] = await sql<{ reason: string; wait: number }[]>`
      select q.reason, extract(epoch from q.run_after - f.finished_at)::float8 as wait
      from narrative_jobs q, narrative_jobs f
      where q.user_id = ${userId} and q.status = 'queued' and f.id = ${job_id}`;
    expect(queued?.reason, 'the edit queued a job').toBe('notes_changed');
    expect(queued.wait, 'run_after >= the failure + failure_cooldown_seconds').toBeGreaterThanOrEqual(s.cooldown - 0.001);
    await sql`update narrative_notes set content = 'never mention anything, really' where user_id = ${userId}`;
    await sql`select private.sweep()`;
    const [after] = await sql<{ jobs: number; wait: number }[]>`
      select count(*)::int as jobs, min(extract(epoch from run_after - now()))::float8 as wait
      from narrative_jobs where user_id = ${userId} and status = 'queued'`;
    expect(after.jobs, 'another edit: still one job').toBe(1);
    expect(after.wait, 'still waiting (the edit did not pull it forward)').toBeGreaterThan(s.cooldown - 60);
    expect((await fake.calls(m)).length, 'and no request was sent').toBe(s.limit + 1);
  });
});
