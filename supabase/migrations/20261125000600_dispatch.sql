-- Dispatch: hand due queued jobs to the generate-narrative function through pg_net. pg_net
-- sends only after the enqueuing transaction commits, so a rolled-back enqueue sends nothing.
-- The URL and the service secret come from Vault (project_url, narrative_service_secret).
--
-- One mechanism serves every caller (new jobs, finished jobs freeing a slot, the sweeper): send
-- as many of the oldest due jobs as there are free slots under settings.max_concurrency,
-- counting running jobs and requests already in flight. A job counts as in flight for
-- redispatch_after_seconds after its request was sent; past that the request is presumed lost
-- and the job is sent again. Duplicate deliveries are harmless: claims are compare-and-set.
create function private.dispatch_pending() returns int
language plpgsql security definer set search_path = '' as $$
declare
  s private.settings;
  v_slots int;
  v_url text;
  v_secret text;
  v_job record;
  v_sent int := 0;
begin
  select * into s from private.settings;
  select s.max_concurrency
         - (select count(*) from public.narrative_jobs where status = 'running')
         - (select count(*) from public.narrative_jobs where status = 'queued'
              and dispatched_at > now() - make_interval(secs => s.redispatch_after_seconds))
    into v_slots;
  if v_slots <= 0 then
    return 0;
  end if;

  select decrypted_secret into v_url from vault.decrypted_secrets where name = 'project_url';
  select decrypted_secret into v_secret from vault.decrypted_secrets where name = 'narrative_service_secret';

  for v_job in
    select id from public.narrative_jobs
    where status = 'queued' and run_after <= now()
      and (dispatched_at is null or dispatched_at <= now() - make_interval(secs => s.redispatch_after_seconds))
    order by run_after, id
    limit v_slots
    for update skip locked
  loop
    if v_url is null or v_secret is null then
      -- Visible on the row, not swallowed: the sweeper tries again once Vault is set up.
      update public.narrative_jobs set
        last_error_code = 'dispatch_not_configured',
        last_error = 'dispatch_not_configured: Vault secrets project_url and narrative_service_secret are required',
        updated_at = now()
      where id = v_job.id;
      continue;
    end if;
    update public.narrative_jobs set
      dispatched_at = now(),
      dispatch_count = dispatch_count + 1,
      last_request_id = net.http_post(
        url := rtrim(v_url, '/') || '/functions/v1/generate-narrative',
        body := jsonb_build_object('job_id', v_job.id),
        headers := jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer ' || v_secret),
        timeout_milliseconds := s.dispatch_timeout_ms
      ),
      updated_at = now()
    where id = v_job.id;
    v_sent := v_sent + 1;
  end loop;
  return v_sent;
end
$$;
comment on function private.dispatch_pending() is 'Sends due queued jobs to generate-narrative via pg_net, as many as there are free slots.';

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
