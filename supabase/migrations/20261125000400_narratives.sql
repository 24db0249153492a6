-- The cached narrative: one row per user, written only by the pipeline (private.complete_job).
create table public.user_narratives (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null unique references auth.users (id) on delete cascade,
  narrative_content text not null,
  version int not null default 1 check (version >= 1),
  generated_at timestamptz not null,
  updated_at timestamptz not null default now(),
  model text,
  source_memory_count int,
  source_memories_omitted int not null default 0,
  -- When the input memories were read: a narrative is never replaced by one from older input,
  -- and changes to memories that existed at this time invalidate it.
  memories_as_of timestamptz not null,
  -- Active memories added since generation; past the stale threshold a refresh is queued.
  new_memories_since int not null default 0,
  -- Set when a memory it was built from is edited, archived or deleted: never served again
  -- until regenerated, so deleted content never reaches a conversation.
  invalidated_at timestamptz,
  invalidated_reason text,
  job_id bigint
);
comment on table public.user_narratives is 'Cached LLM-written portrait of each user, served at conversation start.';

-- The weekly refresh walks narratives oldest first.
create index user_narratives_generated_at_idx on public.user_narratives (generated_at);

alter table public.user_narratives enable row level security;

-- Users read their own narrative; nobody writes it through the API (no write policies).
create policy "Users read their own narrative" on public.user_narratives
  for select to authenticated using ((select auth.uid()) = user_id);

-- Grants: users read their own narrative (GET narrative, orchestrate, MCP get_narrative read it
-- as the user); only the pipeline writes it, as its owner postgres. anon, service_role: nothing.
grant select on public.user_narratives to authenticated;

-- Whether a narrative may be served at all: never once a memory it was built from changed.
create function private.narrative_is_servable(n public.user_narratives) returns boolean
language sql stable set search_path = '' as $$
  select n.invalidated_at is null
$$;
comment on function private.narrative_is_servable(public.user_narratives) is 'Servable: not invalidated by a change to a memory it was built from.';

-- Fresh: servable, younger than ttl_days, and fewer than stale_after_new_memories memories
-- added since. The one freshness rule: narrative_for_me (serve or refresh), backfill (skip
-- fresh) and the weekly refresh (pick not fresh) all call it.
create function private.narrative_is_fresh(n public.user_narratives, s private.settings) returns boolean
language sql stable set search_path = '' as $$
  select private.narrative_is_servable(n)
    and n.generated_at > now() - make_interval(days => s.ttl_days)
    and n.new_memories_since < s.stale_after_new_memories
$$;
comment on function private.narrative_is_fresh(public.user_narratives, private.settings) is 'Fresh: servable, within ttl_days and under stale_after_new_memories (the only freshness rule).';

-- Grants: none. These functions run as postgres only (see 20261125000200).
revoke execute on all functions in schema private from public;
