// Postgres, directly (postgres.js). Which URL and how (pool size, prepared statements) is
// db-plan.ts's decision: Supavisor's transaction mode when NARRATIVE_DB_POOLER_URL is set, else
// SUPABASE_DB_URL (direct on hosted). User-scoped work runs as PostgREST runs it: a transaction
// with role `authenticated` and the JWT claims in request.jwt.claims, so row level security is
// enforced by Postgres itself. Every transaction sets its own statement_timeout (set_config(…,
// true), local to it): a startup parameter would be dropped by Supavisor.
import { Socket } from 'node:net';
import postgres from 'postgres';
import { env } from './env.ts';
import { connectionPlan } from './db-plan.ts';
import { log } from './log.ts';
import type { Claims, UserClaims } from './auth.ts';
import { REQUEST_ROUTES, type RequestRoute } from '../../../shared/narrative.ts';

// postgres.js batches small writes with setImmediate and flushes at once when a pipelined batch
// passes 1 KiB, cancelling the immediate. Deno 2.1 (the edge runtime's) still runs an immediate
// cancelled while it was already due in the same timer batch, so under load a flush fires with
// nothing to send: `socket.write(null)` throws outside any promise and the whole worker dies
// (denoland/deno#29262, porsager/postgres#1066; 64 concurrent reads on a pool of 8 hit it in
// seconds). A null write has nothing to send, so it is a no-op here (TLS sockets inherit it).
// Drop this once postgres.js guards nextWrite or the runtime's clearImmediate holds.
const socketWrite = Socket.prototype.write as (this: Socket, ...args: unknown[]) => boolean;
(Socket.prototype as { write: (...args: unknown[]) => boolean }).write = function (this: Socket, ...args: unknown[]) {
  return args[0] === null ? true : socketWrite.apply(this, args);
};

/** Warnings SQL raises for the functions' log: private.record_spend's `unpriced_model` (its
 *  detail is JSON of ids, models and the cost counted; never text). Other notices are dropped. */
const FORWARDED_NOTICES = new Set(['unpriced_model']);

function forwardNotice(notice: postgres.Notice): void {
  if (!FORWARDED_NOTICES.has(notice.message)) return;
  let detail: Record<string, unknown> = {};
  try {
    detail = JSON.parse(notice.detail ?? '{}');
  } catch { /* not JSON: the message alone */ }
  log({ level: 'warn', msg: notice.message, ...detail });
}

/** The statement_timeout of the service connection's transactions: a runaway query must not hold
 *  a pooled connection forever. 30 s covers the slowest legitimate statement, the set-based
 *  backfill (1.94 s for 100,000 users, about 20 µs a user: some 1.5 million users per call; more
 *  take `--limit` batches); user-facing paths set tighter local timeouts of their own
 *  (fallback_timeout_ms, MCP tools' 5 s) after it, inside the same transaction. */
export const SERVICE_STATEMENT_TIMEOUT_MS = 30_000;
const TIMEOUT = String(SERVICE_STATEMENT_TIMEOUT_MS);

export const dbPlan = connectionPlan({ poolerUrl: env.dbPoolerUrl, dbUrl: env.dbUrl, poolSize: env.dbPoolSize });
log({ level: 'info', msg: 'db_connection', source: dbPlan.source, kind: dbPlan.kind, prepare: dbPlan.prepare, pool: dbPlan.max });

export const sql = postgres(dbPlan.url, {
  prepare: dbPlan.prepare,
  max: dbPlan.max,
  idle_timeout: 60,
  connect_timeout: 10,
  onnotice: forwardNotice,
  connection: { application_name: 'edge-functions' },
});

export type Tx = postgres.TransactionSql;

export function asUser<T>(claims: Claims, work: (tx: Tx) => Promise<T>): Promise<T> {
  return sql.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true),
                    set_config('request.jwt.claims', ${JSON.stringify(claims)}, true),
                    set_config('statement_timeout', ${TIMEOUT}, true)`;
    return await work(tx);
  }) as Promise<T>;
}

/**
 * One statement on the service connection (as postgres: queue operations, backfill, queue health,
 * slots), bounded by SERVICE_STATEMENT_TIMEOUT_MS set inside its transaction: BEGIN, then the
 * timeout and the statement pipelined, then COMMIT. Use it like `sql` for a whole statement;
 * fragments and parameter helpers (sql.json) still come from `sql`.
 */
export async function service<T extends readonly postgres.MaybeRow[] = postgres.Row[]>(
  template: TemplateStringsArray, ...parameters: readonly postgres.ParameterOrFragment<never>[]
): Promise<postgres.RowList<T>> {
  const [, rows] = await sql.begin((tx) => [
    tx`select set_config('statement_timeout', ${TIMEOUT}, true)`,
    tx<T>(template, ...parameters),
  ]);
  return rows as postgres.RowList<T>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The hot path's read as the user in ONE round trip: role and claims, then a parameterless
 * statement, sent as one simple-protocol query, which Postgres runs as one implicit transaction (SET LOCAL
 * holds for it; an error rolls it all back). Only `sub` and `role` go into the claims — enough
 * for auth.uid()-based policies, and built from a checked UUID so the literal needs no escaping
 * beyond what is shown. Anything more than a single read uses asUser.
 */
export async function readAsUser<T>(claims: UserClaims, statement: string): Promise<T[]> {
  if (!UUID.test(claims.sub)) throw new Error('readAsUser: sub is not a UUID');
  const literal = JSON.stringify({ sub: claims.sub.toLowerCase(), role: 'authenticated' });
  // Two statements, as PostgREST sends them: role, claims and the timeout in one select, then the read.
  const results = await sql.unsafe(
    `select set_config('role', 'authenticated', true), set_config('request.jwt.claims', '${literal}', true),
       set_config('statement_timeout', '${TIMEOUT}', true); ${statement}`,
  ) as unknown as T[][];
  return results[1];
}


export function checkedRoute(r: RequestRoute): RequestRoute {
  if (!REQUEST_ROUTES.includes(r)) throw new Error(`unknown rate-limited route ${r}`);
  return r;
}

/** Spends one request of the user's budget for `limit`; over it, a 429 (see http.ts, dbHttpError). */
export async function takeRequest(userId: string, limit: RequestRoute): Promise<void> {
  await service`select private.take_request(${userId}::uuid, ${checkedRoute(limit)})`;
}
