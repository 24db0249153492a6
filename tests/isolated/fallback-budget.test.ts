// orchestrate's fallback read runs under private.settings.fallback_timeout_ms (a statement
// timeout on the memory search): a search that overruns it answers with what it has instead of
// making the caller wait. The overrun is made certain, not likely: the test holds an exclusive
// lock on public.memories, so the search cannot finish however long it is given. The lock stops
// every other suite's memory reads, hence tests/isolated.
import { afterAll, expect, it } from 'vitest';
import { addMemories } from '../helpers/pipeline.ts';
import { API_URL } from '../../local/config.ts';
import { db } from '../helpers/stack.ts';
import { createUser } from '../helpers/users.ts';

const sql = db(2);
afterAll(() => sql.end({ timeout: 2 }));

const orchestrate = (token: string, message: string) => fetch(`${API_URL}/functions/v1/orchestrate`, {
  method: 'POST',
  headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
  body: JSON.stringify({ user_message: message, is_new_conversation: false }),
}).then(async (r) => ({ status: r.status, body: await r.json() as { source: string; context: string } }));

it('a memory search that overruns fallback_timeout_ms answers without context instead of waiting', async () => {
  const user = await createUser();
  await addMemories(sql, user.id, 6, 'My zebracorn collection keeps growing');
  const question = 'How is the zebracorn collection?';

  const free = await orchestrate(user.accessToken, question);
  expect(free.status, 'answered').toBe(200);
  expect(free.body.source, 'within the budget the search finds the memory').toBe('fallback');
  expect(free.body.context, 'and quotes it').toContain('zebracorn');

  const held = await sql.begin(async (tx) => {
    await tx`lock table public.memories in access exclusive mode`;
    // Answered while the lock is still held: only the timeout can have ended the search.
    return await orchestrate(user.accessToken, question);
  });
  expect(held.status, 'still a 200, not an error').toBe(200);
  expect(held.body.source, 'nothing found in time').toBe('none');
  expect(held.body.context, 'no context').toBe('');

  const again = await orchestrate(user.accessToken, question);
  expect(again.body.source, 'with the lock gone the search works again').toBe('fallback');
});
