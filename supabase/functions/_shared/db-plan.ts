// Which Postgres connection the functions open, and how (db.ts uses it; pure, so the unit project
// tests it beside this file). Hosted Supabase gives every function SUPABASE_DB_URL, today a
// DIRECT connection (port 5432, no pooling): each connection is a Postgres backend, so every
// isolate of every function counts against max_connections (60 on the smallest computes, some of
// them taken by the platform). An optional secret, NARRATIVE_DB_POOLER_URL, names Supavisor's
// transaction-mode URL (port 6543) instead, read first: there many isolates share a few backends.
//   - transaction pooler: no prepared statements ("Supavisor in transaction mode does not support
//     them"; a statement prepared on one backend is missing on the next), no session state;
//   - direct (or session mode): prepared statements are safe, and the pool stays small.
// A SUPABASE_DB_URL on port 6543 is taken for the transaction pooler too, should the platform
// ever hand that one out. Timeouts are never startup parameters either way (Supavisor drops
// them): db.ts sets them inside each transaction.

export type DbConnectionKind = 'transaction_pooler' | 'direct';

export interface DbPlan {
  url: string;
  /** Which variable the URL came from (logged at start; never the URL, which holds the password). */
  source: 'NARRATIVE_DB_POOLER_URL' | 'SUPABASE_DB_URL';
  kind: DbConnectionKind;
  /** postgres.js `prepare`: named prepared statements, only where the connection keeps them. */
  prepare: boolean;
  /** postgres.js `max`: connections per isolate. */
  max: number;
}

/** Supavisor's transaction-mode port. */
export const TRANSACTION_POOLER_PORT = '6543';

/** Connections per isolate when DB_POOL_SIZE is unset. Direct: each is a backend, and isolates
 *  multiply (functions × instances), so few; one would let a slow transaction (a 150 ms fallback
 *  search, an MCP tool) hold back every hit of the isolate. Through the pooler a client connection
 *  is cheap (Supavisor's own pool bounds the backends). postgres.js pipelines queries on a busy
 *  connection, so a small pool does not serialise the hot path. */
export const DEFAULT_POOL_SIZE: Record<DbConnectionKind, number> = { transaction_pooler: 5, direct: 3 };

function portOf(url: string): string {
  try {
    return new URL(url).port;
  } catch {
    throw new Error('the database URL is not a valid URL');
  }
}

export function connectionPlan(env: { poolerUrl: string | null; dbUrl: string; poolSize: number | null }): DbPlan {
  const source = env.poolerUrl ? 'NARRATIVE_DB_POOLER_URL' : 'SUPABASE_DB_URL';
  const url = env.poolerUrl ?? env.dbUrl;
  const port = portOf(url);
  const kind: DbConnectionKind = env.poolerUrl || port === TRANSACTION_POOLER_PORT ? 'transaction_pooler' : 'direct';
  return { url, source, kind, prepare: kind === 'direct', max: env.poolSize ?? DEFAULT_POOL_SIZE[kind] };
}
