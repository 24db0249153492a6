-- The end of an attempt (20261125000650 claims it): complete_job stores the narrative and
-- succeeds the job, fail_job retries it with backoff or fails it. Both run under the user's lock,
-- add what the attempt spent (private.add_usage, 20261125000550) whether or not the lease still
-- held, and end by dispatching (a slot may be free). Each is split into named steps, each
-- defined before the function that calls it.

-- Finish a claimed job successfully: store the narrative (version + 1) and mark the job
-- succeeded in one transaction. Only the holder of the current lease can complete; a narrative
-- is never replaced by one generated from older input. Memory and note changes since the claim
-- (the job's changed_ids) remove the claims citing them before anything is stored (the stored
-- row is partial) and queue another job. The orderings of a change against this attempt:
--  * committed before the claim: in what the attempt read (claim_job clears the ids);
--  * between the claim and the read: recorded, so its claims are dropped even when the read saw
--    the new text (conservative: a partial narrative, regenerated);
--  * after the read, before this completion: recorded under the job row's lock, and the update
--    of private.succeed_attempt waits for that lock, so it returns every committed change (a
--    rolled-back one is gone with its ids);
--  * after this completion: the change trigger strips the stored narrative and its history
--    itself (it waited for this transaction on the job row, so it sees what was stored).
-- Lock order: private.lock_user, then the job row (note triggers take them in that order too;
-- memory triggers take only the job row, then the narrative's rows), then the narrative's row
-- (private.store_narrative), and the dispatch lock last.
-- Token counts add to what earlier attempts of the job spent (the row tells what the job cost);
-- the attempt's call is in the spend ledger even when its lease was lost.
-- Outcomes: stored | stale_input | lease_lost.
-- Its steps, defined next: succeed_attempt, claims_to_store, store_narrative, record_not_stored.

-- Step of complete_job: the compare-and-set that ends the attempt. Only the holder of the
-- current lease on a running job succeeds it; the user and the ids changed since the claim come
-- back, no row when the lease was lost. It takes the job row's lock, so it waits for a change
-- trigger holding that row and returns its ids once it commits.
create function private.succeed_attempt(
  p_job_id bigint, p_lease_token uuid, p_duration_ms int, p_memories_used int, p_memories_omitted int
) returns table (user_id uuid, changed_ids uuid[])
language sql volatile security definer set search_path = '' as $$
  update public.narrative_jobs j set
    status = 'succeeded', finished_at = now(), locked_until = null, lease_token = null,
    updated_at = now(), duration_ms = p_duration_ms,
    memories_used = p_memories_used, memories_omitted = p_memories_omitted
  where j.id = p_job_id and j.lease_token = p_lease_token and j.status = 'running'
  returning j.user_id, j.changed_ids
$$;
comment on function private.succeed_attempt(bigint, uuid, int, int, int) is 'complete_job step: the lease holder''s compare-and-set to succeeded; returns the user and the ids changed since the claim.';

-- Step of complete_job when memories or notes changed while generating: the claims that may be
-- stored. A claim citing a changed id is dropped whatever the memory's updated_at says (that is
-- the editing transaction's start, which can be before the read although the edit came after
-- it), and so is one citing a memory that is no longer an active memory of the user (the
-- claims contract). Order is kept.
create function private.claims_to_store(p_user_id uuid, p_claims jsonb, p_changed uuid[]) returns jsonb
language sql stable security definer set search_path = '' as $$
  select coalesce(jsonb_agg(c.claim order by c.ord), '[]'::jsonb)
  from jsonb_array_elements(private.claims_without(p_claims, p_changed)) with ordinality c(claim, ord)
  where not exists (
    select 1 from jsonb_array_elements_text(c.claim -> 'memory_ids') x(mid)
    where not exists (select 1 from public.memories m
                      where m.id = x.mid::uuid and m.user_id = p_user_id and m.state = 'active'))
$$;
comment on function private.claims_to_store(uuid, jsonb, uuid[]) is 'complete_job step: claims minus those citing a changed id or a memory that is not an active memory of the user.';

