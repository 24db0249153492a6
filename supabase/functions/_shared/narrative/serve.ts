// Serving: what the signed-in user gets is decided by one SQL function, public.narrative_for_me
// (freshness, eligibility, partial narratives, cooldowns and queueing all live there); this module
// calls it and builds fallback contexts, always as the user.
import type { UserClaims } from '../auth.ts';
import { checkedRoute, readAsUser, service, sql, type Tx } from '../db.ts';
import {
  NARRATIVE_FOR_ME_REASONS, type JobStatus, type NarrativeClaim, type NarrativeForMeReason, type NarrativeForMeStatus, type NarrativeStatus,
  type RequestRoute,
} from '../../../../shared/narrative.ts';

/** A row of public.narrative_for_me. */
export interface ForMe {
  status: NarrativeForMeStatus;
  narrative: string | null;
  version: number | null;
  generated_at: Date | null;
  age_days: number | null;
  stale: boolean | null;
  model: string | null;
  job_id: number | null;
  job_status: JobStatus | null;
  retry_after_seconds: number | null;
  min_memories: number | null;
  memory_count: number | null;
  claims: NarrativeClaim[] | null;
  partial: boolean | null;
  /** settings.fallback_timeout_ms, so a call that must build a fallback needs no second read. */
  fallback_timeout_ms: number;
}

/**
 * Ask public.narrative_for_me as the user, in one round trip (role, claims and the call in one
 * statement): a cache hit costs exactly this. The reason is one of a fixed list, so the literal
 * needs no escaping. With `limit`, whatever is not a fresh hit first spends a request of the
 * user's budget for that route, inside narrative_for_me (429 over it, and nothing is queued).
 */
export async function narrativeForMe(claims: UserClaims, reason: NarrativeForMeReason, limit?: RequestRoute): Promise<ForMe> {
  if (!NARRATIVE_FOR_ME_REASONS.includes(reason)) throw new Error(`narrativeForMe: unknown reason ${reason}`);
  const [row] = await readAsUser<ForMe>(claims, `
    select status, narrative, version, generated_at, age_days, stale, model, job_id::int as job_id, job_status,
      retry_after_seconds, min_memories, memory_count, claims, partial, fallback_timeout_ms
    from public.narrative_for_me('${reason}'${limit ? `, '${checkedRoute(limit)}'` : ''})`);
  return row;
}

export type NarrativeView =
  | {
    status: 'ready'; narrative: string; version: number; generated_at: string; age_days: number; stale: boolean;
    model: string | null; claims: NarrativeClaim[]; partial: boolean;
  }
  | { status: NarrativeStatus; min_memories: number | null; memory_count: number | null; retry_after_seconds: number | null };

/** What to show the user now (GET /narrative, MCP get_narrative), as narrative_for_me decided it. */
export async function narrativeView(claims: UserClaims): Promise<NarrativeView> {
  const r = await narrativeForMe(claims, 'cache_miss');
  if (r.status === 'ready') {
    return {
      status: 'ready', narrative: r.narrative!, version: r.version!, generated_at: r.generated_at!.toISOString(),
      age_days: r.age_days!, stale: r.stale!, model: r.model, claims: r.claims ?? [], partial: r.partial ?? false,
    };
  }
  if (r.status === 'cooldown') throw new Error('narrative_for_me answered cooldown to a read');
  return { status: r.status, min_memories: r.min_memories, memory_count: r.memory_count, retry_after_seconds: r.retry_after_seconds };
}

/** The job narrative_for_me queued or found (a stale refresh, a miss, a recent failure). */
export function jobOf(r: ForMe): { id: number; status: JobStatus; retry_after: number | null } | null {
  return r.job_id !== null && r.job_status ? { id: r.job_id, status: r.job_status, retry_after: r.retry_after_seconds } : null;
}

