// What the measurements run against: bench users (real Auth accounts, or rows straight in
// auth.users), their memories, and the cleanup that deletes every one of them however the bench ends.
import crypto from 'node:crypto';
import postgres from 'postgres';
import { DB_URL } from '../../local/config.ts';
import { keys } from '../../tests/helpers/stack.ts';
import { overrideSettings } from '../../local/settings.ts';
import { API, EMAIL_PREFIX, progress } from './options.ts';

export const sql = postgres(DB_URL, { max: 8, onnotice: () => {}, connection: { application_name: 'bench' } });
const k = keys();

export interface BenchUser { id: string; email: string; token: string }

async function authFetch(pathname: string, apikey: string, body: unknown, bearer?: string) {
  const res = await fetch(`${API}/auth/v1${pathname}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', apikey, ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST /auth/v1${pathname}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** A user made through the Auth admin API, signed in with a password: a real access token. */
export async function createApiUser(tag: string): Promise<BenchUser> {
  const email = `${EMAIL_PREFIX}${tag}@bench.test`;
  const password = `pw-${crypto.randomUUID()}`;
  const user = await authFetch('/admin/users', k.serviceRoleKey, { email, password, email_confirm: true }, k.serviceRoleKey);
  const session = await authFetch('/token?grant_type=password', k.anonKey, { email, password });
  if (typeof user.id !== 'string' || typeof session.access_token !== 'string') throw new Error('unexpected Auth answer');
  return { id: user.id, email, token: session.access_token };
}

export async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }));
  return out;
}

/** Users straight in auth.users (no password): for pipeline steps that never call the API. */
export async function createDbUsers(tag: string, count: number): Promise<string[]> {
  const r = await sql<{ id: string }[]>`
    insert into auth.users (id, email)
    select gen_random_uuid(), ${EMAIL_PREFIX + tag + '-'} || g || '@bench.test' from generate_series(1, ${count}) g
    returning id`;
  return r.map((x) => x.id);
}

const WORDS = [
  'rust', 'compiler', 'marathon', 'training', 'garden', 'tomatoes', 'kubernetes', 'cluster', 'postgres', 'index',
  'guitar', 'practice', 'python', 'refactor', 'budget', 'travel', 'japan', 'kyoto', 'coffee', 'espresso',
  'daughter', 'school', 'meeting', 'investor', 'startup', 'launch', 'recipe', 'pasta', 'bicycle', 'commute',
  'novel', 'writing', 'chess', 'opening', 'piano', 'sonata', 'climbing', 'boulder', 'mortgage', 'house',
  'typescript', 'migration', 'deadline', 'review', 'podcast', 'interview', 'sleep', 'insulin', 'yoga', 'camera',
  'photography', 'wedding', 'anniversary', 'taxes', 'invoice', 'client', 'design', 'figma', 'database', 'latency',
];
const TEMPLATES = ['The user mentioned', 'Working on', 'Asked about', 'Prefers', 'Is planning', 'Worried about', 'Enjoys', 'Finished'];

/** `perUser` active memories for each user, set-based, with varied words so full-text search has work. */
export async function addMemories(db: postgres.Sql | postgres.TransactionSql, userIds: string[] | null, perUser: number, fromTable?: string) {
  const words = WORDS;
  const templates = TEMPLATES;
  const source = fromTable
    ? db`select id from ${db(fromTable)}`
    : db`select unnest(${userIds!}::uuid[]) as id`;
  await db`
    with w as (select ${words}::text[] as a, ${templates}::text[] as t),
    u as (${source})
    insert into public.memories (user_id, content, created_at, metadata)
    select u.id,
      w.t[1 + floor(random() * array_length(w.t, 1))::int] || ' ' ||
      w.a[1 + floor(random() * array_length(w.a, 1))::int] || ' and ' ||
      w.a[1 + floor(random() * array_length(w.a, 1))::int] || ', mostly ' ||
      w.a[1 + floor(random() * array_length(w.a, 1))::int] || ' ' ||
      w.a[1 + floor(random() * array_length(w.a, 1))::int] || ' during the ' ||
      w.a[1 + floor(random() * array_length(w.a, 1))::int] || ' week (note ' || g || ')',
      now() - make_interval(mins => ${perUser} - g),
      case when g % 3 = 0 then jsonb_build_object('importance', round(random()::numeric, 2)) else '{}'::jsonb end
    from u, w, generate_series(1, ${perUser}) g`;
}

/** Deletes every user of this run (cascade removes memories, jobs, narratives); how many. */
export async function deleteBenchUsers(): Promise<number> {
  const [{ n }] = await sql<{ n: number }[]>`
    with d as (delete from auth.users where email like ${EMAIL_PREFIX + '%'} returning 1) select count(*)::int as n from d`;
  return n;
}

let cleanedUp = false;
/** Once, however the bench ends: `release` (the fake provider), the bench users, the pool. */
let restoreLimits: (() => Promise<void>) | null = null;

/**
 * The cache-miss step sends 200 orchestrate calls for one user in a few seconds, far past the
 * per-user request limit (fresh hits are not counted; a miss is). private.take_request still runs
 * and is measured, it just never refuses. cleanup puts the operator's values back however the
 * bench ends.
 */
export async function liftRequestLimits(): Promise<void> {
  restoreLimits = await overrideSettings(sql, { orchestrate_requests_per_minute: 100_000_000, mcp_requests_per_minute: 100_000_000 });
}

async function restoreRequestLimits(): Promise<void> {
  if (!restoreLimits) return;
  await restoreLimits();
  progress('cleanup: request limits restored');
  restoreLimits = null;
}

export async function cleanup(release: () => Promise<void>): Promise<void> {
  if (cleanedUp) return;
  cleanedUp = true;
  try {
    await release().catch(() => {});
    await restoreRequestLimits().catch((err: Error) => progress(`cleanup: could not restore request limits: ${err.message}`));
    progress('cleanup: deleting every bench user (cascade removes memories, jobs, narratives)');
    progress(`cleanup: deleted ${await deleteBenchUsers()} users`);
  } catch (err) {
    progress(`cleanup FAILED: ${(err as Error).message} — delete users with email like '${EMAIL_PREFIX}%' by hand`);
  } finally {
    await sql.end({ timeout: 5 }).catch(() => {});
  }
}