-- Step of complete_job: upserts the user's narrative as the next version, unless the stored one
-- was generated from newer input (then nothing is written and null comes back), and records the
-- version on the job. p_removed > 0: claims were dropped, so the content is rendered again from
-- the rest (private.render_claims) and the row is partial.
create function private.store_narrative(
  p_job_id bigint, p_user_id uuid, p_content text, p_claims jsonb, p_removed int, p_model text,
  p_memories_used int, p_memories_omitted int, p_as_of timestamptz, p_new_since int
) returns int
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_version int;
begin
  insert into public.user_narratives as n (
    user_id, narrative_content, claims, cited_memory_ids, partial, removed_claims, version, generated_at, updated_at,
    model, source_memory_count, source_memories_omitted, memories_as_of, new_memories_since, job_id)
  values (
    p_user_id, case when p_removed > 0 then private.render_claims(p_claims) else p_content end, p_claims,
    private.cited_ids(p_claims), p_removed > 0, p_removed, 1, now(), now(),
    p_model, p_memories_used, p_memories_omitted, p_as_of, p_new_since, p_job_id)
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
    claims = excluded.claims,
    cited_memory_ids = excluded.cited_memory_ids,
    partial = excluded.partial,
    removed_claims = excluded.removed_claims,
    job_id = excluded.job_id
  where n.memories_as_of <= excluded.memories_as_of
  returning n.version into v_version;
  if v_version is not null then
    update public.narrative_jobs set narrative_version = v_version where id = p_job_id;
  end if;
  return v_version;
end
$$;
comment on function private.store_narrative(bigint, uuid, text, jsonb, int, text, int, int, timestamptz, int) is 'complete_job step: upserts the narrative as version + 1 unless newer input is stored (null); records the version on the job.';

-- Step of complete_job: a succeeded attempt that stores nothing says why on its row (the code,
-- stale_input or not_eligible, and a message), so the row alone tells what happened.
create function private.record_not_stored(p_job_id bigint, p_code text, p_message text) returns void
language sql volatile security definer set search_path = '' as $$
  update public.narrative_jobs set last_error = p_code || ': ' || p_message, last_error_code = p_code
  where id = p_job_id
$$;
comment on function private.record_not_stored(bigint, text, text) is 'complete_job step: records why a succeeded attempt stored nothing (last_error_code and last_error).';

create function private.complete_job(
  p_job_id bigint, p_lease_token uuid, p_content text, p_model text,
  p_memories_used int, p_memories_omitted int, p_as_of timestamptz,
  p_prompt_tokens int, p_output_tokens int, p_duration_ms int,
  p_thoughts_tokens int default null, p_cached_tokens int default null, p_total_tokens int default null,
  p_requested_model text default null, p_provider_calls int default 1, p_claims jsonb default '[]'
) returns table (outcome private.complete_outcome, version int)
language plpgsql security definer set search_path = '' as $$
#variable_conflict use_column
declare
  s private.settings;
  v_user uuid;
  v_version int;
  v_dirty boolean;
  v_changed uuid[];
  v_new_since int;
  v_claims jsonb := p_claims;