/** The fallback search's time budget (settings.fallback_timeout_ms) for a call that has not asked
 *  narrative_for_me (which returns it): a message within a conversation. */
export async function fallbackTimeoutMs(): Promise<number> {
  const [row] = await service<{ ms: number }[]>`select fallback_timeout_ms as ms from private.settings`;
  return row.ms;
}

export interface MemoryLine { kind: 'recent' | 'relevant'; id: string; content: string; created_at: Date }

const CONTEXT_MAX_CHARS = 4_000;
const LINE_MAX_CHARS = 300;
const PER_KIND = 8;

function clip(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= LINE_MAX_CHARS ? flat : `${flat.slice(0, LINE_MAX_CHARS - 1)}…`;
}

function render(lines: MemoryLine[], heading: string): string {
  const seen = new Set<string>();
  const parts: string[] = [heading];
  let size = heading.length;
  const kinds = new Set(lines.map((l) => l.kind)).size;
  for (const kind of ['relevant', 'recent'] as const) {
    const chosen = lines.filter((l) => l.kind === kind && !seen.has(l.content));
    if (chosen.length === 0) continue;
    if (kinds > 1) {
      const title = kind === 'recent' ? 'Recent memories:' : 'Related to the current message:';
      parts.push(title);
      size += title.length;
    }
    for (const l of chosen) {
      const line = `- [${l.created_at.toISOString().slice(0, 10)}] ${clip(l.content)}`;
      if (size + line.length > CONTEXT_MAX_CHARS) break;
      seen.add(l.content);
      parts.push(line);
      size += line.length + 1;
    }
  }
  return seen.size === 0 ? '' : parts.join('\n');
}

/**
 * A full-text query matching memories that share any word (stemmed, stopwords dropped) with the
 * message, ranked by ts_rank: a conversational message rarely has all its words in one memory.
 * A subquery with one column, `query`; also used by the MCP server's search tools.
 */
export function anyWordQuery(message: string) {
  return sql`select to_tsquery('simple', coalesce(string_agg(quote_literal(lexeme), ' | '), '')) as query
    from (select unnest(tsvector_to_array(to_tsvector('english', ${message}))) as lexeme limit 64) words`;
}

/**
 * The user's memories most relevant to `message` (any-word full-text search, ranked) and their
 * most recent ones, in one statement; a memory can be in both lists.
 */
export function relevantAndRecent(tx: Tx, message: string, relevant: number, recent: number) {
  return tx<MemoryLine[]>`
    (select 'recent' as kind, id, content, created_at from public.memories
      where user_id = (select auth.uid()) and state = 'active' order by created_at desc limit ${recent})
    union all
    (select 'relevant', m.id, m.content, m.created_at
      from public.memories m, (${anyWordQuery(message)}) q
      where m.user_id = (select auth.uid()) and m.state = 'active' and m.fts @@ q.query
      order by ts_rank(m.fts, q.query) desc, m.created_at desc limit ${relevant})`;
}

/**
 * Context from memories within a fixed time budget: the most relevant to the message and, when
 * `withRecent`, the most recent. If the search overruns the budget, the recent memories alone
 * are used.
 */
export async function memoryContext(tx: Tx, message: string, withRecent: boolean, timeoutMs: number): Promise<string> {
  const heading = withRecent
    ? 'What is known about the user so far (their own memories; a full portrait is being prepared):'
    : 'Memories of the user related to this message:';
  const recent = withRecent ? PER_KIND : 0;
  let lines: MemoryLine[];
  try {
    lines = await tx.savepoint(async (sp) => {
      await sp`select set_config('statement_timeout', ${String(timeoutMs)}, true)`;
      return await relevantAndRecent(sp, message, PER_KIND, recent);
    });
  } catch (err) {
    if ((err as { code?: string }).code !== '57014') throw err;
    if (!withRecent) return '';
    lines = await relevantAndRecent(tx, '', 0, recent);
  }
  return render(lines, heading);
}
