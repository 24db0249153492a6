-- A user's memories: what the narrative is written from. Users own their rows (RLS).
create table public.memories (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  content text not null check (length(content) between 1 and 20000),
  metadata jsonb not null default '{}'::jsonb check (jsonb_typeof(metadata) = 'object'),
  state text not null default 'active' check (state in ('active', 'archived', 'deleted')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz,
  -- Full-text search over content, for relevance in fallback contexts and search tools.
  fts tsvector generated always as (to_tsvector('english', content)) stored
);
comment on table public.memories is 'Memories of each user; the input narratives are written from.';

-- Policies and hot reads filter on user_id; active memories newest first is the prompt read.
create index memories_user_id_idx on public.memories (user_id);
create index memories_user_active_created_idx on public.memories (user_id, created_at desc) where state = 'active';
create index memories_fts_idx on public.memories using gin (fts);

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

-- Keeps updated_at and deleted_at honest whatever the client sends.
create function private.touch_memory() returns trigger language plpgsql set search_path = '' as $$
begin
  new.updated_at := now();
  if new.state = 'deleted' and old.state is distinct from 'deleted' then
    new.deleted_at := now();
  elsif new.state <> 'deleted' then
    new.deleted_at := null;
  end if;
  return new;
end
$$;
comment on function private.touch_memory() is 'Server-side updated_at and deleted_at for every memory update.';
create trigger touch_memory before update on public.memories
  for each row execute function private.touch_memory();

-- A memory's importance: metadata.importance when it is a number, clamped to 0..1; null when
-- unknown. The one reading of it (the prompt shows it, the ranking uses it).
create function private.importance(p_metadata jsonb) returns real
language sql immutable set search_path = '' as $$
  select case when jsonb_typeof(p_metadata -> 'importance') = 'number'
    then least(greatest((p_metadata ->> 'importance')::real, 0), 1) end
$$;
comment on function private.importance(jsonb) is 'metadata.importance clamped to 0..1, or null when not a number.';

-- How a memory ranks for the prompt: its importance (0.5 when unknown) plus a recency bonus of
-- 0.5 that decays with a 30-day time constant (halved after about three weeks).
create function private.memory_rank(p_metadata jsonb, p_created_at timestamptz) returns double precision
language sql stable set search_path = '' as $$
  select coalesce(private.importance(p_metadata), 0.5) + 0.5 * exp(-extract(epoch from now() - p_created_at) / 2592000.0)
$$;
comment on function private.memory_rank(jsonb, timestamptz) is 'Prompt ranking of a memory: importance (default 0.5) + 0.5 * exp(-age / 30 days).';

-- Grants: none. These functions run as postgres only (see 20261125000200).
revoke execute on all functions in schema private from public;
