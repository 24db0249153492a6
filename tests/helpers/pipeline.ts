// Fixtures and probes for the narrative pipeline, straight against Postgres.
import crypto from 'node:crypto';
import type { Sql } from 'postgres';
import { insertUsers } from '../../local/fakes/users.ts';
import { eventually } from './stack.ts';

export interface JobRow {
  id: number;
  user_id: string;
  reason: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed';
  attempts: number;
  max_attempts: number;
  run_after: Date;
  locked_until: Date | null;
  lease_token: string | null;
  started_at: Date | null;
  finished_at: Date | null;
  last_error: string | null;
  last_error_code: string | null;
  dispatched_at: Date | null;
  dispatch_count: number;
  last_request_id: number | null;
  model: string | null;
  requested_model: string | null;
  provider_calls: number;
  prompt_tokens: number | null;
  output_tokens: number | null;
  thoughts_tokens: number | null;
  cached_tokens: number | null;
  total_tokens: number | null;
  duration_ms: number | null;
  memories_used: number | null;
  memories_omitted: number | null;
  narrative_version: number | null;
}

/** A scenario marker: memories containing it make the fake Gemini follow that scenario. */
export const marker = () => `scenario${crypto.randomUUID().replaceAll('-', '')}`;

export async function addMemories(sql: Sql, userId: string, count: number, text = 'note'): Promise<void> {
  await sql`
    insert into public.memories (user_id, content, created_at)
    select ${userId}::uuid, ${text} || ' #' || g, now() - make_interval(mins => ${count} - g)
    from generate_series(1, ${count}) g`;
}

/** Memories with these contents for a user, newest first (a day apart); their ids in that order. */
export async function memoriesOf(sql: Sql, userId: string, contents: string[]): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    with added as (
      insert into public.memories (user_id, content, created_at)
      select ${userId}::uuid, c, now() - make_interval(days => (o - 1)::int)
      from unnest(${contents}::text[]) with ordinality as t(c, o)
      returning id, created_at)
    select id from added order by created_at desc`;
  return rows.map((r) => r.id);
}

export async function enqueue(sql: Sql, userId: string, reason = 'manual'): Promise<{ job_id: number; status: string; created: boolean }> {
  const [row] = await sql<{ job_id: number; status: string; created: boolean }[]>`
    select job_id::int, status, created from private.enqueue_job(${userId}::uuid, ${reason})`;
  return row;
}

export async function job(sql: Sql, id: number): Promise<JobRow> {
  const [row] = await sql<JobRow[]>`select *, id::int from public.narrative_jobs where id = ${id}`;
  return row;
}

export function waitForJob(sql: Sql, id: number, accept: (j: JobRow) => boolean, what: string, timeoutMs = 15_000): Promise<JobRow> {
  return eventually(`job ${id}: ${what}`, async () => {
    const j = await job(sql, id);
    return j && accept(j) ? j : null;
  }, timeoutMs);
}

/** Makes a queued job due now and runs the sweeper, instead of waiting out the backoff. */
export async function fastForward(sql: Sql, id: number): Promise<void> {
  await sql`update public.narrative_jobs set run_after = now(), dispatched_at = null where id = ${id} and status = 'queued'`;
  await sql`select private.sweep()`;
}

export async function narrative(sql: Sql, userId: string) {
  const [row] = await sql`select * from public.user_narratives where user_id = ${userId}`;
  return row as undefined | {
    version: number; narrative_content: string; model: string; source_memory_count: number;
    source_memories_omitted: number; new_memories_since: number; generated_at: Date;
    claims: { section: string; text: string; memory_ids: string[] }[]; cited_memory_ids: string[];
    partial: boolean; removed_claims: number;
    memories_as_of: Date; job_id: number;
  };
}

/** A user row without a password, for tests that never sign in (local/fakes/users.ts). */
export async function makeUser(sql: Sql): Promise<string> {
  const [id] = await insertUsers(sql, 1);
  return id;
}

/** Waits until no job is queued or running, fast-forwarding backoffs and sweeping meanwhile
 *  (for suites that need a quiet queue: they run alone, in tests/isolated). */
export async function drainQueue(sql: Sql, timeoutMs = 30_000): Promise<void> {
  await eventually('the queue to drain', async () => {
    const [{ n }] = await sql`select count(*)::int as n from narrative_jobs where status in ('queued', 'running')`;
    if (n === 0) return true;
    await sql`update narrative_jobs set run_after = now(), dispatched_at = null
              where status = 'queued' and (run_after > now() or dispatched_at < now() - interval '5 seconds')`;
    await sql`select private.sweep()`;
    return false;
  }, timeoutMs, 250);
}