begin
  select * into s from private.settings;
  -- Serialised with readers' narrative_for_me (the user's lock, taken before the job row's).
  perform private.lock_user(j.user_id) from public.narrative_jobs j where j.id = p_job_id;
  select a.user_id, a.changed_ids into v_user, v_changed
  from private.succeed_attempt(p_job_id, p_lease_token, p_duration_ms, p_memories_used, p_memories_omitted) a;
  -- Paid for whether or not the lease still holds.
  perform private.add_usage(p_job_id, p_model, coalesce(p_requested_model, p_model), p_provider_calls,
    p_prompt_tokens, p_output_tokens, p_thoughts_tokens, p_cached_tokens, p_total_tokens);
  if v_user is null then
    return query select 'lease_lost'::private.complete_outcome, null::int;
    return;
  end if;
  v_dirty := cardinality(v_changed) > 0;

  select count(*) into v_new_since from public.memories m
    where m.user_id = v_user and m.state = 'active' and m.created_at > p_as_of;

  if v_dirty and not private.is_eligible(v_user) then
    -- Memories deleted while generating left the user ineligible: a narrative is not kept for them.
    delete from public.user_narratives n where n.user_id = v_user;
    perform private.record_not_stored(p_job_id, 'not_eligible', 'memories were deleted while generating; nothing stored');
  elsif cardinality(v_changed) > s.max_tracked_changes then
    -- More changed while generating than the job could list: what is left of the answer cannot
    -- be told apart, so nothing is stored (the stripped narrative stays) and another job runs.
    perform private.record_not_stored(p_job_id, 'stale_input',
      format('more than %s memories or notes changed while generating; nothing stored', s.max_tracked_changes));
    perform private.enqueue_if_eligible(v_user, 'memories_changed', s.change_debounce_seconds);
  else
    if v_dirty then
      v_claims := private.claims_to_store(v_user, p_claims, v_changed);
    end if;
    v_version := private.store_narrative(p_job_id, v_user, p_content, v_claims,
      jsonb_array_length(p_claims) - jsonb_array_length(v_claims), p_model, p_memories_used, p_memories_omitted, p_as_of, v_new_since);
    if v_version is null then
      perform private.record_not_stored(p_job_id, 'stale_input', 'a narrative from newer memories is already stored');
    elsif v_dirty then
      perform private.enqueue_if_eligible(v_user, 'memories_changed', s.change_debounce_seconds);
    elsif v_new_since >= s.stale_after_new_memories then
      perform private.enqueue_if_eligible(v_user, 'stale', s.stale_debounce_seconds);
    end if;
  end if;
  perform private.dispatch_pending();
  return query select (case when v_version is null then 'stale_input' else 'stored' end)::private.complete_outcome, v_version;
end
$$;
comment on function private.complete_job(bigint, uuid, text, text, int, int, timestamptz, int, int, int, int, int, int, text, int, jsonb) is 'Lease holder stores the narrative (version + 1) and succeeds the job in one transaction.';

-- Which failures are about the answer, not the provider: it arrived but was unusable. They are
-- retried at most settings.content_retry_limit times (narrative_jobs.content_failures).
create function private.is_content_failure(p_code text) returns boolean
language sql immutable set search_path = '' as $$
  select p_code in ('invalid_output', 'incomplete_output')
$$;
comment on function private.is_content_failure(text) is 'fail_job step: whether an error code is a content failure (invalid_output, incomplete_output).';

-- Step of fail_job: whether a failed attempt of job p_job goes back to the queue. A retryable
-- error is retried until max_attempts, a content failure also only until content_retry_limit.
create function private.may_retry(p_job public.narrative_jobs, p_code text, p_retryable boolean, p_content_retry_limit int)
returns boolean
language sql immutable set search_path = '' as $$
  select p_retryable and p_job.attempts < p_job.max_attempts
    and (not private.is_content_failure(p_code) or p_job.content_failures < p_content_retry_limit)
$$;
comment on function private.may_retry(public.narrative_jobs, text, boolean, int) is 'fail_job step: whether a failed attempt is retried (retryable, attempts left, content failures under content_retry_limit).';

-- Step of fail_job: the row's last_error for a failed attempt, at most 2,000 characters: the code,
-- the message, and when a retryable error ends the job, why it was given up.
create function private.failure_text(
  p_job public.narrative_jobs, p_code text, p_message text, p_retryable boolean, p_retry boolean, p_content_retry_limit int
) returns text
language sql stable set search_path = '' as $$
  select left(p_code || ': ' || p_message
    || case when p_retry or not p_retryable then ''
            when p_job.attempts >= p_job.max_attempts then format(' (gave up after %s attempts)', p_job.attempts)
            else format(' (gave up after %s unusable answers: content_retry_limit is %s)', p_job.content_failures + 1, p_content_retry_limit) end, 2000)
