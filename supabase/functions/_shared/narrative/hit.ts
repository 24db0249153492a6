// The cache hit: one statement, private.narrative_hit, that answers with the response body itself
// (built in SQL as one JSON text) when the user's narrative is fresh, and null otherwise (the
// caller then asks narrative_for_me, which decides the rest). It runs on the service connection
// as the functions' own role, with the user id the caller proved: the `sub` of a JWT verified in
// auth.ts, or the user_id a service key named. Nobody else may execute it (see the migration).
// Why not as the user under RLS: setting role and claims and evaluating the policy was most of a
// hit's cost (docs/performance.md); the function reads the one row by its unique key instead.
import { dbPlan, sql } from '../db.ts';

export type HitShape = 'orchestrate' | 'narrative';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// Direct connection: a prepared statement (its plan, and the function's, stay on the connection).
// Transaction pooler: no prepared statements, and an unnamed extended-protocol query is parsed,
// planned and described every time (about three times the cost), so a simple-protocol query with
// the id as a literal, which the UUID check makes safe to inline.
const STATEMENTS: Record<HitShape, string> = {
  orchestrate: `select private.narrative_hit($1, 'orchestrate') as body`,
  narrative: `select private.narrative_hit($1, 'narrative') as body`,
};

/** The fresh narrative's answer body for `shape`, or null when there is no fresh narrative. */
export async function hitBody(userId: string, shape: HitShape): Promise<string | null> {
  if (!UUID.test(userId)) throw new Error('hitBody: user id is not a UUID');
  const rows = dbPlan.prepare
    ? await sql.unsafe<{ body: string | null }[]>(STATEMENTS[shape], [userId], { prepare: true })
    : await sql.unsafe<{ body: string | null }[]>(STATEMENTS[shape].replace('$1', `'${userId}'`));
  return rows[0]?.body ?? null;
}

/** orchestrate's hit body with its timing_ms (the last field of the contract), from `started`. */
export function withTiming(body: string, started: number): string {
  return `${body.slice(0, -1)},"timing_ms":${Math.round((performance.now() - started) * 10) / 10}}`;
}
