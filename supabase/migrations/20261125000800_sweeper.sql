-- The sweeper repairs what crashes leave behind and keeps the queue moving; pg_cron runs it
-- every minute and tests call it directly. Idempotent; returns what it did. Its steps, in this
-- order, each a function below:
--  1. private.expire_leases: running past locked_until (the function died or hung) goes back to
--     queued with backoff, or to failed when attempts are used up. The attempt was already counted.
--  2. private.settle_failed_dispatches: dispatches whose pg_net request failed (transport error
--     or 5xx recorded in net._http_response) are marked not-in-flight at once, with the error on
--     the row; one that generate-narrative rejected (4xx other than 409/429) counts as a failed
--     attempt.
--  3. Prune, each bounded per sweep and skipping rows a live transaction holds: finished jobs
--     past retention, old pg_net responses, old cron.job_run_details rows of the narrative-* cron
--     jobs (other jobs' history is left to their owners), memory tombstones past
--     tombstone_retention_days, old spend ledger rows and idle rows of the limits.
--  4. Dispatch due jobs into free slots (this also re-sends requests presumed lost), last.
-- One transaction: every step runs in the sweep's, in this order, so the lock order is the one
-- described at each step (job rows skip-locked, then memory and count rows skip-locked, the
-- dispatch lock last).

-- Sweep step 1: expired leases back to queued (with backoff) or to failed (attempts used up).
-- Skips job rows a live transaction holds (a completion or failure in progress).
create function private.expire_leases() returns table (requeued int, failed int)
language sql volatile security definer set search_path = '' as $$
  with expired as (
    select id from public.narrative_jobs
    where status = 'running' and locked_until < now()
    for update skip locked
  ), moved as (
    update public.narrative_jobs j set
      status = case when j.attempts >= j.max_attempts then 'failed' else 'queued' end,
      run_after = case when j.attempts >= j.max_attempts then j.run_after else now() + private.backoff(j.attempts) end,
      finished_at = case when j.attempts >= j.max_attempts then now() end,
      locked_until = null,
      lease_token = null,
      dispatched_at = null,
      last_error_code = 'lease_expired',
      last_error = 'lease_expired: generate-narrative did not finish attempt ' || j.attempts
        || ' within its lease (the function crashed, was killed or hung)'
        || case when j.attempts >= j.max_attempts then format(' (gave up after %s attempts)', j.attempts) else '' end,
      updated_at = now()
    from expired e where j.id = e.id
    returning j.status
  )
  select (count(*) filter (where m.status = 'queued'))::int, (count(*) filter (where m.status = 'failed'))::int from moved m
$$;
comment on function private.expire_leases() is 'Sweep step: running jobs past their lease back to queued (backoff) or failed (attempts used up).';

-- Sweep step 2: queued jobs whose last pg_net request failed. A 409 (duplicate or late delivery)
-- and a 429 (running cap reached) are answers the queue expects. Any other 4xx means
-- generate-narrative refused the request itself (wrong service secret, function not deployed,
-- contract mismatch): retrying the same request cannot help for long, so it counts as a failed
-- attempt and ends in failed, with the status on the row. A transport error or a 5xx only
-- marks the job not in flight, so the dispatch at the end of the sweep sends it again.
create function private.settle_failed_dispatches() returns int
language sql volatile security definer set search_path = '' as $$
  with answered as (
    select j.id, r.status_code, r.error_msg, left(r.content, 200) as content,
           (r.error_msg is null and r.status_code between 400 and 499 and r.status_code not in (409, 429)) as rejected
    from public.narrative_jobs j
    join net._http_response r on r.id = j.last_request_id
    where j.status = 'queued' and j.dispatched_at is not null
      and (r.error_msg is not null or r.status_code >= 500
           or (r.status_code between 400 and 499 and r.status_code not in (409, 429)))
    for update of j skip locked
  ), settled as (
    update public.narrative_jobs j set
      dispatched_at = null,
      attempts = j.attempts + a.rejected::int,
      status = case when a.rejected and j.attempts + 1 >= j.max_attempts then 'failed' else 'queued' end,
      run_after = case when a.rejected then now() + private.backoff(j.attempts + 1) else j.run_after end,
      finished_at = case when a.rejected and j.attempts + 1 >= j.max_attempts then now() end,
      last_error_code = case when a.rejected then 'dispatch_rejected' else 'dispatch_failed' end,
      last_error = case
        when a.rejected then format('dispatch_rejected: generate-narrative answered HTTP %s%s%s', a.status_code,
          coalesce(': ' || a.content, ''),
          case when j.attempts + 1 >= j.max_attempts then format(' (gave up after %s attempts)', j.attempts + 1) else '' end)
        else 'dispatch_failed: ' || coalesce(a.error_msg, 'generate-narrative answered HTTP ' || a.status_code)
      end,
      updated_at = now()
    from answered a where j.id = a.id
    returning j.id
  )
  select count(*)::int from settled
$$;
comment on function private.settle_failed_dispatches() is 'Sweep step: failed pg_net dispatches back to not-in-flight; a 4xx rejection counts as a failed attempt.';

-- Sweep step 3a: finished jobs past p_retention_days (settings.job_retention_days), oldest
-- first, at most 10,000 a sweep (a backfill's jobs ageing out together go over a few sweeps),
-- skipping rows a live transaction holds.
create function private.prune_finished_jobs(p_retention_days int) returns int
language sql volatile security definer set search_path = '' as $$
  with pruned as (
    delete from public.narrative_jobs
    where id in (select id from public.narrative_jobs
                 where status in ('succeeded', 'failed')
                   and finished_at < now() - make_interval(days => p_retention_days)
                 order by finished_at limit 10000
                 for update skip locked)
    returning 1
  )
  select count(*)::int from pruned
$$;
comment on function private.prune_finished_jobs(int) is 'Sweep step: deletes finished jobs older than the retention (bounded, skip locked).';

-- Sweep step 3b: pg_net responses older than p_minutes (settings.http_response_retention_minutes):
-- pg_net keeps every response, and settle_failed_dispatches only needs recent ones.
create function private.prune_http_responses(p_minutes int) returns int
language sql volatile security definer set search_path = '' as $$
  with pruned as (
    delete from net._http_response
    where created < now() - make_interval(mins => p_minutes)
    returning 1
  )
  select count(*)::int from pruned
$$;
comment on function private.prune_http_responses(int) is 'Sweep step: deletes pg_net responses older than http_response_retention_minutes.';

-- Sweep step 3c: run history of our narrative-* cron jobs older than p_days
-- (settings.cron_history_retention_days), at most 10,000 rows a sweep: pg_cron never prunes it.
create function private.prune_cron_runs(p_days int) returns int
language sql volatile security definer set search_path = '' as $$
  with pruned as (
    delete from cron.job_run_details d
    where d.runid in (select r.runid from cron.job_run_details r
                      where r.jobid in (select c.jobid from cron.job c where c.jobname like 'narrative-%')
                        and r.end_time < now() - make_interval(days => p_days)
                      limit 10000)
    returning 1
  )
  select count(*)::int from pruned
$$;
comment on function private.prune_cron_runs(int) is 'Sweep step: deletes old cron.job_run_details rows of the narrative-* jobs (bounded).';

-- Sweep step 3d: tombstones (soft-deleted memories: empty rows) past p_days
-- (settings.tombstone_retention_days). A hard delete of a tombstone strips no claim (none cites
-- it) and gives its count back (the delete trigger updates the user's private.memory_counts
-- row). Those rows are locked here first, skipping users whose row another transaction holds (a
-- user deleting memories right now): the sweep never waits on a user while holding the job rows
-- it requeued in step 1. Skipped users' turn comes in a later sweep.
create function private.purge_tombstones(p_days int) returns int
language sql volatile security definer set search_path = '' as $$
  with batch as (
    select m.id, m.user_id from public.memories m
    where m.state = 'deleted' and m.deleted_at < now() - make_interval(days => p_days)
    order by m.deleted_at limit 10000
    for update skip locked
  ), counted as (
    select c.user_id from private.memory_counts c
    where c.user_id in (select b.user_id from batch b)
    for update skip locked
  ), purged as (
    delete from public.memories m
    where m.id in (select b.id from batch b
                   where b.user_id in (select c.user_id from counted c)
                      or not exists (select 1 from private.memory_counts c where c.user_id = b.user_id))
    returning 1
  )
  select count(*)::int from purged
$$;
comment on function private.purge_tombstones(int) is 'Sweep step: hard-deletes tombstones past tombstone_retention_days, skipping users whose count row is held.';

-- Sweep step 3e: spend ledger rows older than p_days (settings.spend_ledger_retention_days), at
-- most 10,000 a sweep; the day totals in private.daily_spend stay.
create function private.prune_spend_ledger(p_days int) returns int
language sql volatile security definer set search_path = '' as $$
  with pruned as (
    delete from private.spend_ledger
    where id in (select id from private.spend_ledger
                 where at < now() - make_interval(days => p_days)
                 order by at limit 10000)
    returning 1
  )
  select count(*)::int from pruned
$$;
comment on function private.prune_spend_ledger(int) is 'Sweep step: deletes spend ledger rows past spend_ledger_retention_days (bounded).';

-- Sweep step 3f: idle per-user rows of the limits (20261125000750): an expired MCP call slot, a
-- request bucket refilled over an hour ago (a missing bucket starts full, so deleting it changes
-- nothing). Skips rows a live transaction holds (a request spending its bucket, a call taking a slot).
create function private.prune_limit_rows() returns void
language sql volatile security definer set search_path = '' as $$
  delete from private.llm_slots
  where ctid in (select ctid from private.llm_slots where expires_at < now() for update skip locked);
  delete from private.request_buckets
  where ctid in (select ctid from private.request_buckets
                 where refilled_at < now() - interval '1 hour' for update skip locked);
$$;
comment on function private.prune_limit_rows() is 'Sweep step: deletes expired MCP call slots and request buckets idle for an hour.';

create function private.sweep() returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  s private.settings;
  v_expired record;
  v_dispatch_failed int;
  v_pruned_jobs int;
  v_pruned_responses int;
  v_pruned_cron_runs int;
  v_purged_tombstones int;
  v_pruned_spend int;
  v_dispatched int;
begin
  select * into s from private.settings;
  select * into v_expired from private.expire_leases();
  v_dispatch_failed := private.settle_failed_dispatches();
  -- Pruning comes before dispatch: dispatch_pending takes the global dispatch lock and holds it
  -- to commit, and every enqueue, completion and failure waits for that lock.
  v_pruned_jobs := private.prune_finished_jobs(s.job_retention_days);
  v_pruned_responses := private.prune_http_responses(s.http_response_retention_minutes);
  v_pruned_cron_runs := private.prune_cron_runs(s.cron_history_retention_days);
  v_purged_tombstones := private.purge_tombstones(s.tombstone_retention_days);
  v_pruned_spend := private.prune_spend_ledger(s.spend_ledger_retention_days);
  perform private.prune_limit_rows();
  v_dispatched := private.dispatch_pending();
  return jsonb_build_object(
    'requeued_expired', v_expired.requeued, 'failed_expired', v_expired.failed,
    'dispatch_failed', v_dispatch_failed, 'dispatched', v_dispatched,
    'pruned_jobs', v_pruned_jobs, 'pruned_responses', v_pruned_responses,
    'pruned_cron_runs', v_pruned_cron_runs, 'purged_tombstones', v_purged_tombstones, 'pruned_spend_rows', v_pruned_spend);
end
$$;
comment on function private.sweep() is 'Every minute (pg_cron): expire leases, settle failed dispatches, prune, dispatch.';

-- Weekly refresh: queue `weekly` jobs for eligible users whose narrative is not fresh
-- (private.narrative_is_fresh: older than ttl_days, too many new memories, or partial),
-- oldest first, at most weekly_batch_size per run, with run_after spread over
-- weekly_spread_seconds. Run every 10 minutes that is up to 144,000 a day with the defaults
-- (raise weekly_batch_size with max_concurrency for more users): expiries are spread over the
-- week the narratives were generated in, never a herd in one minute.
create function private.enqueue_weekly_refresh() returns int
language plpgsql security definer set search_path = '' as $$
declare
  s private.settings;
  v_count int;
begin
  select * into s from private.settings;
  with picked as (
    select n.user_id
    from public.user_narratives n
    where not private.narrative_is_fresh(n, s)
      and not exists (
        select 1 from public.narrative_jobs j
        where j.user_id = n.user_id and j.status in ('queued', 'running'))
      -- A user whose last job failed keeps the old narrative until its TTL comes round again,
      -- except when that job ran out of attempts against an outage (the provider unavailable,
      -- rate limiting, timeouts, the network: nothing about this user's input): then the next
      -- run picks them again once failure_cooldown_seconds have passed, not a week later. A
      -- failure of the input or the output (invalid, blocked, truncated, a crashing attempt)
      -- would only fail again, at a price.
      and not exists (
        select 1 from (
          select j.status, j.attempts, j.max_attempts, j.finished_at, j.last_error_code from public.narrative_jobs j
          where j.user_id = n.user_id order by j.created_at desc limit 1) last
        where last.status = 'failed'
          and last.finished_at > now() - case
            when last.attempts >= last.max_attempts
             and last.last_error_code in ('provider_unavailable', 'rate_limited', 'timeout', 'network')
            then make_interval(secs => s.failure_cooldown_seconds)
            else make_interval(days => s.ttl_days) end)
      and private.is_eligible(n.user_id)
    order by n.generated_at
    limit s.weekly_batch_size
  ), inserted as (
    -- Spread over weekly_spread_seconds, and never before the user's daily generation budget
    -- allows (it covers every reason).
    insert into public.narrative_jobs (user_id, reason, run_after, max_attempts)
    select user_id, 'weekly',
      greatest(now() + random() * make_interval(secs => s.weekly_spread_seconds), private.budget_run_after(user_id)),
      s.max_attempts
    from picked
    on conflict (user_id) where status in ('queued', 'running') do nothing
    returning 1
  )
  select count(*) into v_count from inserted;
  return v_count;
end
$$;
comment on function private.enqueue_weekly_refresh() is 'Every 10 minutes (pg_cron): weekly jobs for eligible users whose narrative is not fresh.';

-- Grants: none. These functions run as postgres only (see 20261125000200).
revoke execute on all functions in schema private from public;
