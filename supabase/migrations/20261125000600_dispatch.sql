-- Dispatch: hand due queued jobs to the generate-narrative function through pg_net. pg_net
-- sends only after the enqueuing transaction commits, so a rolled-back enqueue sends nothing.
-- The URL and the service secret come from Vault (project_url, narrative_service_secret).
--
-- One mechanism serves every caller (new jobs, finished jobs freeing a slot, the sweeper): send
-- as many of the oldest due jobs as there are free slots under settings.max_concurrency,
-- counting running jobs and requests already in flight. A job counts as in flight for
-- redispatch_after_seconds after its request was sent; past that the request is presumed lost
-- and the job is sent again. Duplicate deliveries are harmless: claims are compare-and-set.
-- Which lane a reason dispatches in: the one definition (mirrored by laneOf in
-- shared/narrative.ts, checked by tests/sql-contract.test.ts). A new reason must join here;
-- anything not listed as interactive is bulk, so an unknown reason never jumps the queue.
create function private.job_lane(p_reason text) returns text
language sql immutable parallel safe set search_path = '' as $$
  select case when p_reason in ('manual', 'cache_miss', 'memories_changed', 'notes_changed')
              then 'interactive' else 'bulk' end
$$;
comment on function private.job_lane(text) is 'Dispatch lane of a job reason: interactive (someone waits) or bulk.';

-- Dispatch reads each lane's due jobs oldest first: with a lane index a new user's miss behind
-- 100,000 queued backfill jobs is found at once instead of after scanning them all (under the
-- dispatch lock, on every completion).
create index narrative_jobs_queued_lane_idx on public.narrative_jobs (private.job_lane(reason), run_after, id)
  where status = 'queued';

-- The split of max_concurrency between the lanes (see private.dispatch_pending).
alter table private.settings
  add column bulk_min_share numeric not null default 0.25 check (bulk_min_share between 0 and 1),
  add column interactive_min_share numeric not null default 0.25 check (interactive_min_share between 0 and 1),
  add constraint settings_lane_shares_check check (bulk_min_share + interactive_min_share <= 1);
comment on column private.settings.bulk_min_share is 'Share of max_concurrency kept for bulk jobs (stale, weekly, backfill) while they are due.';
comment on column private.settings.interactive_min_share is 'Share of max_concurrency never given to bulk jobs, free for interactive ones.';

-- Send one job (already row-locked by the caller) to generate-narrative and mark it in flight.
create function private.send_job(p_job_id bigint, p_url text, p_secret text, p_timeout_ms int) returns boolean
language plpgsql security definer set search_path = '' as $$
begin
  if p_url is null or p_secret is null then
    -- Visible on the row, not swallowed: the sweeper tries again once Vault is set up.
    update public.narrative_jobs set
      last_error_code = 'dispatch_not_configured',
      last_error = 'dispatch_not_configured: Vault secrets project_url and narrative_service_secret are required',
      updated_at = now()
    where id = p_job_id;
    return false;
  end if;
  update public.narrative_jobs set
    dispatched_at = now(),
    dispatch_count = dispatch_count + 1,
    last_request_id = net.http_post(
      url := rtrim(p_url, '/') || '/functions/v1/generate-narrative',
      body := jsonb_build_object('job_id', p_job_id),
      headers := jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer ' || p_secret),
      timeout_milliseconds := p_timeout_ms
    ),
    updated_at = now()
  where id = p_job_id;
  return true;
end
$$;
comment on function private.send_job(bigint, text, text, int) is 'One pg_net request for one job; marks it in flight.';

create function private.dispatch_pending() returns int
language plpgsql security definer set search_path = '' as $$
declare
  s private.settings;
  v_busy_i int;
  v_busy_b int;
  v_free int;
  v_bulk_reserved int;
  v_bulk_cap int;
  v_take_i int;
  v_url text;
  v_secret text;
  v_job record;
  v_sent_i int := 0;
  v_sent_b int := 0;
