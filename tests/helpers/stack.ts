// What tests need to reach the running local stack (started by `npm test` before vitest).
import fs from 'node:fs';
import postgres from 'postgres';
import { DB_URL, KEYS_FILE } from '../../local/config.ts';
import { runningJwtMode, type JwtMode, type LocalKeys } from '../../local/keys.ts';

export function keys(): LocalKeys {
  return JSON.parse(fs.readFileSync(KEYS_FILE, 'utf8')) as LocalKeys;
}

/** How the running Auth stand-in signs user tokens (LOCAL_AUTH_JWT_MODE of the last npm start). */
export function authJwtMode(): JwtMode {
  return runningJwtMode() ?? 'es256';
}

/** A connection as postgres (not a superuser, as on hosted) for fixtures and assertions; close it in afterAll. */
export function db(max = 4) {
  return postgres(DB_URL, { max, onnotice: () => {} });
}

/** In transaction tx, what PostgREST sets for a signed-in user's request (the local stack has no
 *  PostgREST): role authenticated and the user's JWT claims, so RLS applies to what follows. */
export function actAsUser(tx: postgres.TransactionSql | postgres.Sql, userId: string) {
  return tx`select set_config('role', 'authenticated', true),
    set_config('request.jwt.claims', ${JSON.stringify({ sub: userId, role: 'authenticated' })}, true)`;
}

/** Polls `check` until it returns a truthy value; fails with `what` after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | null | undefined | false>, timeoutMs = 10_000, intervalMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}${last ? ` (last error: ${String(last)})` : ''}`);
}

