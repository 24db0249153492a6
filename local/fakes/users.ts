// The one way tests and scripts make users. Two kinds, as the callers need them:
//  - insertUsers: rows straight in auth.users (no password, no identity), for steps that never
//    sign in (the pipeline, backfill, chaos): thousands in one statement;
//  - createAuthUser: through the Auth admin API as an operator would, then signed in with the
//    password grant, so the access token is a real one.
// Every email ends in @example.test under a caller's prefix, so a run can delete what it made.
import crypto from 'node:crypto';
import type { Sql } from 'postgres';
import { API_URL } from '../config.ts';
import type { LocalKeys } from '../keys.ts';

export const USER_EMAIL_DOMAIN = 'example.test';

/** A fresh address under `prefix` (default 'test'). */
export function userEmail(prefix = 'test'): string {
  return `${prefix}-${crypto.randomUUID()}@${USER_EMAIL_DOMAIN}`;
}

/** `count` users without a password, made in one statement; their ids in creation order. */
export async function insertUsers(sql: Sql, count: number, prefix = 'test'): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    insert into auth.users (id, email)
    select id, ${prefix} || '-' || id || '@' || ${USER_EMAIL_DOMAIN}
    from (select gen_random_uuid() as id, g from generate_series(1, ${count}) g order by g) u
    returning id::text`;
  return rows.map((r) => r.id);
}

/** Deletes every user whose email starts with `prefix-` (their memories, jobs and narratives cascade). */
export async function deleteUsers(sql: Sql, prefix: string): Promise<number> {
  const [{ n }] = await sql<{ n: number }[]>`
    with d as (delete from auth.users where email like ${`${prefix}-%@${USER_EMAIL_DOMAIN}`} returning 1) select count(*)::int as n from d`;
  return n;
}

export interface AuthUser { id: string; email: string; password: string; accessToken: string; refreshToken: string }

export interface CreateAuthUserOptions {
  prefix?: string;
  appMetadata?: Record<string, unknown>;
  userMetadata?: Record<string, unknown>;
}

async function authPost(path: string, apikey: string, bearer: string | null, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${API_URL}/auth/v1${path}`, {
    method: 'POST',
    headers: { apikey, 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST /auth/v1${path}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** A confirmed user made through the Auth admin API and signed in with its password. */
export async function createAuthUser(keys: LocalKeys, opts: CreateAuthUserOptions = {}): Promise<AuthUser> {
  const email = userEmail(opts.prefix);
  const password = `pw-${crypto.randomUUID()}`;
  const user = await authPost('/admin/users', keys.secretKey, keys.serviceRoleKey, {
    email, password, email_confirm: true, app_metadata: opts.appMetadata, user_metadata: opts.userMetadata,
  });
  const session = await authPost('/token?grant_type=password', keys.anonKey, null, { email, password });
  if (typeof user.id !== 'string' || typeof session.access_token !== 'string' || typeof session.refresh_token !== 'string') {
    throw new Error('createAuthUser: unexpected Auth answer');
  }
  return { id: user.id, email, password, accessToken: session.access_token, refreshToken: session.refresh_token };
}
