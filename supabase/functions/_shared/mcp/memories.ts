// The MCP server's reads and writes of memories, always inside the caller's RLS transaction:
// `auth.uid()` is the token's subject, so nothing a client sends can reach another user's rows.
import type { Tx } from '../db.ts';
import { anyWordQuery } from '../narrative/serve.ts';

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
  const top = await searchMemories(tx, query, relevant);
  const latest = await tx<Memory[]>`
    select id, content, created_at from public.memories
    where user_id = (select auth.uid()) and state = 'active'
    order by created_at desc limit ${recent + top.length}`;
  const seen = new Set(top.map((m) => m.id));
  return { relevant: top, recent: latest.filter((m) => !seen.has(m.id)).slice(0, recent) };
}
