// Reading the cache and building contexts, always inside the caller's RLS transaction.
import type { UserClaims } from '../auth.ts';
import { asUser, readAsUser, sql, type Tx } from '../db.ts';
import type { NarrativeStatus } from '../../../../shared/narrative.ts';

export interface ServingSettings {
  ttl_days: number;
  stale_after_new_memories: number;
  min_memories: number;
  fallback_timeout_ms: number;
}

// Thresholds change rarely (an operator's UPDATE); re-read them every 30 s, not per request.
// Call it before opening a transaction, never inside one: a refresh needs its own connection,
// and a pool whose connections all wait inside transactions for it would never give it one.
let settingsCache: { at: number; value: Promise<ServingSettings> } | null = null;
export function servingSettings(): Promise<ServingSettings> {
  if (!settingsCache || Date.now() - settingsCache.at > 30_000) {
    const value = sql<ServingSettings[]>`select * from private.serving_settings()`.then((r) => r[0]);
    value.catch(() => { settingsCache = null; });
    settingsCache = { at: Date.now(), value };
  }
  return settingsCache.value;
}

export interface StoredNarrative {
  narrative_content: string;
  version: number;
  generated_at: Date;
  model: string | null;
  servable: boolean;
  new_memories_since: number;
}

/** The user's narrative row (RLS: only their own is visible): one indexed read, one round trip. */
export async function readNarrative(claims: UserClaims): Promise<StoredNarrative | undefined> {
  const [row] = await readAsUser<StoredNarrative>(claims, `
    select narrative_content, version, generated_at, model, invalidated_at is null as servable, new_memories_since
    from public.user_narratives where user_id = (select auth.uid())`);
  return row;
}

export function freshness(n: StoredNarrative, s: ServingSettings): { age_days: number; stale: boolean } {
  const age_days = Math.round(((Date.now() - n.generated_at.getTime()) / 86_400_000) * 100) / 100;
  return { age_days, stale: age_days > s.ttl_days || n.new_memories_since >= s.stale_after_new_memories };
}

export interface NarrativeRequest {
  /** ready: what the caller missed exists by now (a job just stored it); nothing was queued. */
  outcome: 'queued' | 'active' | 'ready' | 'ineligible' | 'cooldown' | 'failed';
  job_id: number | null;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | null;
  retry_after_seconds: number | null;
}

/** Ask for a (re)generation for the signed-in user; idempotent, policy in SQL. */
export async function requestNarrative(tx: Tx, reason: 'cache_miss' | 'stale' | 'manual'): Promise<NarrativeRequest> {
  const [row] = await tx<NarrativeRequest[]>`select outcome, job_id::int, status, retry_after_seconds from public.request_narrative(${reason})`;
  return row;
}

export type NarrativeView =
  | { status: 'ready'; narrative: string; version: number; generated_at: string; age_days: number; stale: boolean; model: string | null }
  | { status: NarrativeStatus };

/**
 * What to show the user now (GET /narrative, MCP get_narrative): the cached narrative — a fresh
 * hit costs one round trip — or why there is none, queueing the work that fixes it (a refresh
 * for a stale one, a cache_miss job for an eligible user without one).
 */
export async function narrativeView(claims: UserClaims, retried = false): Promise<NarrativeView> {
  const settings = await servingSettings();
  const n = await readNarrative(claims);
  if (n?.servable) {
    const { age_days, stale } = freshness(n, settings);
    if (stale) await asUser(claims, (tx) => requestNarrative(tx, 'stale'));
    return {
      status: 'ready', narrative: n.narrative_content, version: n.version, generated_at: n.generated_at.toISOString(),
      age_days, stale, model: n.model,
    };
  }
  const r = await asUser(claims, (tx) => requestNarrative(tx, 'cache_miss'));
  if (r.outcome === 'ready' && !retried) return await narrativeView(claims, true);
  return {
    status: r.outcome === 'ineligible' ? 'ineligible' : r.outcome === 'failed' ? 'failed' : r.status === 'running' ? 'running' : 'queued',
  };
}

export function jobOf(r: NarrativeRequest): { id: number; status: 'queued' | 'running' | 'succeeded' | 'failed' } | null {
  return r.job_id !== null && r.status ? { id: r.job_id, status: r.status } : null;
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