begin
  -- Exact under READ COMMITTED: each transaction counts free slots from its own snapshot, so
  -- without this lock concurrent enqueues all saw the same free slots and sent too many (20
  -- misses with a cap of 4 sent 20 requests, 16 answered concurrency_limited). The xact lock
  -- is held until this transaction commits, i.e. until its requests and dispatched_at marks
  -- are visible to the next holder, whose count (a new statement, a new snapshot) sees them.
  -- Lock order: callers take private.lock_user first, this lock last; nothing after it waits
  -- on a user lock (rows below are taken with skip locked).
  perform pg_advisory_xact_lock(hashtext('private.dispatch_pending'));
  select * into s from private.settings;
  select count(*) filter (where private.job_lane(reason) = 'interactive'),
         count(*) filter (where private.job_lane(reason) = 'bulk')
    into v_busy_i, v_busy_b
  from public.narrative_jobs
  where status = 'running'
     or (status = 'queued' and dispatched_at > now() - make_interval(secs => s.redispatch_after_seconds));
  v_free := s.max_concurrency - v_busy_i - v_busy_b;
  if v_free <= 0 then
    return 0;
  end if;
  -- Shares of max_concurrency: bulk_min_share is kept for bulk while it has due jobs (an
  -- interactive flood cannot starve it); interactive_min_share is never given to bulk (a new
  -- user's miss does not wait behind a backfill for a slot to finish).
  v_bulk_reserved := ceil(s.max_concurrency * s.bulk_min_share)::int;
  v_bulk_cap := s.max_concurrency - ceil(s.max_concurrency * s.interactive_min_share)::int;
  -- A spent daily budget stops the bulk lane only: its jobs stay queued and its share goes to
  -- interactive jobs until the next UTC day.
  if private.bulk_pause() is not null then
    v_bulk_reserved := 0;
    v_bulk_cap := 0;
  end if;
  v_take_i := v_free;
  if v_bulk_cap > 0 and exists (select 1 from public.narrative_jobs
             where status = 'queued' and run_after <= now() and private.job_lane(reason) = 'bulk') then
    v_take_i := v_free - greatest(v_bulk_reserved - v_busy_b, 0);
  end if;

  select decrypted_secret into v_url from vault.decrypted_secrets where name = 'project_url';
  select decrypted_secret into v_secret from vault.decrypted_secrets where name = 'narrative_service_secret';

  for v_job in
    select id from public.narrative_jobs
     where status = 'queued' and run_after <= now() and private.job_lane(reason) = 'interactive'
       and (dispatched_at is null or dispatched_at <= now() - make_interval(secs => s.redispatch_after_seconds))
     order by run_after, id
     limit greatest(v_take_i, 0)
     for update skip locked
  loop
    if private.send_job(v_job.id, v_url, v_secret, s.dispatch_timeout_ms) then
      v_sent_i := v_sent_i + 1;
    end if;
  end loop;

  for v_job in
    select id from public.narrative_jobs
    where status = 'queued' and run_after <= now() and private.job_lane(reason) = 'bulk'
      and (dispatched_at is null or dispatched_at <= now() - make_interval(secs => s.redispatch_after_seconds))
    order by run_after, id
    limit greatest(least(v_free - v_sent_i, v_bulk_cap - v_busy_b), 0)
    for update skip locked
  loop
    if private.send_job(v_job.id, v_url, v_secret, s.dispatch_timeout_ms) then
      v_sent_b := v_sent_b + 1;
    end if;
  end loop;
  return v_sent_i + v_sent_b;
end
$$;
comment on function private.dispatch_pending() is 'Sends due queued jobs to generate-narrative via pg_net under a lock: interactive lane first, lane shares kept, never more than the free slots.';

-- New jobs are dispatched by the statement that inserts them (one call per statement, so a
-- set-based backfill of 100,000 rows sends at most max_concurrency requests). An idempotent
-- enqueue that inserted nothing (ON CONFLICT DO NOTHING) dispatches nothing.
create function private.dispatch_inserted_jobs() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform private.dispatch_pending() where exists (select 1 from new_jobs);
  return null;
end
$$;
comment on function private.dispatch_inserted_jobs() is 'Insert trigger on narrative_jobs: one dispatch per inserting statement.';

create trigger dispatch_inserted_jobs after insert on public.narrative_jobs
  referencing new table as new_jobs
  for each statement execute function private.dispatch_inserted_jobs();

-- Grants: none. These functions run as postgres only (see 20261125000200).
revoke execute on all functions in schema private from public;
