// The user's memories over HTTP (the memories function): a page of them, a full-text search,
// the ones a claim cites, and delete. Always as the user under RLS; a delete is the soft delete
// the schema models (state 'deleted', deleted_at set by private.touch_memory), so the
// memory-change triggers strip every claim citing it, from the narrative and its history, in
// this same transaction (20261125000700, 20261125001200).
import { MEMORY_CURSOR_PATTERN, MEMORY_PAGE_DEFAULT, type MemoriesPage, type MemoryDeleted, type MemoryItem } from '../../../shared/memories.ts';
import type { UserClaims } from './auth.ts';
import { asUser, type Tx } from './db.ts';

type Row = Omit<MemoryItem, 'created_at' | 'updated_at'> & { created_at: Date; updated_at: Date };
const item = ({ id, content, state, created_at, updated_at }: Row): MemoryItem =>
  ({ id, content, state, created_at: created_at.toISOString(), updated_at: updated_at.toISOString() });

/** Every word of `q` as a prefix (stemmed as the fts column is, so "hiking" finds "hike" and
 *  "hik" finds "hiking"), all required: what a search box is expected to do. Null (nothing
 *  matches) when `q` has no searchable word. */
function prefixQuery(tx: Tx, q: string) {
  return tx`(select to_tsquery('simple', string_agg('''' || replace(replace(lexeme, '\\', '\\\\'), '''', '''''') || ''':*', ' & '))
    from unnest(tsvector_to_array(to_tsvector('english', ${q}))) lexeme)`;
}

/** Active memories newest first, `limit` per page, optionally only those matching `q`. The
 *  cursor is the last row's (created_at in µs, id): exact, so no row is skipped or repeated. */
export const pageMemories = (claims: UserClaims, p: { q?: string; limit?: number; cursor?: string }) => asUser(claims, async (tx) => {
  const limit = p.limit ?? MEMORY_PAGE_DEFAULT;
  const after = p.cursor ? MEMORY_CURSOR_PATTERN.exec(p.cursor) : null;
  const rows = await tx<(Row & { cursor: string })[]>`
    select id, content, state, created_at, updated_at,
      (extract(epoch from created_at) * 1000000)::bigint || '_' || id as cursor
    from public.memories
    where user_id = (select auth.uid()) and state = 'active'
      ${p.q ? tx`and fts @@ ${prefixQuery(tx, p.q)}` : tx``}
      ${after ? tx`and (created_at, id) < (timestamptz 'epoch' + ${after[1]}::bigint * interval '1 microsecond', ${after[2]}::uuid)` : tx``}
    order by created_at desc, id desc
    limit ${limit + 1}`;
  const page = rows.slice(0, limit);
  return { memories: page.map(item), next_cursor: rows.length > limit ? page[page.length - 1].cursor : null } satisfies MemoriesPage;
});

/** The caller's memories among `ids`, in that order; other users' (RLS), missing and deleted
 *  ones are simply not there. */
export const openMemories = (claims: UserClaims, ids: string[]) => asUser(claims, async (tx) => {
  const wanted = [...new Set(ids.map((id) => id.toLowerCase()))];
  const rows = await tx<Row[]>`
    select id, content, state, created_at, updated_at from public.memories
    where id = any(${wanted}::uuid[]) and user_id = (select auth.uid()) and state <> 'deleted'`;
  const byId = new Map(rows.map((r) => [r.id, r]));
  return wanted.flatMap((id) => (byId.has(id) ? [item(byId.get(id)!)] : []));
});

/** Deletes one of the caller's memories (active or archived); null when there is none to
 *  delete (another user's, missing, already deleted). claims_removed counts the claims citing
 *  it in the narrative as this statement saw it, which the triggers removed. */
export const deleteMemory = (claims: UserClaims, id: string) => asUser(claims, async (tx): Promise<MemoryDeleted | null> => {
  const memoryId = id.toLowerCase();
  const [row] = await tx<{ id: string; deleted_at: Date; claims_removed: number; had_narrative: boolean }[]>`
    with cited as (
      select count(*)::int as n from public.user_narratives u, jsonb_array_elements(u.claims) c
      where u.user_id = (select auth.uid()) and u.cited_memory_ids @> array[${memoryId}::uuid]
        and c.value -> 'memory_ids' ? ${memoryId}
    ), had as (
      select count(*) > 0 as yes from public.user_narratives where user_id = (select auth.uid())
    ), gone as (
      update public.memories set state = 'deleted'
      where id = ${memoryId} and user_id = (select auth.uid()) and state <> 'deleted'
      returning id, deleted_at
    )
    select gone.id, gone.deleted_at, cited.n as claims_removed, had.yes as had_narrative from gone, cited, had`;
  if (!row) return null;
  const [{ has }] = await tx<{ has: boolean }[]>`
    select exists (select 1 from public.user_narratives where user_id = (select auth.uid())) as has`;
  return { id: row.id, deleted_at: row.deleted_at.toISOString(), claims_removed: row.claims_removed, narrative_removed: row.had_narrative && !has };
});
