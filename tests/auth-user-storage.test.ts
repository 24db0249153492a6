// Users are stored as Supabase Auth (GoTrue) stores them, by the local Auth stand-in and by
// supabase/seed.sql alike, so the same seed gives working logins on a hosted project.
import crypto from 'node:crypto';
import { afterAll, expect, it } from 'vitest';
import { db } from './helpers/stack.ts';
import { anonClient, createUser } from './helpers/users.ts';

const sql = db(2);
afterAll(() => sql.end());

const INSTANCE = '00000000-0000-0000-0000-000000000000';

async function stored(id: string) {
  const [u] = await sql`select instance_id::text, aud, role, email, email_confirmed_at, confirmation_token,
    recovery_token, email_change_token_new, email_change from auth.users where id = ${id}`;
  const identities = await sql`select provider, provider_id, user_id::text, identity_data, email
    from auth.identities where user_id = ${id}`;
  return { u, identities };
}

function expectGoTrueShape(s: Awaited<ReturnType<typeof stored>>, id: string, email: string, who: string) {
  expect(s.u.instance_id, `${who}: the default instance_id`).toBe(INSTANCE);
  expect([s.u.aud, s.u.role], `${who}: aud and role`).toEqual(['authenticated', 'authenticated']);
  expect(s.u.email_confirmed_at, `${who}: email confirmed`).not.toBeNull();
  expect([s.u.confirmation_token, s.u.recovery_token, s.u.email_change_token_new, s.u.email_change],
    `${who}: token columns are empty strings, not null (GoTrue cannot read null ones)`).toEqual(['', '', '', '']);
  expect(s.identities.length, `${who}: one identity`).toBe(1);
  const [i] = s.identities;
  expect([i.provider, i.provider_id, i.user_id, i.email], `${who}: the email identity`).toEqual(['email', id, id, email]);
  expect(i.identity_data, `${who}: identity_data has sub and email`).toMatchObject({ sub: id, email });
}

it('admin createUser stores the user with instance_id, aud, role and an email identity', async () => {
  const user = await createUser();
  expectGoTrueShape(await stored(user.id), user.id, user.email, 'admin-created user');
});

it('signUp stores the user the same way, and the user can sign in', async () => {
  const email = `test-${crypto.randomUUID()}@example.test`;
  const password = `pw-${crypto.randomUUID()}`;
  const { data, error } = await anonClient().auth.signUp({ email, password });
  expect(error, 'signUp succeeds').toBeNull();
  const id = data.user!.id;
  expectGoTrueShape(await stored(id), id, email, 'signed-up user');
  const signIn = await anonClient().auth.signInWithPassword({ email, password });
  expect(signIn.error, 'the new user signs in').toBeNull();
});

it('the seeded demo users are stored as Auth stores them and sign in', async () => {
  for (const email of ['demo@example.com', 'sam@example.com', 'new@example.com', 'admin@example.com']) {
    const [{ id }] = await sql`select id::text from auth.users where email = ${email}`;
    expectGoTrueShape(await stored(id), id, email, email);
  }
  const signIn = await anonClient().auth.signInWithPassword({ email: 'demo@example.com', password: 'password123' });
  expect(signIn.error, 'demo@example.com signs in').toBeNull();
});
