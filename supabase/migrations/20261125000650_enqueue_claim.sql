-- The operations that move a job (20261125000500) through its lifecycle:
--   enqueue --> queued --claim--> running --complete--> succeeded
--   running --fail, retryable--> queued (run_after = now() + backoff)
--   running --fail, permanent or attempts = max_attempts--> failed
-- Enqueue and claim are here, complete and fail in 20261125000660. Each calls dispatch
-- (20261125000600) when it may have made a job due or freed a slot.

-- Enqueue a job for a user, idempotently and safely under concurrent callers: the partial
-- unique index decides, and a caller that loses the race gets the active job. An earlier
-- run_after pulls a debounced queued job forward (not one waiting out a retry's backoff). Either
-- way run_after is never before the user's daily generation budget allows
-- (private.budget_run_after, 20261125000500_jobs), so
-- neither a new job nor a pull-forward can start more than generations_per_day in 24 hours.
-- A change-triggered job (memories_changed, notes_changed, stale) after a failed one also waits
-- out failure_cooldown_seconds from that failure: edits to a note that makes every answer
-- invalid must not buy a paid generation every few seconds.
create function private.enqueue_job(p_user_id uuid, p_reason text, p_delay_seconds int default 0)
returns table (job_id bigint, status text, created boolean)
language plpgsql security definer set search_path = '' as $$
#variable_conflict use_column
declare
  v_id bigint;
  v_status text;
  v_run_after timestamptz := greatest(now() + make_interval(secs => greatest(p_delay_seconds, 0)),
    private.budget_run_after(p_user_id),
    case when p_reason in ('memories_changed', 'notes_changed', 'stale') then private.failure_cooldown_until(p_user_id) end);
begin
  loop
    insert into public.narrative_jobs (user_id, reason, run_after, max_attempts)
    values (p_user_id, p_reason, v_run_after, (select s.max_attempts from private.settings s))
    on conflict (user_id) where status in ('queued', 'running') do nothing
    returning id, narrative_jobs.status into v_id, v_status;
    if v_id is not null then
      return query select v_id, v_status, true;
      return;
    end if;

    select j.id, j.status into v_id, v_status
    from public.narrative_jobs j
    where j.user_id = p_user_id and j.status in ('queued', 'running');
    if v_id is not null then
      if v_status = 'queued' then
        -- Only a job never tried: a retry's backoff is the provider's breathing room, and reads
        -- and edits during an outage must not spend its attempts in minutes.
        update public.narrative_jobs j set run_after = v_run_after, updated_at = now()
        where j.id = v_id and j.status = 'queued' and j.attempts = 0 and j.run_after > v_run_after;
        if found and v_run_after <= now() then
          perform private.dispatch_pending();
        end if;
      end if;
      return query select v_id, v_status, false;
      return;
    end if;
    -- The active job finished between the two statements: try the insert again.
  end loop;
end
$$;

comment on function private.enqueue_job(uuid, text, int) is 'Idempotent enqueue: creates the user''s active job or returns it (an earlier run_after pulls it forward).';

-- "If the user is eligible, enqueue (debounced by p_delay_seconds)": what memory changes,
-- completions and reads do; no row when the user is not eligible.
create function private.enqueue_if_eligible(p_user_id uuid, p_reason text, p_delay_seconds int default 0)
returns table (job_id bigint, status text, created boolean)
language plpgsql security definer set search_path = '' as $$
begin
  if private.is_eligible(p_user_id) then
    return query select * from private.enqueue_job(p_user_id, p_reason, p_delay_seconds);
  end if;
end
$$;
comment on function private.enqueue_if_eligible(uuid, text, int) is 'Enqueue (debounced) only for an eligible user; no row otherwise.';

-- What the queue operations answer, as enums: SQL cannot return a value outside them, and
-- tests/sql-contract.test.ts proves each equals its list in shared/narrative.ts.
create type private.claim_outcome as enum ('claimed', 'not_found', 'not_claimable', 'concurrency_limited');
create type private.complete_outcome as enum ('stored', 'stale_input', 'lease_lost');
create type private.fail_outcome as enum ('retry_scheduled', 'failed', 'lease_lost');

-- Claim a job for one attempt: compare-and-set from queued (and due) to running with a lease,
-- counting the attempt now. Claims are serialised so the global running cap holds exactly.
-- Outcomes: claimed | not_found | not_claimable | concurrency_limited.
create function private.claim_job(p_job_id bigint)
returns table (outcome private.claim_outcome, user_id uuid, attempts int, max_attempts int, lease_token uuid, reason text, locked_until timestamptz)
language plpgsql security definer set search_path = '' as $$
#variable_conflict use_column
declare
  s private.settings;
  j public.narrative_jobs;
  v_running int;
begin
  select * into s from private.settings;
  -- One global lock (not the per-user one): the cap counts every user's running jobs.
  perform pg_advisory_xact_lock(hashtext('private.claim_job'));
  select * into j from public.narrative_jobs where id = p_job_id for update;
  if not found then
    return query select 'not_found'::private.claim_outcome, null::uuid, null::int, null::int, null::uuid, null::text, null::timestamptz;
    return;
  end if;
  if j.status <> 'queued' or j.run_after > now() then
    return query select 'not_claimable'::private.claim_outcome, j.user_id, j.attempts, j.max_attempts, null::uuid, j.reason, j.locked_until;
    return;
  end if;
  select count(*) into v_running from public.narrative_jobs where status = 'running';
  if v_running >= s.max_concurrency then
    -- Not in flight any more: the next finishing job (or the sweeper) dispatches it again.
    update public.narrative_jobs set dispatched_at = null, updated_at = now() where id = p_job_id;
    return query select 'concurrency_limited'::private.claim_outcome, j.user_id, j.attempts, j.max_attempts, null::uuid, j.reason, null::timestamptz;
    return;
  end if;
  update public.narrative_jobs set
    status = 'running',
    attempts = narrative_jobs.attempts + 1,
    started_at = now(),
    finished_at = null,
    locked_until = now() + make_interval(secs => s.lease_seconds),
    lease_token = gen_random_uuid(),
    dispatched_at = null,
    -- Changes before this claim are in what this attempt reads: a change trigger that touched
    -- the row holds its lock until commit, so the select for update above waited for it.
    changed_ids = '{}',
    updated_at = now()
  where id = p_job_id
  returning * into j;
  return query select 'claimed'::private.claim_outcome, j.user_id, j.attempts, j.max_attempts, j.lease_token, j.reason, j.locked_until;
end
$$;
comment on function private.claim_job(bigint) is 'Compare-and-set claim of a queued, due job under the global running cap; counts the attempt.';

-- Grants: none. These functions run as postgres only (see 20261125000200).
revoke execute on all functions in schema private from public;