$$;
comment on function private.failure_text(public.narrative_jobs, text, text, boolean, boolean, int) is 'fail_job step: last_error of a failed attempt, saying why a retryable error was given up.';

-- Finish a claimed attempt that failed. Retryable failures go back to the queue with backoff
-- until max_attempts; permanent ones fail at once. A content failure (the answer arrived but
-- was unusable: invalid_output, incomplete_output) is retried at most content_retry_limit times,
-- counted apart from the attempts an outage may take: a note such as "never mention anything"
-- makes every answer invalid, and twelve paid attempts would not change that. The error is kept
-- on the row either way, and so is what the attempt spent when it reached the provider (a
-- blocked prompt, a cut answer), also when the lease was lost. worker_shutdown (the platform
-- stopping the worker: its wall clock, CPU or memory limit) is due at once: nothing is wrong with
-- the provider or the input, so no backoff, and the dispatch below sends it to another worker
-- instead of leaving it to the lease's expiry.
-- Outcomes: retry_scheduled | failed | lease_lost. Its steps: is_content_failure, may_retry,
-- failure_text (above).
create function private.fail_job(
  p_job_id bigint, p_lease_token uuid, p_code text, p_message text, p_retryable boolean,
  p_retry_after_seconds numeric default null, p_duration_ms int default null,
  p_model text default null, p_requested_model text default null, p_provider_calls int default 0,
  p_prompt_tokens int default null, p_output_tokens int default null, p_thoughts_tokens int default null,
  p_cached_tokens int default null, p_total_tokens int default null
) returns table (outcome private.fail_outcome, status text, run_after timestamptz)
language plpgsql security definer set search_path = '' as $$
#variable_conflict use_column
declare
  j public.narrative_jobs;
  v_content boolean := private.is_content_failure(p_code);
  v_limit int := (select s.content_retry_limit from private.settings s);
  v_retry boolean;
begin
  -- Serialised with readers' narrative_for_me like complete_job, so a failure is seen (and its
  -- cooldown honoured) by a request that races it.
  perform private.lock_user(user_id) from public.narrative_jobs where id = p_job_id;
  -- Paid for whether or not the lease still holds.
  perform private.add_usage(p_job_id, p_model, p_requested_model, p_provider_calls,
    p_prompt_tokens, p_output_tokens, p_thoughts_tokens, p_cached_tokens, p_total_tokens);
  select * into j from public.narrative_jobs
  where id = p_job_id and lease_token = p_lease_token and narrative_jobs.status = 'running'
  for update;
  if j.id is null then
    return query select 'lease_lost'::private.fail_outcome, null::text, null::timestamptz;
    return;
  end if;
  v_retry := private.may_retry(j, p_code, p_retryable, v_limit);
  update public.narrative_jobs set
    status = case when v_retry then 'queued' else 'failed' end,
    run_after = case when not v_retry then narrative_jobs.run_after when p_code = 'worker_shutdown' then now()
      else now() + private.backoff(j.attempts, p_retry_after_seconds) end,
    finished_at = case when v_retry then null else now() end,
    content_failures = j.content_failures + v_content::int,
    locked_until = null,
    lease_token = null,
    last_error_code = p_code,
    last_error = private.failure_text(j, p_code, p_message, p_retryable, v_retry, v_limit),
    duration_ms = p_duration_ms,
    updated_at = now()
  where id = p_job_id
  returning * into j;
  perform private.dispatch_pending();
  return query select (case when j.status = 'queued' then 'retry_scheduled' else 'failed' end)::private.fail_outcome, j.status, j.run_after;
end
$$;
comment on function private.fail_job(bigint, uuid, text, text, boolean, numeric, int, text, text, int, int, int, int, int, int) is 'Lease holder records a failed attempt: retry with backoff (content failures at most content_retry_limit times), or failed; keeps the error and what it spent.';

-- Grants: none. These functions run as postgres only (see 20261125000200).
revoke execute on all functions in schema private from public;
