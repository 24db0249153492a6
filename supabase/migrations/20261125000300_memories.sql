-- A user's memories: what the narrative is written from. Users own their rows (RLS).
create table public.memories (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  -- Empty only once deleted: a soft delete keeps the row (id, dates: what history and the
  -- limits count) but not what it said (private.touch_memory).
  content text not null check (length(content) <= 20000 and (length(content) >= 1 or state = 'deleted')),
  metadata jsonb not null default '{}'::jsonb check (jsonb_typeof(metadata) = 'object'),
  state text not null default 'active' check (state in ('active', 'archived', 'deleted')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz,
  -- metadata.importance when it is a number, clamped to 0..1; null when unknown. The one reading
  -- of it: the prompt shows it, the ranking (private.memory_rank) and its index use it.
  importance real generated always as (
    case when jsonb_typeof(metadata -> 'importance') = 'number'
      then round(least(greatest((metadata ->> 'importance')::numeric, 0), 1), 6)::real end) stored,
  -- Full-text search over content, for relevance in fallback contexts and search tools.
  fts tsvector generated always as (to_tsvector('english', content)) stored,
  -- A deleted memory is a tombstone (private.touch_memory empties it as it is deleted; a memory
  -- cannot be inserted as deleted: private.check_memory_limits, 20261125000750).
  constraint memories_deleted_empty check (state <> 'deleted' or (content = '' and metadata = '{}'::jsonb))
);
comment on table public.memories is 'Memories of each user; the input narratives are written from.';

-- Policies and hot reads filter on user_id; active memories newest first is the prompt read.
create index memories_user_id_idx on public.memories (user_id);
create index memories_user_active_created_idx on public.memories (user_id, created_at desc) where state = 'active';
create index memories_fts_idx on public.memories using gin (fts);
-- Tombstones, oldest first: the sweeper's purge past tombstone_retention_days, and a user's
-- oldest when they hold more than max_memories_per_user (20261125000750).
create index memories_tombstones_idx on public.memories (deleted_at) where state = 'deleted';
create index memories_user_tombstones_idx on public.memories (user_id, deleted_at, id) where state = 'deleted';
-- A user's archived memories, counted apart from every active one (private.memories_for_prompt).
create index memories_user_archived_idx on public.memories (user_id) where state = 'archived';

alter table public.memories enable row level security;

-- Users read their own memories.
create policy "Users read their own memories" on public.memories
  for select to authenticated using ((select auth.uid()) = user_id);
-- Users add memories for themselves only.
create policy "Users add their own memories" on public.memories
  for insert to authenticated with check ((select auth.uid()) = user_id);
-- Users edit their own memories and cannot hand them to someone else.
create policy "Users edit their own memories" on public.memories
  for update to authenticated using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);
-- Users delete their own memories.
create policy "Users delete their own memories" on public.memories
  for delete to authenticated using ((select auth.uid()) = user_id);

-- Grants (see 20261125000200): users read their memories (dashboard, orchestrate, MCP reads),
-- add them (MCP add_memories), edit and delete them (the Data API), under the policies above.
-- They write what a memory says, never its bookkeeping: created_at drives invalidation and
-- staleness, so it is the server's clock, not the client's. anon and service_role: nothing.
grant select, delete on public.memories to authenticated;
grant insert (user_id, content, metadata, state) on public.memories to authenticated;
grant update (content, metadata, state) on public.memories to authenticated;

-- Keeps updated_at and deleted_at honest whatever the client sends, and makes a delete real: a
-- memory set to 'deleted' loses its text and metadata in the same statement (the row stays as a
-- tombstone, so a direct select of the table returns nothing the user deleted), and a deleted
-- memory cannot be brought back.
create function private.touch_memory() returns trigger language plpgsql set search_path = '' as $$
begin
  if old.state = 'deleted' and new.state <> 'deleted' then
    raise exception 'memory % is deleted; add it again instead', old.id
      using errcode = '23514', constraint = 'memories_deleted_final';
  end if;
  new.updated_at := now();
  if new.state = 'deleted' then
    new.content := '';
    new.metadata := '{}'::jsonb;
    new.deleted_at := coalesce(old.deleted_at, now());
  else
    new.deleted_at := null;
  end if;
  return new;
end
$$;
comment on function private.touch_memory() is 'Server-side updated_at and deleted_at; a delete empties content and metadata and is final.';
create trigger touch_memory before update on public.memories
  for each row execute function private.touch_memory();

-- How a memory ranks for the prompt: its importance (0.5 when unknown) plus a recency bonus of
-- 0.5 that decays with a 30-day time constant (halved after about three weeks).
create function private.memory_rank(p_importance real, p_created_at timestamptz) returns double precision
language sql stable set search_path = '' as $$
  select coalesce(p_importance, 0.5) + 0.5 * exp(-extract(epoch from now() - p_created_at) / 2592000.0)
$$;
comment on function private.memory_rank(real, timestamptz) is 'Prompt ranking of a memory: importance (default 0.5) + 0.5 * exp(-age / 30 days).';

-- The prompt's other candidate list, most important first (private.memories_for_prompt): its
-- order is the ranking's importance term, so the top of it is one index range scan.
create index memories_user_active_importance_idx on public.memories
  (user_id, (coalesce(importance, 0.5)) desc, created_at desc) where state = 'active';

-- Grants: none. These functions run as postgres only (see 20261125000200).
revoke execute on all functions in schema private from public;
