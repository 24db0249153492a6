-- Serving: what the narrative, orchestrate, MCP and backfill functions call. Policy (freshness,
-- eligibility, cooldowns, idempotency) is in SQL so every caller gets the same answer.

-- Per-user full-text search over memories without scanning other users' rows.
create extension if not exists btree_gin with schema extensions;
create index memories_user_fts_idx on public.memories using gin (user_id, fts) where state = 'active';

-- The user's last job when it failed within failure_cooldown_seconds, and how long until a
-- read may queue again: reads answer `failed` (or keep serving a stale narrative) meanwhile.
create function private.recent_failure(p_user_id uuid) returns table (job_id bigint, retry_after_seconds int)
language sql stable security definer set search_path = '' as $$
  select l.id, ceil(extract(epoch from l.finished_at + make_interval(secs => s.failure_cooldown_seconds) - now()))::int
  from private.settings s, lateral (
    select j.id, j.status, j.finished_at from public.narrative_jobs j
    where j.user_id = p_user_id order by j.created_at desc limit 1
  ) l
  where l.status = 'failed' and l.finished_at > now() - make_interval(secs => s.failure_cooldown_seconds)
$$;
comment on function private.recent_failure(uuid) is 'The user''s last job if it failed within failure_cooldown_seconds, with the seconds left.';

-- Seconds until a queued job may start (its run_after: the budget, a debounce or a backoff),
-- null when it may start now or is not queued: what narrative_for_me answers as retry_after.
create function private.job_retry_after(p_job_id bigint) returns int
language sql stable security definer set search_path = '' as $$
  select ceil(extract(epoch from j.run_after - now()))::int from public.narrative_jobs j
  where j.id = p_job_id and j.status = 'queued' and j.run_after > now()
$$;
comment on function private.job_retry_after(bigint) is 'Seconds until a queued job may start, or null (narrative_for_me''s retry_after).';

-- Step of narrative_for_me for a stale narrative (served now): the job refreshing it, or the
-- last job when it failed within failure_cooldown_seconds (no new job until that is over), or
-- nothing for a user no longer eligible.
create function private.refresh_stale(p_user_id uuid) returns table (job_id bigint, job_status text)
language plpgsql volatile security definer set search_path = '' as $$
begin
  return query select f.job_id, 'failed'::text from private.recent_failure(p_user_id) f;
  if not found then
    return query select e.job_id, e.status from private.enqueue_if_eligible(p_user_id, 'stale') e;
  end if;
end
$$;
comment on function private.refresh_stale(uuid) is 'narrative_for_me step: the refresh job of a stale narrative (queued unless the last job failed recently).';

-- Step of narrative_for_me for a manual regeneration: the user's last manual job when it was
-- asked for within manual_cooldown_seconds, with the seconds left, else no row.
create function private.manual_cooldown(p_user_id uuid) returns table (job_id bigint, job_status text, retry_after_seconds int)
language sql stable security definer set search_path = '' as $$
  select l.id, l.status, ceil(extract(epoch from l.created_at + make_interval(secs => s.manual_cooldown_seconds) - now()))::int
  from private.settings s, lateral (
    select j.id, j.status, j.created_at from public.narrative_jobs j
    where j.user_id = p_user_id and j.reason = 'manual' order by j.created_at desc limit 1
  ) l
  where l.created_at > now() - make_interval(secs => s.manual_cooldown_seconds)
$$;
comment on function private.manual_cooldown(uuid) is 'narrative_for_me step: the last manual job if asked for within manual_cooldown_seconds, with the seconds left.';

-- What narrative_for_me answers (shared/narrative.ts NARRATIVE_FOR_ME_STATUSES; checked by
-- tests/sql-contract.test.ts): ready (a servable narrative, fresh or stale), queued | running
-- (a job is writing one), failed (the last job failed within failure_cooldown_seconds),
-- ineligible (too few memories), cooldown (a manual regeneration asked too soon). A queued job
-- that may not start yet (the daily generation budget, a debounce, a backoff) comes with
-- retry_after_seconds, on ready (the refresh job) and queued answers alike.
create type private.narrative_status as enum ('ready', 'queued', 'running', 'failed', 'ineligible', 'cooldown');

