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
  -- and changes to memories that existed at this time strip the claims citing them.
  memories_as_of timestamptz not null,
  -- Active memories added since generation; past the stale threshold a refresh is queued.
  new_memories_since int not null default 0,
  -- The grounded statements the content is rendered from: [{section, text, memory_ids}], every
  -- memory id an active memory of this user when stored (shared/narrative.ts narrativeClaim).
  claims jsonb not null default '[]'::jsonb check (jsonb_typeof(claims) = 'array'),
  -- Every memory id the claims cite: "which narratives cite memory X" is one GIN lookup, and a
  -- delete, archive or edit strips the claims citing it in the same transaction.
  cited_memory_ids uuid[] not null default '{}',
  -- Claims were removed since generation (a cited memory changed); a regeneration is queued.
  partial boolean not null default false,
  removed_claims int not null default 0 check (removed_claims >= 0),
  job_id bigint
);
comment on table public.user_narratives is 'Cached LLM-written portrait of each user, served at conversation start.';

-- Which narratives cite a memory (the memory-change triggers).
create index user_narratives_cited_memory_ids_idx on public.user_narratives using gin (cited_memory_ids);

-- The weekly refresh walks narratives oldest first.
create index user_narratives_generated_at_idx on public.user_narratives (generated_at);

alter table public.user_narratives enable row level security;

-- Users read their own narrative; nobody writes it through the API (no write policies).
create policy "Users read their own narrative" on public.user_narratives
  for select to authenticated using ((select auth.uid()) = user_id);

-- Grants: users read their own narrative (GET narrative, orchestrate, MCP get_narrative read it
-- as the user); only the pipeline writes it, as its owner postgres. anon, service_role: nothing.
grant select on public.user_narratives to authenticated;

-- The SQL twin of shared/narrative.ts renderClaims (same bytes; tests/grounded-narratives.test.ts
-- compares them): re-renders narrative_content after claims are removed, inside the trigger.
create function private.render_claims(p_claims jsonb) returns text
language sql immutable set search_path = '' as $$
  select string_agg(format(E'## %s\n\n%s', t.title, coalesce(
      (select string_agg('- ' || (c.claim ->> 'text'), E'\n' order by c.ord)
       from jsonb_array_elements(p_claims) with ordinality c(claim, ord) where c.claim ->> 'section' = t.title),
      'Not enough information yet.')), E'\n\n' order by t.ord) || E'\n'
  from unnest(case when jsonb_path_exists(p_claims, '$[*] ? (@.section == "Pinned by you")')
    then array['Pinned by you', 'Who they are', 'Current work and trajectory', 'How to interact with them', 'Recurring themes and patterns']
    else array['Who they are', 'Current work and trajectory', 'How to interact with them', 'Recurring themes and patterns'] end)
    with ordinality t(title, ord)
$$;
comment on function private.render_claims(jsonb) is 'Markdown of a narrative''s claims, byte-identical to shared/narrative.ts renderClaims.';

-- The memory ids a list of claims cites, distinct.
create function private.cited_ids(p_claims jsonb) returns uuid[]
language sql immutable set search_path = '' as $$
  select coalesce(array_agg(distinct x.mid::uuid), '{}')
  from jsonb_array_elements(p_claims) c(claim), jsonb_array_elements_text(c.claim -> 'memory_ids') x(mid)
$$;
comment on function private.cited_ids(jsonb) is 'Distinct memory ids cited by a claims array (user_narratives.cited_memory_ids).';

-- A claims array without the claims citing any of p_ids (memory or note ids): what a change
-- strips from a narrative and its history, and what a completion drops (20261125000660, 20261125000700, 20261125001200).
create function private.claims_without(p_claims jsonb, p_ids uuid[]) returns jsonb
language sql immutable set search_path = '' as $$
  select coalesce(jsonb_agg(c.claim order by c.ord), '[]'::jsonb)
  from jsonb_array_elements(p_claims) with ordinality c(claim, ord)
  where not exists (select 1 from jsonb_array_elements_text(
      coalesce(c.claim -> 'memory_ids', '[]'::jsonb) || coalesce(c.claim -> 'note_ids', '[]'::jsonb)) x(id)
    where x.id::uuid = any (p_ids))
$$;
comment on function private.claims_without(jsonb, uuid[]) is 'Claims minus those citing any of the given memory or note ids.';

-- Fresh: not partial, younger than ttl_days, and fewer than stale_after_new_memories memories
-- added since. (Every stored narrative may be served: a memory change removes the claims citing
-- it from the row itself, in the changing transaction, 20261125000700.) The one freshness rule: narrative_for_me (serve or refresh), backfill (skip
-- fresh) and the weekly refresh (pick not fresh) all call it, and so does the cache hit
-- (private.narrative_hit, 20261125001100).
-- No `set search_path` clause, on purpose: a SQL function with one is never inlined, so Postgres
-- plans its body again on every call, in every statement that uses it (a prepared read of a
-- user's narrative filtered by it: 249 µs of Postgres CPU with the clause, 95 µs without, 64
-- clients, 2026-12-07). Inlined, it is planned once with its caller. It is not security definer
-- and names nothing outside pg_catalog, which is always searched first.
create function private.narrative_is_fresh(n public.user_narratives, s private.settings) returns boolean
language sql stable as $$
  select n.id is not null
    and not n.partial
    and n.generated_at > now() - make_interval(days => s.ttl_days)
    and n.new_memories_since < s.stale_after_new_memories
$$;
comment on function private.narrative_is_fresh(public.user_narratives, private.settings) is 'Fresh: stored, not partial, within ttl_days and under stale_after_new_memories (the only freshness rule).';

-- Grants: none. These functions run as postgres only (see 20261125000200).
revoke execute on all functions in schema private from public;
