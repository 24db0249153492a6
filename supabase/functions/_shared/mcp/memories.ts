// The MCP server's reads and writes of memories, always inside the caller's RLS transaction:
// `auth.uid()` is the token's subject, so nothing a client sends can reach another user's rows.
import type { Tx } from '../db.ts';
import { anyWordQuery, relevantAndRecent } from '../narrative/serve.ts';

export interface Memory {
  id: string;
  content: string;
  created_at: Date;
}

/** A memory for the signed-in user; the memory-change triggers take it from there. */
export async function addMemory(tx: Tx, content: string): Promise<Memory> {
  const [row] = await tx<Memory[]>`
    insert into public.memories (user_id, content) values ((select auth.uid()), ${content})
    returning id, content, created_at`;
  return row;
}

export type OpenedMemory = Memory & { state: 'active' | 'archived'; updated_at: Date };

/** One memory of the user's by id, active or archived, or null: a deleted memory is gone (its
 *  text is no longer served anywhere), and RLS hides other users' rows, so another user's id
 *  reads exactly like a missing one. */
export async function getMemory(tx: Tx, id: string): Promise<OpenedMemory | null> {
  const [row] = await tx<OpenedMemory[]>`
    select id, content, state, created_at, updated_at from public.memories
    where id = ${id} and user_id = (select auth.uid()) and state <> 'deleted'`;
  return row ?? null;
}

export type ListedMemory = Memory & { metadata: Record<string, unknown> };
export type FoundMemory = Memory & { rank: number };

/** Active memories, newest first. */
export async function listMemories(tx: Tx, limit: number): Promise<ListedMemory[]> {
  return await tx<ListedMemory[]>`
    select id, content, metadata, created_at from public.memories
    where user_id = (select auth.uid()) and state = 'active'
    order by created_at desc, id desc limit ${limit}`;
}

/** Active memories sharing any word with `query` (Postgres full-text search), best first. */
export async function searchMemories(tx: Tx, query: string, limit: number): Promise<FoundMemory[]> {
  return await tx<FoundMemory[]>`
    select m.id, m.content, m.created_at, ts_rank(m.fts, q.query)::float8 as rank
    from public.memories m, (${anyWordQuery(query)}) q
    where m.user_id = (select auth.uid()) and m.state = 'active' and m.fts @@ q.query
    order by rank desc, m.created_at desc limit ${limit}`;
}

/** What an answer is built from: the most relevant memories, then the most recent other ones. */
export async function memoriesFor(tx: Tx, query: string, relevant: number, recent: number): Promise<{ relevant: Memory[]; recent: Memory[] }> {
  // Ask for enough recent ones to still have `recent` after dropping those already relevant.
  const rows = await relevantAndRecent(tx, query, relevant, recent + relevant);
  const top = rows.filter((r) => r.kind === 'relevant');
  const seen = new Set(top.map((m) => m.id));
  const latest = rows.filter((r) => r.kind === 'recent' && !seen.has(r.id)).slice(0, recent);
  const plain = (m: Memory): Memory => ({ id: m.id, content: m.content, created_at: m.created_at });
  return { relevant: top.map(plain), recent: latest.map(plain) };
}
