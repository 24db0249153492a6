// Tombstones only come from deleting a memory (docs/targets.md): an insert with state 'deleted'
// is refused with the error a supabase-js caller sees (23514, constraint memories_inserted_deleted,
// a hint), as the user through the Data API path and as postgres, one row or 50,000, and nothing
// is stored. The per-user bound and the sweeper's purge are proved in
// supabase/tests/120_tombstones.test.sql.
import type { Sql } from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { actAsUser, db } from './helpers/stack.ts';
import { createUser, type TestUser } from './helpers/users.ts';

const sql = db(2);
afterAll(() => sql.end({ timeout: 2 }));

interface PgError { code?: string; constraint_name?: string; message?: string; hint?: string }

/** The error `work` fails with, or null when it succeeds. */
async function failure(work: () => Promise<unknown>): Promise<PgError | null> {
  try {
    await work();
    return null;
  } catch (err) {
    return err as PgError;
  }
}

/** Work as the user under RLS, as PostgREST runs a supabase-js call (the local stack has no
 *  PostgREST): role authenticated and the user's claims in the transaction. */
const asUser = (user: TestUser, work: (tx: Sql) => Promise<unknown>) => sql.begin(async (tx) => {
  await actAsUser(tx, user.id);
  return await work(tx as unknown as Sql);
});

function expectRefused(err: PgError | null, what: string) {
  expect(err, `${what}: refused`).not.toBeNull();
  expect([err!.code, err!.constraint_name], `${what}: 23514 on the named constraint`).toEqual(['23514', 'memories_inserted_deleted']);
  expect(err!.message, `${what}: a clear message`).toBe('a memory cannot be inserted as deleted');
  expect(err!.hint, `${what}: a hint saying what to do`).toMatch(/Insert it active or archived/);
}

describe('a memory cannot be inserted as deleted', () => {
  it('as the user (the Data API path) and as postgres, one row or 50,000; nothing is stored', async () => {
    const user = await createUser();
    expectRefused(await failure(() => asUser(user, (tx) => tx`
      insert into public.memories (user_id, content, state) values (${user.id}, '', 'deleted')`)), 'as the user');
    expectRefused(await failure(() => asUser(user, (tx) => tx`
      insert into public.memories (user_id, content, state)
      values (${user.id}, 'a real memory', 'active'), (${user.id}, '', 'deleted')`)), 'as the user, beside an active one');
    expectRefused(await failure(() => sql`
      insert into public.memories (user_id, content, state) values (${user.id}, '', 'deleted')`), 'as postgres');
    expectRefused(await failure(() => sql`
      insert into public.memories (user_id, content, state)
      select ${user.id}::uuid, '', 'deleted' from generate_series(1, 50000)`), '50,000 in one statement as postgres');
    const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from public.memories where user_id = ${user.id}`;
    expect(n, 'no row stored').toBe(0);
    const [counts] = await sql`select n, tombstones from private.memory_counts where user_id = ${user.id}`;
    expect(counts ?? { n: 0, tombstones: 0 }, 'nothing counted').toEqual({ n: 0, tombstones: 0 });

    expect(await failure(() => asUser(user, (tx) => tx`
      insert into public.memories (user_id, content) values (${user.id}, 'kept')`)), 'an active memory is still accepted').toBeNull();
    expect(await failure(() => asUser(user, (tx) => tx`
      update public.memories set state = 'deleted' where user_id = ${user.id}`)), 'and deleting it makes the tombstone').toBeNull();
    const [row] = await sql`select state, content from public.memories where user_id = ${user.id}`;
    expect(row, 'a tombstone, empty').toEqual({ state: 'deleted', content: '' });
  });
});
