-- What each job spent at the provider, on the job row: the model asked for and the model that
-- answered (Gemini's modelVersion), how many provider responses, and every token count the API
-- reports (prompt, output, thoughts, cached, total). Counts add up over the job's attempts, failed
-- ones included when they reached the provider, so the row tells what the job cost.
-- complete_job and fail_job take the new counts (trailing parameters with defaults, so existing
-- calls keep working); their signatures change, so they are dropped and created again.

alter table public.narrative_jobs
  add column requested_model text,
  add column provider_calls int not null default 0 check (provider_calls >= 0),
  add column thoughts_tokens int check (thoughts_tokens >= 0),
  add column cached_tokens int check (cached_tokens >= 0),
  add column total_tokens int check (total_tokens >= 0);
comment on column public.narrative_jobs.model is 'The model that answered (the provider''s modelVersion), last attempt that reached it.';
comment on column public.narrative_jobs.requested_model is 'The model the job asked for (GEMINI_MODEL_INTERACTIVE or GEMINI_MODEL_BULK by reason).';
comment on column public.narrative_jobs.provider_calls is 'Provider responses over all attempts (a cut answer retried with a bigger cap is two).';
comment on column public.narrative_jobs.thoughts_tokens is 'Thinking tokens over all attempts (they count against maxOutputTokens).';
comment on column public.narrative_jobs.cached_tokens is 'Prompt tokens served from the provider''s context cache, over all attempts.';

-- Users already see their own jobs (policy "Users read their own narrative jobs", table-level
-- select for authenticated in the jobs migration), so what a job spent is readable to them too:
-- it is harmless, and it is what they are billed against.

-- Adds a count to a running total; an unknown count (null) leaves the total as it is.
create function private.add_count(p_total int, p_add int) returns int
language sql immutable set search_path = '' as $$
  select case when p_add is null then p_total else coalesce(p_total, 0) + p_add end
$$;

drop function private.complete_job(bigint, uuid, text, text, int, int, timestamptz, int, int, int);
drop function private.fail_job(bigint, uuid, text, text, boolean, numeric, int);

-- Finish a claimed job successfully: store the narrative (version + 1) and mark the job
-- succeeded in one transaction. Only the holder of the current lease can complete; a narrative
-- is never replaced by one generated from older input. Memory changes that happened while
-- generating keep the new narrative invalidated and queue another job.
-- Token counts add to what earlier attempts of the job spent (the row tells what the job cost).
-- Outcomes: stored | stale_input | lease_lost.
create function private.complete_job(
  p_job_id bigint, p_lease_token uuid, p_content text, p_model text,
  p_memories_used int, p_memories_omitted int, p_as_of timestamptz,
  p_prompt_tokens int, p_output_tokens int, p_duration_ms int,
  p_thoughts_tokens int default null, p_cached_tokens int default null, p_total_tokens int default null,
  p_requested_model text default null, p_provider_calls int default 1
) returns table (outcome text, version int)
language plpgsql security definer set search_path = '' as $$
#variable_conflict use_column
declare
  s private.settings;
  v_user uuid;
  v_version int;
  v_dirty boolean;
  v_new_since int;
begin
  select * into s from private.settings;
  -- Storing and a reader's request_narrative are serialised per user (same lock, taken before
  -- the job row's), so a reader never misses a narrative stored between its read and its request.
  select user_id into v_user from public.narrative_jobs where id = p_job_id;
  perform pg_advisory_xact_lock(hashtextextended('narrative:' || v_user::text, 0));
  v_user := null;
  update public.narrative_jobs set
    status = 'succeeded', finished_at = now(), locked_until = null, lease_token = null,
    updated_at = now(), model = p_model, requested_model = coalesce(p_requested_model, p_model),
    provider_calls = narrative_jobs.provider_calls + coalesce(p_provider_calls, 0),
    prompt_tokens = private.add_count(narrative_jobs.prompt_tokens, p_prompt_tokens),
    output_tokens = private.add_count(narrative_jobs.output_tokens, p_output_tokens),
    thoughts_tokens = private.add_count(narrative_jobs.thoughts_tokens, p_thoughts_tokens),
    cached_tokens = private.add_count(narrative_jobs.cached_tokens, p_cached_tokens),
    total_tokens = private.add_count(narrative_jobs.total_tokens, p_total_tokens),
    duration_ms = p_duration_ms,
    memories_used = p_memories_used, memories_omitted = p_memories_omitted
  where id = p_job_id and lease_token = p_lease_token and status = 'running'
  returning user_id, memories_changed into v_user, v_dirty;
  if v_user is null then
    return query select 'lease_lost', null::int;
    return;
  end if;

  select count(*) into v_new_since from public.memories
    where user_id = v_user and state = 'active' and created_at > p_as_of;

  insert into public.user_narratives as n (
    user_id, narrative_content, version, generated_at, updated_at, model, source_memory_count,
    source_memories_omitted, memories_as_of, new_memories_since, invalidated_at, invalidated_reason, job_id)
  values (
    v_user, p_content, 1, now(), now(), p_model, p_memories_used, p_memories_omitted, p_as_of,
    v_new_since,
    case when v_dirty then now() end,
    case when v_dirty then 'memories_changed' end,
    p_job_id)
  on conflict (user_id) do update set
    narrative_content = excluded.narrative_content,
    version = n.version + 1,
    generated_at = excluded.generated_at,
    updated_at = excluded.updated_at,
    model = excluded.model,
    source_memory_count = excluded.source_memory_count,
    source_memories_omitted = excluded.source_memories_omitted,
    memories_as_of = excluded.memories_as_of,
    new_memories_since = excluded.new_memories_since,
    invalidated_at = excluded.invalidated_at,
    invalidated_reason = excluded.invalidated_reason,
    job_id = excluded.job_id
  where n.memories_as_of <= excluded.memories_as_of
  returning n.version into v_version;

  if v_version is null then
    update public.narrative_jobs set last_error = 'stale_input: a narrative from newer memories is already stored',
      last_error_code = 'stale_input'
    where id = p_job_id;
    perform private.dispatch_pending();
    return query select 'stale_input', null::int;
    return;
  end if;

  update public.narrative_jobs set narrative_version = v_version where id = p_job_id;

  if v_dirty and private.is_eligible(v_user) then
    perform private.enqueue_job(v_user, 'memories_changed', s.change_debounce_seconds);
  elsif v_new_since >= s.stale_after_new_memories then
    perform private.enqueue_job(v_user, 'stale', s.stale_debounce_seconds);
  end if;
  perform private.dispatch_pending();
  return query select 'stored', v_version;
end
$$;

-- Finish a claimed attempt that failed. Retryable failures go back to the queue with backoff
-- until max_attempts; permanent ones fail at once. The error is kept on the row either way, and
-- so is what the attempt spent when it reached the provider (a blocked prompt, a cut answer).
-- Outcomes: retry_scheduled | failed | lease_lost.
create function private.fail_job(
  p_job_id bigint, p_lease_token uuid, p_code text, p_message text, p_retryable boolean,
  p_retry_after_seconds numeric default null, p_duration_ms int default null,
  p_model text default null, p_requested_model text default null, p_provider_calls int default 0,
  p_prompt_tokens int default null, p_output_tokens int default null, p_thoughts_tokens int default null,
  p_cached_tokens int default null, p_total_tokens int default null
) returns table (outcome text, status text, run_after timestamptz)
language plpgsql security definer set search_path = '' as $$
#variable_conflict use_column
declare
  j public.narrative_jobs;
begin
  -- Serialised with readers' request_narrative like complete_job, so a failure is seen (and its
  -- cooldown honoured) by a request that races it.
  perform pg_advisory_xact_lock(hashtextextended('narrative:' || (select user_id from public.narrative_jobs where id = p_job_id)::text, 0));
  update public.narrative_jobs set
    status = case when p_retryable and attempts < max_attempts then 'queued' else 'failed' end,
    run_after = case when p_retryable and attempts < max_attempts
      then now() + private.backoff(attempts, p_retry_after_seconds) else narrative_jobs.run_after end,
    finished_at = case when p_retryable and attempts < max_attempts then null else now() end,
    locked_until = null,
    lease_token = null,
    last_error_code = p_code,
    last_error = left(p_code || ': ' || p_message
      || case when p_retryable and attempts >= max_attempts then format(' (gave up after %s attempts)', attempts) else '' end, 2000),
    duration_ms = p_duration_ms,
    model = coalesce(p_model, narrative_jobs.model),
    requested_model = coalesce(p_requested_model, narrative_jobs.requested_model),
    provider_calls = narrative_jobs.provider_calls + coalesce(p_provider_calls, 0),
    prompt_tokens = private.add_count(narrative_jobs.prompt_tokens, p_prompt_tokens),
    output_tokens = private.add_count(narrative_jobs.output_tokens, p_output_tokens),
    thoughts_tokens = private.add_count(narrative_jobs.thoughts_tokens, p_thoughts_tokens),
    cached_tokens = private.add_count(narrative_jobs.cached_tokens, p_cached_tokens),
    total_tokens = private.add_count(narrative_jobs.total_tokens, p_total_tokens),
    updated_at = now()
  where id = p_job_id and lease_token = p_lease_token and narrative_jobs.status = 'running'
  returning * into j;
  if j.id is null then
    return query select 'lease_lost', null::text, null::timestamptz;
    return;
  end if;
  perform private.dispatch_pending();
  return query select case when j.status = 'queued' then 'retry_scheduled' else 'failed' end, j.status, j.run_after;
end
$$;

-- Internals: the owner (postgres, the functions' connection) only; nothing for the API roles.
revoke execute on all functions in schema private from public;