-- The one decision of what a signed-in user (auth.uid()) gets, for GET/POST narrative,
-- orchestrate and MCP: the servable narrative with its freshness, or why there is none, queueing
-- the job that fixes it. A partial narrative (claims removed after a memory changed) is served
-- as ready with partial = true and counts as stale (its regeneration is queued). p_reason: cache_miss (a read: serve, refresh a stale one, queue a
-- cache_miss job for an eligible user without one) or manual (the Regenerate button, with its
-- cooldown). A fresh hit is one read, no lock; everything else is decided under the user's lock
-- on a new read, so a narrative stored by a job that raced this call is seen, never re-queued.
-- Freshness is private.narrative_is_fresh, eligibility private.is_eligible.
-- p_limit ('orchestrate', 'mcp' or null): a caller with a per-user request budget. Everything but
-- a fresh hit then spends one request of it first (private.take_request, 20261125000750), so a
-- user past the limit gets 429 rate_limited and nothing is locked or queued. A fresh hit is not
-- counted: it costs Postgres one indexed read, and a shared bucket costs about a third of that
-- per request whether it refuses or not (bench: 275 against 202 µs of Postgres CPU per hit), so limiting hits
-- would tax the hottest path to protect almost nothing; the limit guards what costs (fallback
-- memory searches, queueing, MCP tools).
create function public.narrative_for_me(p_reason text default 'cache_miss', p_limit text default null)
returns table (
  status private.narrative_status, narrative text, version int, generated_at timestamptz,
  age_days double precision, stale boolean, model text,
  job_id bigint, job_status text, retry_after_seconds int,
  min_memories int, memory_count int, claims jsonb, partial boolean, fallback_timeout_ms int)
language plpgsql volatile security definer set search_path = '' as $$
#variable_conflict use_column
declare
  s private.settings;
  v_user uuid := auth.uid();
  n public.user_narratives;
  v_job record;
  v_job_id bigint;
  v_job_status text;
  v_count int;
begin
  if v_user is null then
    raise exception 'narrative_for_me needs a signed-in user' using errcode = '42501';
  end if;
  if p_reason is null or p_reason not in ('cache_miss', 'manual') then
    raise exception 'reason must be cache_miss or manual' using errcode = '22023';
  end if;
  select * into s from private.settings;

  if p_reason = 'cache_miss' then
    select * into n from public.user_narratives u where u.user_id = v_user;
    if n.id is not null and private.narrative_is_fresh(n, s) then
      return query select 'ready'::private.narrative_status, n.narrative_content, n.version, n.generated_at,
        round((extract(epoch from now() - n.generated_at) / 86400)::numeric, 2)::float8, false, n.model,
        null::bigint, null::text, null::int, null::int, null::int, n.claims, n.partial, s.fallback_timeout_ms;
      return;
    end if;
  end if;

  if p_limit is not null then
    perform private.take_request(v_user, p_limit);
  end if;
  perform private.lock_user(v_user);

  if p_reason = 'cache_miss' then
    -- A new statement, a new snapshot: what a job stored while this call waited for the lock.
    select * into n from public.user_narratives u where u.user_id = v_user;
    if n.id is not null then
      if not private.narrative_is_fresh(n, s) then
        -- Stale: served now, refreshed in the background unless the last attempt failed recently.
        select r.job_id, r.job_status into v_job_id, v_job_status from private.refresh_stale(v_user) r;
      end if;
      return query select 'ready'::private.narrative_status, n.narrative_content, n.version, n.generated_at,
        round((extract(epoch from now() - n.generated_at) / 86400)::numeric, 2)::float8,
        not private.narrative_is_fresh(n, s), n.model,
        v_job_id, v_job_status, private.job_retry_after(v_job_id), null::int, null::int, n.claims, n.partial, s.fallback_timeout_ms;
      return;
    end if;
  end if;

  -- private.is_eligible's rule (settings.min_memories active memories), from the settings row
  -- already read and one count that also answers "how many".
  v_count := private.active_memory_count(v_user, s.min_memories);
  if v_count < s.min_memories then
    return query select 'ineligible'::private.narrative_status, null::text, null::int, null::timestamptz,
      null::float8, null::boolean, null::text, null::bigint, null::text, null::int,
      s.min_memories, v_count, null::jsonb, null::boolean, s.fallback_timeout_ms;
    return;
  end if;

  if p_reason = 'manual' then
    return query select 'cooldown'::private.narrative_status, null::text, null::int, null::timestamptz,
      null::float8, null::boolean, null::text, c.job_id, c.job_status, c.retry_after_seconds,
      null::int, null::int, null::jsonb, null::boolean, s.fallback_timeout_ms
      from private.manual_cooldown(v_user) c;
    if found then
      return;
    end if;
  else
    return query select 'failed'::private.narrative_status, null::text, null::int, null::timestamptz,
      null::float8, null::boolean, null::text, f.job_id, 'failed', f.retry_after_seconds, null::int, null::int,
      null::jsonb, null::boolean, s.fallback_timeout_ms
      from private.recent_failure(v_user) f;
    if found then
      return;
    end if;
  end if;

  select * into v_job from private.enqueue_job(v_user, p_reason);
  return query select v_job.status::private.narrative_status, null::text, null::int, null::timestamptz,
    null::float8, null::boolean, null::text, v_job.job_id, v_job.status, private.job_retry_after(v_job.job_id), null::int, null::int,
    null::jsonb, null::boolean, s.fallback_timeout_ms;
