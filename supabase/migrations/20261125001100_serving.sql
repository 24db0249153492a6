-- Serving: what the narrative, orchestrate, MCP and backfill functions call. Policy (eligibility,
-- cooldowns, idempotency) is in SQL so every caller gets the same answer.

-- Per-user full-text search over memories without scanning other users' rows.
create extension if not exists btree_gin with schema extensions;
create index memories_user_fts_idx on public.memories using gin (user_id, fts) where state = 'active';

-- Ask for a narrative for the signed-in user (auth.uid()). Reasons: cache_miss and stale (from
-- reads), manual (the Regenerate button). Outcomes:
--   queued | active (a job already exists; returned) | ready (what the caller missed exists by
--   now: a job stored it between the caller's read and this call; nothing queued) |
--   ineligible | cooldown (manual asked too soon; retry_after_seconds) |
--   failed (the last job failed recently; retry_after_seconds)
create function public.request_narrative(p_reason text default 'cache_miss')
returns table (outcome text, job_id bigint, status text, retry_after_seconds int)
language plpgsql security definer set search_path = '' as $$
#variable_conflict use_column
declare
  s private.settings;
  v_user uuid := auth.uid();
  v_last public.narrative_jobs;
  v_job record;
begin
  if v_user is null then
    raise exception 'request_narrative needs a signed-in user' using errcode = '42501';
  end if;
  if p_reason not in ('cache_miss', 'stale', 'manual') then
    raise exception 'reason must be cache_miss, stale or manual' using errcode = '22023';
  end if;
  -- Waits for a complete_job of this user in progress, so the checks below see its narrative.
  perform pg_advisory_xact_lock(hashtextextended('narrative:' || v_user::text, 0));
  select * into s from private.settings;
  if not private.is_eligible(v_user) then
    return query select 'ineligible', null::bigint, null::text, null::int;
    return;
  end if;

  if p_reason = 'manual' then
    select * into v_last from public.narrative_jobs
    where user_id = v_user and reason = 'manual' order by created_at desc limit 1;
    if v_last.id is not null and v_last.created_at > now() - make_interval(secs => s.manual_cooldown_seconds) then
      return query select 'cooldown', v_last.id, v_last.status,
        ceil(extract(epoch from v_last.created_at + make_interval(secs => s.manual_cooldown_seconds) - now()))::int;
      return;
    end if;
  else
    if exists (
      select 1 from public.user_narratives n
      where n.user_id = v_user and n.invalidated_at is null
        and (p_reason = 'cache_miss'
             or (n.generated_at > now() - make_interval(days => s.ttl_days)
                 and n.new_memories_since < s.stale_after_new_memories))
    ) then
      return query select 'ready', null::bigint, null::text, null::int;
      return;
    end if;
    select * into v_last from public.narrative_jobs
    where user_id = v_user order by created_at desc limit 1;
    if v_last.status = 'failed' and v_last.finished_at > now() - make_interval(secs => s.failure_cooldown_seconds) then
      return query select 'failed', v_last.id, v_last.status,
        ceil(extract(epoch from v_last.finished_at + make_interval(secs => s.failure_cooldown_seconds) - now()))::int;
      return;
    end if;
  end if;

  select * into v_job from private.enqueue_job(v_user, p_reason);
  return query select case when v_job.created then 'queued' else 'active' end, v_job.job_id, v_job.status, null::int;
end
$$;

-- Grants: the one function users call (GET/POST narrative, orchestrate, MCP, as the user; it
-- needs auth.uid(), so a service_role caller could only be refused). Nobody else.
revoke execute on function public.request_narrative(text) from public;
grant execute on function public.request_narrative(text) to authenticated;

-- Serving thresholds (non-secret) for the functions: when a narrative counts as stale.
create function private.serving_settings()
returns table (ttl_days int, stale_after_new_memories int, min_memories int, fallback_timeout_ms int)
language sql stable security definer set search_path = '' as $$
  select ttl_days, stale_after_new_memories, min_memories, fallback_timeout_ms from private.settings
$$;

-- Admin backfill, set-based: one statement picks eligible users (>= p_min_memories active
-- memories) without an active job and, unless p_force, without a fresh valid narrative, and
-- inserts their jobs (the insert trigger dispatches up to the concurrency cap; completions
-- keep the queue draining). Idempotent: a second run finds every user active or fresh.
create function private.backfill(p_min_memories int, p_dry_run boolean, p_limit int, p_force boolean)
returns table (eligible int, enqueued int, skipped_fresh int, skipped_active int)
language sql security definer set search_path = '' as $$
  with s as (select * from private.settings),
  candidates as materialized (
    select c.user_id,
      exists (select 1 from public.narrative_jobs j where j.user_id = c.user_id and j.status in ('queued', 'running')) as active,
      coalesce(n.invalidated_at is null and n.generated_at > now() - make_interval(days => s.ttl_days), false) as fresh
    from s, (
      select m.user_id from public.memories m where m.state = 'active'
      -- Never below the eligibility threshold: such jobs could only fail (not_eligible).
      group by m.user_id having count(*) >= greatest(p_min_memories, (select min_memories from private.settings))
    ) c
    left join public.user_narratives n on n.user_id = c.user_id
  ),
  wanted as (
    select user_id from candidates where not active and (p_force or not fresh) order by user_id limit p_limit
  ),
  inserted as (
    insert into public.narrative_jobs (user_id, reason, max_attempts)
    select w.user_id, 'backfill', s.max_attempts from wanted w, s
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
    'settings', (select jsonb_build_object('max_concurrency', max_concurrency, 'max_attempts', max_attempts,
                   'ttl_days', ttl_days, 'min_memories', min_memories) from private.settings)
  )
$$;

-- Grants: none. These functions run as postgres only (see 20261125000200).
revoke execute on all functions in schema private from public;
