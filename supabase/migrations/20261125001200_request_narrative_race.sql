-- A read that found no servable narrative may ask for one just after a job stored it (the read
-- and the request are separate statements). Decide in the same statement as the enqueue: when
-- what the caller is missing exists by now, answer 'ready' and queue nothing.
create or replace function public.request_narrative(p_reason text default 'cache_miss')
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
