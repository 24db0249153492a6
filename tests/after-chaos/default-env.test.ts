// Runs after `scripts/chaos.ts` inside npm test: chaos pointed the functions at a fake Gemini it
// has since shut down. A README command must not leave the stack like that, so the functions are
// back on the default env and a new eligible user gets a narrative from the default provider.
import { afterAll, expect, it } from 'vitest';
import { runningFunctionsEnv } from '../../local/functions-env.ts';
import { addMemories, enqueue, makeUser, waitForJob } from '../helpers/pipeline.ts';
import { db } from '../helpers/stack.ts';

const sql = db(2);
afterAll(() => sql.end({ timeout: 2 }));

it('after a chaos run the functions are on the default env and generate with the default provider', async () => {
  const envFile = runningFunctionsEnv();
  expect(envFile, 'the runtime runs with supabase/functions/.env (no --functions-env)').toBe('');
  const userId = await makeUser(sql);
  await addMemories(sql, userId, 5, 'I grow tomatoes and write compilers');
  const { job_id } = await enqueue(sql, userId, 'cache_miss');
  const done = await waitForJob(sql, job_id, (j) => j.status === 'succeeded' || j.status === 'failed', 'finish', 60_000);
  expect(done.status, `succeeded (last_error: ${done.last_error})`).toBe('succeeded');
  expect(done.model, 'written by the offline writer (no GEMINI_API_KEY in the default env)').toBe('local-narrative-v1');
  await sql`delete from auth.users where id = ${userId}`;
}, 90_000);
