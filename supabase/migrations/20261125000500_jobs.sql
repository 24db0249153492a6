-- Every narrative generation is a durable job row with a visible status, attempt count,
-- timings and last error. Lifecycle (README "Job lifecycle"):
--   queued --claim--> running --ok--> succeeded
--   running --retryable--> queued (run_after = now() + backoff)
--   running --permanent or attempts = max_attempts--> failed
create table public.narrative_jobs (
  id bigint generated always as identity primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  reason text not null check (reason in ('cache_miss', 'stale', 'manual', 'weekly', 'backfill', 'memories_changed', 'notes_changed')),
  status text not null default 'queued' check (status in ('queued', 'running', 'succeeded', 'failed')),
  attempts int not null default 0 check (attempts >= 0),
  max_attempts int not null default 5 check (max_attempts >= 1),
  run_after timestamptz not null default now(),
  locked_until timestamptz,
  lease_token uuid,
  started_at timestamptz,
  finished_at timestamptz,
  last_error text,
  -- The codes are a contract with generate-narrative (shared/narrative.ts JOB_ERROR_CODES,
  -- checked by tests/sql-contract.test.ts): SQL writes the first five, the function the rest.
  -- (worker_shutdown: the platform was stopping the worker mid-generation, see fail_job).
  last_error_code text check (last_error_code in (
    'lease_expired', 'dispatch_rejected', 'dispatch_failed', 'dispatch_not_configured', 'stale_input',
    'not_eligible', 'prompt_blocked', 'output_blocked', 'output_truncated', 'incomplete_output', 'invalid_output',
    'invalid_response', 'network', 'provider_rejected', 'provider_unavailable', 'rate_limited', 'timeout',
    'unexpected', 'internal_error', 'worker_shutdown')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- Dispatch bookkeeping: when pg_net was last asked to deliver this job, how often, which request.
  dispatched_at timestamptz,
  dispatch_count int not null default 0,
  last_request_id bigint,
  -- What the job did and spent at the provider. Token counts add up over the job's attempts,
  -- failed ones included when they reached the provider, so the row tells what the job cost.
  model text,
  requested_model text,
  provider_calls int not null default 0 check (provider_calls >= 0),
  prompt_tokens int,
  output_tokens int,
  thoughts_tokens int check (thoughts_tokens >= 0),
  cached_tokens int check (cached_tokens >= 0),
  total_tokens int check (total_tokens >= 0),
  duration_ms int,
  memories_used int,
  memories_omitted int,
  narrative_version int,
  -- Which of the user's memories and notes changed while the job was active: appended (under
  -- this row's lock, deduplicated) by the change triggers (private.record_changes), cleared at
  -- claim. A completion drops every claim citing one of them (identity, not clocks: an edit whose
  -- transaction began before the generation read still lands here), stores the rest as partial
  -- and queues another job. Empty: nothing changed. More than settings.max_tracked_changes ids:
  -- the list was cut, so too much changed to tell, and the completion stores nothing.
  changed_ids uuid[] not null default '{}',
  -- Attempts whose answer was unusable (invalid_output, incomplete_output): bounded by
  -- settings.content_retry_limit, apart from max_attempts (see fail_job).
  content_failures int not null default 0 check (content_failures >= 0),
  constraint running_has_lease check (status <> 'running' or (locked_until is not null and lease_token is not null)),
  constraint finished_has_time check (status not in ('succeeded', 'failed') or finished_at is not null)
);
comment on table public.narrative_jobs is 'Durable narrative generation jobs; the row alone tells what happened.';
comment on column public.narrative_jobs.model is 'The model that answered (the provider''s modelVersion), last attempt that reached it.';
comment on column public.narrative_jobs.requested_model is 'The model the job asked for (GEMINI_MODEL_INTERACTIVE or GEMINI_MODEL_BULK by reason).';
comment on column public.narrative_jobs.provider_calls is 'Provider responses over all attempts (a cut answer retried with a bigger cap is two).';
comment on column public.narrative_jobs.thoughts_tokens is 'Thinking tokens over all attempts (they count against maxOutputTokens).';
comment on column public.narrative_jobs.cached_tokens is 'Prompt tokens served from the provider''s context cache, over all attempts.';

-- At most one active job per user: enqueueing is idempotent and returns the active job.
create unique index narrative_jobs_one_active_per_user on public.narrative_jobs (user_id)
  where status in ('queued', 'running');
-- Policy filter and "latest jobs of a user".
create index narrative_jobs_user_created_idx on public.narrative_jobs (user_id, created_at desc);
-- Dispatch picks due queued jobs in order; in-flight accounting looks at recent dispatches.
create index narrative_jobs_queued_due_idx on public.narrative_jobs (run_after, id) where status = 'queued';
create index narrative_jobs_queued_dispatched_idx on public.narrative_jobs (dispatched_at) where status = 'queued';
-- Concurrency cap and lease expiry look at running jobs only.
create index narrative_jobs_running_idx on public.narrative_jobs (locked_until) where status = 'running';
-- Pruning and throughput figures look at finished jobs by time.
create index narrative_jobs_finished_idx on public.narrative_jobs (finished_at) where status in ('succeeded', 'failed');

alter table public.narrative_jobs enable row level security;

-- Users can see the state of their own jobs (the dashboard shows "being written"); no writes.
create policy "Users read their own narrative jobs" on public.narrative_jobs
  for select to authenticated using ((select auth.uid()) = user_id);

-- Grants: users may read their own jobs (DESIGN §3; a client following its regeneration
-- through the Data API); jobs are created and moved only by the private functions, as postgres.
-- anon, service_role: nothing. (No sequence grant: the identity is drawn by the owner's inserts.)
-- What a job spent is readable to its user too: harmless, and what they are billed against.
grant select on public.narrative_jobs to authenticated;

-- The eligibility threshold: settings.min_memories, or a caller's higher one (admin backfill).
-- Never below the setting: a job for fewer memories could only fail (not_eligible).
create function private.eligibility_threshold(p_min_memories int default null) returns int
language sql stable security definer set search_path = '' as $$
  select greatest(coalesce(p_min_memories, 0), s.min_memories) from private.settings s
$$;
comment on function private.eligibility_threshold(int) is 'Active memories a user needs for a narrative: settings.min_memories, or a higher caller value.';

-- A user's active memories, counted up to p_cap: enough to decide eligibility and to tell a
-- user how many more they need, cheap for users with thousands of memories.
create function private.active_memory_count(p_user_id uuid, p_cap int) returns int
language sql stable security definer set search_path = '' as $$
  select count(*)::int from (
    select 1 from public.memories where user_id = p_user_id and state = 'active' limit p_cap
  ) m
$$;
comment on function private.active_memory_count(uuid, int) is 'Active memories of a user, counted up to a cap (eligibility and "N more needed").';

-- Eligible for a narrative: at least the threshold of active memories. The one definition,
-- used by reads (narrative_for_me), memory-change triggers, completions, weekly and backfill.
create function private.is_eligible(p_user_id uuid, p_min_memories int default null) returns boolean
language sql stable security definer set search_path = '' as $$
  select private.active_memory_count(p_user_id, t.n) >= t.n
  from (select private.eligibility_threshold(p_min_memories) as n) t
$$;
comment on function private.is_eligible(uuid, int) is 'Whether a user has enough active memories for a narrative (the only eligibility rule).';

-- Serialises everything that decides or changes what a user is served: a reader's
-- narrative_for_me with complete_job and fail_job, so a reader never misses a narrative (or a
-- failure) stored between its read and its decision. Transaction-scoped.
create function private.lock_user(p_user_id uuid) returns void
language sql volatile security definer set search_path = '' as $$
  select pg_advisory_xact_lock(hashtextextended('narrative:' || p_user_id::text, 0))
$$;
comment on function private.lock_user(uuid) is 'Per-user transaction advisory lock shared by serving decisions and job completion.';

-- Adds a count to a running total; an unknown count (null) leaves the total as it is.
create function private.add_count(p_total int, p_add int) returns int
language sql immutable set search_path = '' as $$
  select case when p_add is null then p_total else coalesce(p_total, 0) + p_add end
$$;
comment on function private.add_count(int, int) is 'Running token total over a job''s attempts; null adds nothing.';

-- Adds what one attempt spent at the provider to its job row (complete_job and fail_job, whether
-- or not the attempt still holds its lease: the call was paid either way): the models, responses
-- and token counts add up over attempts, and the attempt's paid call goes into the spend ledger
-- (private.record_spend, 20261125000650_costs), whose cost adds to estimated_cost_usd. A job
-- already gone (pruned, its user deleted) has nothing to add to and nobody to charge.
create function private.add_usage(
  p_job_id bigint, p_model text, p_requested_model text, p_provider_calls int,
  p_prompt_tokens int, p_output_tokens int, p_thoughts_tokens int, p_cached_tokens int, p_total_tokens int
) returns void
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_user uuid;
  v_cost numeric;
begin
  select j.user_id into v_user from public.narrative_jobs j where j.id = p_job_id;
  if v_user is null then
    return;
  end if;
  select r.cost_usd into v_cost from private.record_spend('narrative', v_user, p_job_id, p_requested_model, p_model,
    p_provider_calls, p_prompt_tokens, p_output_tokens, p_thoughts_tokens, p_cached_tokens, p_total_tokens) r;
  update public.narrative_jobs j set
    model = coalesce(p_model, j.model),
    requested_model = coalesce(p_requested_model, j.requested_model),
    provider_calls = j.provider_calls + coalesce(p_provider_calls, 0),
    prompt_tokens = private.add_count(j.prompt_tokens, p_prompt_tokens),
    output_tokens = private.add_count(j.output_tokens, p_output_tokens),
    thoughts_tokens = private.add_count(j.thoughts_tokens, p_thoughts_tokens),
    cached_tokens = private.add_count(j.cached_tokens, p_cached_tokens),
    total_tokens = private.add_count(j.total_tokens, p_total_tokens),
    estimated_cost_usd = j.estimated_cost_usd + coalesce(v_cost, 0)
  where j.id = p_job_id;
end
$$;
comment on function private.add_usage(bigint, text, text, int, int, int, int, int, int) is 'Adds one attempt''s models, provider calls and tokens to its job, and its paid call to the spend ledger.';

-- When a change-triggered job may start after the user's last finished job failed: its finish
-- plus failure_cooldown_seconds, or null when it did not fail (or the cooldown is over). The last
-- *finished* job: a queued job waiting out the cooldown must not lift it for the next edit.
create function private.failure_cooldown_until(p_user_id uuid) returns timestamptz
language sql stable security definer set search_path = '' as $$
  select l.finished_at + make_interval(secs => s.failure_cooldown_seconds)
  from private.settings s, lateral (
    select j.status, j.finished_at from public.narrative_jobs j
    where j.user_id = p_user_id and j.status in ('succeeded', 'failed') order by j.finished_at desc limit 1
  ) l
  where l.status = 'failed' and l.finished_at + make_interval(secs => s.failure_cooldown_seconds) > now()
$$;
comment on function private.failure_cooldown_until(uuid) is 'End of the failure cooldown after the user''s last job failed, or null (change-triggered enqueues wait for it).';

-- Enqueue a job for a user, idempotently and safely under concurrent callers: the partial
-- unique index decides, and a caller that loses the race gets the active job. An earlier
-- run_after pulls a debounced queued job forward (not one waiting out a retry's backoff). Either
-- way run_after is never before the user's daily generation budget allows
-- (private.budget_run_after, 20261125001300_limits), so
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

-- The prompt's candidates: the user's active memories ranked by private.memory_rank (importance,
-- or 0.5 when unknown, plus a recency bonus halving in about three weeks), best first (`rank` 1),
-- each capped at memory_char_cap. prompt_char_budget is a bound on the text actually sent, which
-- only the sanitised lines can tell (sanitising turns "<" into "&lt;": 60,000 budgeted characters
-- of "<" once made a 240,918-character prompt), so the caller takes them in rank order while the
-- lines fit (fitMemories, _shared/narrative/prompt.ts); this returns every candidate that could
-- fit, a superset of what can be taken: no line is shorter than its 16-character head
-- ("1. [YYYY-MM-DD] "), so at most budget / 16 of them (a floor per memory from its text would
-- read fewer rows, but costs a pass over every candidate's text: 20 ms became 85 ms for a user
-- with 20,000 memories). Bounded whatever the user holds: the ranking runs over candidates
-- only, the prompt_candidates newest and the
-- prompt_candidates most important (two index range scans, never a sort of every memory). A
-- memory outside both lists is older than the newest N and less important than the top N, so
-- it could only outrank them when many newer ones are trivial and many important ones very old.
-- `total` tells how many active memories exist, so the caller knows how many were left out;
-- `as_of` is when they were read.
create function private.memories_for_prompt(p_user_id uuid)
returns table (id uuid, content text, created_at timestamptz, importance real, rank int, total int, as_of timestamptz)
language sql stable security definer set search_path = '' as $$
  with s as (select prompt_char_budget, memory_char_cap, prompt_candidates from private.settings),
  candidates as (
    (select m.id from public.memories m
      where m.user_id = p_user_id and m.state = 'active'
      order by m.created_at desc
      limit (select prompt_candidates from s))
    union
    (select m.id from public.memories m
      where m.user_id = p_user_id and m.state = 'active'
      order by coalesce(m.importance, 0.5) desc, m.created_at desc
      limit (select prompt_candidates from s))
  ),
  ranked as (
    select m.id, left(m.content, s.memory_char_cap) as content, m.created_at, m.importance,
      row_number() over (order by private.memory_rank(m.importance, m.created_at) desc, m.created_at desc, m.id) as rank,
      s.prompt_char_budget as budget
    from candidates c
    join public.memories m on m.id = c.id
    cross join s
  )
  select r.id, r.content, r.created_at, r.importance, r.rank::int,
    (select count(*) from public.memories m where m.user_id = p_user_id and m.state = 'active')::int, now()
  from ranked r
  where r.rank * 16 <= r.budget
  order by r.rank
$$;
comment on function private.memories_for_prompt(uuid) is 'The candidates a generation may read, best-ranked first; the caller takes them while their sanitised lines fit the character budget.';

-- Finish a claimed job successfully: store the narrative (version + 1) and mark the job
-- succeeded in one transaction. Only the holder of the current lease can complete; a narrative
-- is never replaced by one generated from older input. Memory and note changes since the claim
-- (the job's changed_ids) remove the claims citing them before anything is stored (the stored
-- row is partial) and queue another job. The orderings of a change against this attempt:
--  * committed before the claim: in what the attempt read (claim_job clears the ids);
--  * between the claim and the read: recorded, so its claims are dropped even when the read saw
--    the new text (conservative: a partial narrative, regenerated);
--  * after the read, before this completion: recorded under the job row's lock, and the update
--    below waits for that lock, so it returns every committed change (a rolled-back one is gone
--    with its ids);
--  * after this completion: the change trigger strips the stored narrative and its history
--    itself (it waited for this transaction on the job row, so it sees what was stored).
-- Lock order: private.lock_user, then the job row (note triggers take them in that order too;
-- memory triggers take only the job row, then the narrative's rows).
-- Token counts add to what earlier attempts of the job spent (the row tells what the job cost);
-- the attempt's call is in the spend ledger even when its lease was lost.
-- Outcomes: stored | stale_input | lease_lost.
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
  v_removed int := 0;
begin
  select * into s from private.settings;
  -- Serialised with readers' narrative_for_me (the user's lock, taken before the job row's).
  perform private.lock_user(user_id) from public.narrative_jobs where id = p_job_id;
  update public.narrative_jobs set
    status = 'succeeded', finished_at = now(), locked_until = null, lease_token = null,
    updated_at = now(), duration_ms = p_duration_ms,
    memories_used = p_memories_used, memories_omitted = p_memories_omitted
  where id = p_job_id and lease_token = p_lease_token and status = 'running'
  returning user_id, changed_ids into v_user, v_changed;
  -- Paid for whether or not the lease still holds.
  perform private.add_usage(p_job_id, p_model, coalesce(p_requested_model, p_model), p_provider_calls,
    p_prompt_tokens, p_output_tokens, p_thoughts_tokens, p_cached_tokens, p_total_tokens);
  if v_user is null then
    return query select 'lease_lost'::private.complete_outcome, null::int;
    return;
  end if;
  v_dirty := cardinality(v_changed) > 0;

  select count(*) into v_new_since from public.memories
    where user_id = v_user and state = 'active' and created_at > p_as_of;

  -- Memories deleted while generating left the user ineligible: a narrative is not kept for them.
  if v_dirty and not private.is_eligible(v_user) then
    delete from public.user_narratives where user_id = v_user;
    update public.narrative_jobs set last_error = 'not_eligible: memories were deleted while generating; nothing stored',
      last_error_code = 'not_eligible'
    where id = p_job_id;
    perform private.dispatch_pending();
    return query select 'stale_input'::private.complete_outcome, null::int;
    return;
  end if;

  -- More changed while generating than the job could list: what is left of the answer cannot
  -- be told apart, so nothing is stored (the stripped narrative stays) and another job runs.
  if cardinality(v_changed) > s.max_tracked_changes then
    update public.narrative_jobs set last_error = format(
        'stale_input: more than %s memories or notes changed while generating; nothing stored', s.max_tracked_changes),
      last_error_code = 'stale_input'
    where id = p_job_id;
    perform private.enqueue_if_eligible(v_user, 'memories_changed', s.change_debounce_seconds);
    perform private.dispatch_pending();
    return query select 'stale_input'::private.complete_outcome, null::int;
    return;
  end if;

  -- A memory or note deleted, archived or edited since the claim (the job's changed_ids): the
  -- claims citing it are never stored, whatever its updated_at says (that is the editing
  -- transaction's start, which can be before the read although the edit came after it). Every
  -- cited memory must also still be an active memory of the user (the claims contract).
  if v_dirty then
    select coalesce(jsonb_agg(c.claim order by c.ord), '[]'::jsonb) into v_claims
    from jsonb_array_elements(p_claims) with ordinality c(claim, ord)
    where not exists (
      select 1 from jsonb_array_elements_text(
          coalesce(c.claim -> 'memory_ids', '[]'::jsonb) || coalesce(c.claim -> 'note_ids', '[]'::jsonb)) x(id)
      where x.id::uuid = any (v_changed))
    and not exists (
      select 1 from jsonb_array_elements_text(c.claim -> 'memory_ids') x(mid)
      where not exists (select 1 from public.memories m
                        where m.id = x.mid::uuid and m.user_id = v_user and m.state = 'active'));
    v_removed := jsonb_array_length(p_claims) - jsonb_array_length(v_claims);
  end if;

  insert into public.user_narratives as n (
    user_id, narrative_content, claims, cited_memory_ids, partial, removed_claims, version, generated_at, updated_at,
    model, source_memory_count, source_memories_omitted, memories_as_of, new_memories_since, job_id)
  values (
    v_user, case when v_removed > 0 then private.render_claims(v_claims) else p_content end, v_claims,
    private.cited_ids(v_claims), v_removed > 0, v_removed, 1, now(), now(),
    p_model, p_memories_used, p_memories_omitted, p_as_of, v_new_since, p_job_id)
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

  if v_version is null then
    update public.narrative_jobs set last_error = 'stale_input: a narrative from newer memories is already stored',
      last_error_code = 'stale_input'
    where id = p_job_id;
    perform private.dispatch_pending();
    return query select 'stale_input'::private.complete_outcome, null::int;
    return;
  end if;

  update public.narrative_jobs set narrative_version = v_version where id = p_job_id;

  if v_dirty then
    perform private.enqueue_if_eligible(v_user, 'memories_changed', s.change_debounce_seconds);
  elsif v_new_since >= s.stale_after_new_memories then
    perform private.enqueue_if_eligible(v_user, 'stale', s.stale_debounce_seconds);
  end if;
  perform private.dispatch_pending();
  return query select 'stored'::private.complete_outcome, v_version;
end
$$;
comment on function private.complete_job(bigint, uuid, text, text, int, int, timestamptz, int, int, int, int, int, int, text, int, jsonb) is 'Lease holder stores the narrative (version + 1) and succeeds the job in one transaction.';

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
-- Outcomes: retry_scheduled | failed | lease_lost.
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
  v_content boolean := p_code in ('invalid_output', 'incomplete_output');
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
  v_retry := p_retryable and j.attempts < j.max_attempts and (not v_content or j.content_failures < v_limit);
  update public.narrative_jobs set
    status = case when v_retry then 'queued' else 'failed' end,
    run_after = case when not v_retry then narrative_jobs.run_after when p_code = 'worker_shutdown' then now()
      else now() + private.backoff(j.attempts, p_retry_after_seconds) end,
    finished_at = case when v_retry then null else now() end,
    content_failures = j.content_failures + v_content::int,
    locked_until = null,
    lease_token = null,
    last_error_code = p_code,
    last_error = left(p_code || ': ' || p_message
      || case when v_retry or not p_retryable then ''
              when j.attempts >= j.max_attempts then format(' (gave up after %s attempts)', j.attempts)
              else format(' (gave up after %s unusable answers: content_retry_limit is %s)', j.content_failures + 1, v_limit) end, 2000),
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