end
$$;
comment on function public.narrative_for_me(text, text) is 'What the signed-in user gets: the servable narrative or its status (queued, running, failed, ineligible, cooldown), queueing the job that fixes it.';

-- Grants: the one function users call (GET/POST narrative, orchestrate, MCP, as the user; it
-- needs auth.uid(), so a service_role caller could only be refused). Nobody else.
revoke execute on function public.narrative_for_me(text, text) from public;
grant execute on function public.narrative_for_me(text, text) to authenticated;

-- The cache hit, for the functions only: the answer body of a fresh narrative (GET narrative's
-- 200, or orchestrate's without timing_ms) as one JSON text, else null, and the caller goes on
-- to narrative_for_me, which decides everything else. Same rule as narrative_for_me's first
-- step (private.narrative_is_fresh), no lock, no request spent. Keyed by a user id, so it must
-- never be callable with a user id someone chose: it is executable by its owner only (postgres,
-- the functions' service connection, which passes the `sub` of a JWT it verified, or the user a
-- service key named); the Data API roles have no grant (supabase/tests/030_grants). It reads the
-- row as it is at this statement: claims citing a deleted memory are gone from it since that
-- delete committed (20261125000700), and a partial narrative is not fresh.
-- Why this shape, measured at 64 clients on 2 cores (2026-12-07; Postgres CPU per call): the
-- row security path it replaces (role and claims set, then narrative_for_me under RLS) 220-300 µs;
-- a SQL function here would be planned on every call (340 µs); plpgsql keeps its plan for the
-- connection's life, so it costs ~35 µs prepared, ~45 µs as a simple query, on a connection
-- that pipelines. security invoker (it runs as its only caller, the owner, which RLS does not
-- restrict) and no search_path clause (every name is qualified): a SET clause is a GUC save and
-- restore per call. lock_timeout is the bound: one index lookup cannot run long except waiting
-- for a lock (DDL on the table), and the hit is too hot a path for a second statement that sets
-- a statement_timeout (+15 µs).
create function private.narrative_hit(p_user_id uuid, p_shape text) returns text
language plpgsql stable set lock_timeout = '2s' as $$
begin
  if p_shape = 'orchestrate' then
    return (select '{"source":"narrative","context":' || to_json(n.narrative_content)::text
      || ',"narrative":{"version":' || n.version
      || ',"generated_at":"' || to_char(n.generated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
      || '","stale":false,"partial":false},"claims":' || n.claims::text || ',"job":null}'
      from public.user_narratives n, private.settings s
      where n.user_id = p_user_id and private.narrative_is_fresh(n, s));
  elsif p_shape = 'narrative' then
    return (select '{"narrative":' || to_json(n.narrative_content)::text || ',"version":' || n.version
      || ',"generated_at":"' || to_char(n.generated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
      || '","age_days":' || round((extract(epoch from now() - n.generated_at) / 86400)::numeric, 2)::float8
      || ',"stale":false,"model":' || coalesce(to_json(n.model)::text, 'null')
      || ',"claims":' || n.claims::text || ',"partial":false}'
      from public.user_narratives n, private.settings s
      where n.user_id = p_user_id and private.narrative_is_fresh(n, s));
  end if;
  raise exception 'narrative_hit: unknown shape %', p_shape using errcode = '22023';
end
$$;
comment on function private.narrative_hit(uuid, text) is 'Cache hit for the functions: a fresh narrative''s answer body (orchestrate or GET narrative) as JSON text, else null. Owner only.';

-- Admin backfill, set-based: one statement picks eligible users (private.eligibility_threshold
-- of p_min_memories) without an active job and, unless p_force, without a fresh narrative
-- (private.narrative_is_fresh, the rule reads use), and inserts their jobs (the insert trigger
-- dispatches up to the concurrency cap; completions keep the queue draining). Idempotent: a
-- second run finds every user active or fresh.
create function private.backfill(p_min_memories int, p_dry_run boolean, p_limit int, p_force boolean)
returns table (eligible int, enqueued int, skipped_fresh int, skipped_active int)
language sql security definer set search_path = '' as $$
  with candidates as materialized (
    select c.user_id,
      exists (select 1 from public.narrative_jobs j where j.user_id = c.user_id and j.status in ('queued', 'running')) as active,
      coalesce(n.user_id is not null and private.narrative_is_fresh(n, s), false) as fresh
    from private.settings s, (
      select m.user_id from public.memories m where m.state = 'active'
      group by m.user_id having count(*) >= (select private.eligibility_threshold(p_min_memories))
    ) c
    left join public.user_narratives n on n.user_id = c.user_id
  ),
  wanted as (
    select user_id from candidates where not active and (p_force or not fresh) order by user_id limit p_limit
  ),
  inserted as (
    insert into public.narrative_jobs (user_id, reason, max_attempts)
    select w.user_id, 'backfill', s.max_attempts from wanted w, private.settings s
    where not p_dry_run
    on conflict (user_id) where status in ('queued', 'running') do nothing
    returning 1
  )
  select
    (select count(*)::int from candidates),
    case when p_dry_run then (select count(*)::int from wanted) else (select count(*)::int from inserted) end,
    (select count(*)::int from candidates where not active and fresh and not p_force),
    (select count(*)::int from candidates where active)
$$;
comment on function private.backfill(int, boolean, int, boolean) is 'Admin backfill: jobs for eligible users without an active job or a fresh narrative; idempotent.';

-- Queue health for operators and GET /functions/v1/backfill.
create function private.queue_health() returns jsonb
language sql stable security definer set search_path = '' as $$
  select jsonb_build_object(
    'counts', (select coalesce(jsonb_object_agg(status, n), '{}'::jsonb)
               from (select status, count(*) as n from public.narrative_jobs group by status) c),
    'running', (select count(*) from public.narrative_jobs where status = 'running'),
    'oldest_queued_age_seconds', (select round(extract(epoch from now() - min(created_at)))
                                  from public.narrative_jobs where status = 'queued'),
    'due_queued', (select count(*) from public.narrative_jobs where status = 'queued' and run_after <= now()),
    'last_hour', (select jsonb_build_object(
                    'succeeded', count(*) filter (where status = 'succeeded'),
                    'failed', count(*) filter (where status = 'failed'),
                    'avg_duration_ms', round(avg(duration_ms) filter (where status = 'succeeded')))
                  from public.narrative_jobs
                  where status in ('succeeded', 'failed') and finished_at > now() - interval '1 hour'),
    'recent_failures', (select coalesce(jsonb_agg(f), '[]'::jsonb) from (
                          select id as job_id, user_id, reason, attempts, finished_at, last_error_code, last_error
                          from public.narrative_jobs where status = 'failed'
                          order by finished_at desc limit 20) f),
    -- Per lane: what waits and runs, the oldest wait, the reserved share; bulk says why it is
    -- paused and when it resumes (the next UTC midnight) while the daily budget or ceiling is spent.
    'lanes', (select jsonb_object_agg(l.lane, jsonb_build_object(
                'queued', coalesce(q.queued, 0), 'running', coalesce(q.running, 0),
                'oldest_queued_age_seconds', q.oldest,
                'min_share', case l.lane when 'bulk' then s.bulk_min_share else s.interactive_min_share end)
                || case when l.lane = 'bulk' and private.bulk_pause() is not null
                     then jsonb_build_object('paused', private.bulk_pause(),
                            'resumes_at', (date_trunc('day', now() at time zone 'UTC') + interval '1 day') at time zone 'UTC')
                     else jsonb_build_object('paused', null) end)
              from (values ('interactive'), ('bulk')) l(lane)
              cross join private.settings s
              left join (select private.job_lane(reason) as lane,
                                count(*) filter (where status = 'queued') as queued,
                                count(*) filter (where status = 'running') as running,
                                round(extract(epoch from now() - min(created_at) filter (where status = 'queued'))) as oldest
                         from public.narrative_jobs where status in ('queued', 'running')
                         group by 1) q on q.lane = l.lane),
    -- The spend ledger per window: paid calls, tokens and cost, split by kind; unpriced_models
    -- were counted at the highest listed price (no entry for the model or the requested one),
    -- versions_priced_as_requested answered under a version name without its own entry,
    -- estimated_calls timed out unanswered and count an estimate.
    'usage', (select jsonb_object_agg(w.name, (
                select jsonb_build_object(
                  'calls', count(*), 'provider_calls', coalesce(sum(provider_calls), 0),
                  'prompt_tokens', coalesce(sum(prompt_tokens), 0), 'output_tokens', coalesce(sum(output_tokens), 0),
                  'thoughts_tokens', coalesce(sum(thoughts_tokens), 0), 'cached_tokens', coalesce(sum(cached_tokens), 0),
                  'total_tokens', coalesce(sum(tokens), 0),
                  'estimated_cost_usd', coalesce(sum(cost_usd), 0),
                  'by_kind', jsonb_build_object(
                    'narrative', jsonb_build_object('calls', count(*) filter (where kind = 'narrative'),
                      'total_tokens', coalesce(sum(tokens) filter (where kind = 'narrative'), 0),
                      'estimated_cost_usd', coalesce(sum(cost_usd) filter (where kind = 'narrative'), 0)),
                    'mcp_answer', jsonb_build_object('calls', count(*) filter (where kind = 'mcp_answer'),
                      'total_tokens', coalesce(sum(tokens) filter (where kind = 'mcp_answer'), 0),
                      'estimated_cost_usd', coalesce(sum(cost_usd) filter (where kind = 'mcp_answer'), 0))),
                  'unpriced_calls', count(*) filter (where pricing = 'highest'),
                  'estimated_calls', count(*) filter (where usage_estimated),
                  'unpriced_models', coalesce(jsonb_agg(distinct coalesce(model, requested_model))
                                       filter (where pricing = 'highest'), '[]'::jsonb),
                  'versions_priced_as_requested', coalesce(jsonb_agg(distinct model)
                                       filter (where pricing = 'requested_model'), '[]'::jsonb))
                from private.spend_ledger
                where at > now() - w.span))
              from (values ('last_hour', interval '1 hour'), ('last_day', interval '1 day'), ('last_week', interval '7 days')) w(name, span)),
    -- Today's spend against the budget (bulk pause) and the ceiling (every paid call), what
    -- degrades while the ceiling is reached, and how many users are past their token budget.
    'budget', (select jsonb_build_object('daily_budget_usd', s.daily_budget_usd,
                 'daily_ceiling_usd', s.daily_ceiling_usd,
                 'spent_today_usd', private.spent_today(),
                 'ceiling_reached', coalesce(private.spent_today() >= s.daily_ceiling_usd, false),
                 'resets_at', (date_trunc('day', now() at time zone 'UTC') + interval '1 day') at time zone 'UTC',
                 'degraded', case when private.spent_today() >= s.daily_ceiling_usd then jsonb_build_object(
                   'reason', 'daily_ceiling_reached',
                   'narratives', 'written by the local writer (local-narrative-v1)',
                   'mcp_answers', 'extractive (quoted memories, no model call)',
                   'bulk', 'paused') end,
                 'tokens_per_user_per_day', s.tokens_per_user_per_day,
                 'users_over_token_budget', (select count(*) from (
                     select 1 from private.spend_ledger l where l.at > now() - interval '24 hours'
                     group by l.user_id having sum(l.tokens) >= s.tokens_per_user_per_day) o))
               from private.settings s),
    'settings', (select jsonb_build_object('max_concurrency', max_concurrency, 'max_attempts', max_attempts,
                   'ttl_days', ttl_days, 'min_memories', min_memories,
                   'bulk_min_share', bulk_min_share, 'interactive_min_share', interactive_min_share,
                   'daily_budget_usd', daily_budget_usd, 'daily_ceiling_usd', daily_ceiling_usd,
                   'tokens_per_user_per_day', tokens_per_user_per_day, 'content_retry_limit', content_retry_limit,
                   'model_prices', model_prices) from private.settings)
  )
$$;
comment on function private.queue_health() is 'Queue health for operators and GET backfill: counts, lanes, spend ledger usage and cost, budget and ceiling, oldest queued, recent failures.';

-- Grants: none. These functions run as postgres only (see 20261125000200).
revoke execute on all functions in schema private from public;
