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
