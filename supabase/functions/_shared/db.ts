// Postgres, directly (postgres.js; prepare: false so the transaction pooler works). User-scoped
// work runs as PostgREST runs it: a transaction with role `authenticated` and the JWT claims in
// request.jwt.claims, so row level security is enforced by Postgres itself.
import postgres from 'postgres';
import { env } from './env.ts';
import type { Claims } from './auth.ts';

export const sql = postgres(env.dbUrl, {
  prepare: false,
  max: env.dbPoolSize,
  idle_timeout: 60,
  connect_timeout: 10,
  onnotice: () => {},
  connection: { application_name: 'edge-functions' },
});

export type Tx = postgres.TransactionSql;

export function asUser<T>(claims: Claims, work: (tx: Tx) => Promise<T>): Promise<T> {
  return sql.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true),
                    set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
    return await work(tx);
  }) as Promise<T>;
}
