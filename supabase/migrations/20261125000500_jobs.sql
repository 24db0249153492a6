-- Every narrative generation is a durable job row with a visible status, attempt count,
-- timings and last error. This file holds the row and the rules about whom a job is for and when
-- it may start (eligibility, the per-user lock, the failure cooldown, the daily generation
-- budget); the operations that move it (enqueue, claim, complete, fail) come after dispatch,
-- which they call, in 20261125000650_enqueue_claim and 20261125000660_complete_fail.
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

-- Ids a job lists as changed while it generates (narrative_jobs.changed_ids): past this the
-- list is cut and the completion stores nothing (a regeneration follows). Bounds the job row
-- whatever a user changes during one generation.
alter table private.settings add column max_tracked_changes int not null default 1000 check (max_tracked_changes >= 1);

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

-- Generations a user may start in any 24 hours, every reason counted. Past it, changes still
-- strip claims at once (memory-change triggers) and the next job waits for the budget: an edit
-- loop must not buy a regeneration every few seconds.
alter table private.settings add column generations_per_day int not null default 24 check (generations_per_day >= 1);

-- When the user may start another generation: now, or when the generations_per_day-th most
-- recent start of the last 24 hours ages out. Counts finished jobs only: enqueue_job asks when
-- the user has no other active job (a queued retry is the job being scheduled, not another).
-- started_at is the latest attempt's claim, so a retried job counts a little longer (never less).
create function private.budget_run_after(p_user_id uuid) returns timestamptz
language sql stable security definer set search_path = '' as $$
  select coalesce((
    select j.started_at + interval '24 hours' from public.narrative_jobs j
    where j.user_id = p_user_id and j.status in ('succeeded', 'failed') and j.started_at > now() - interval '24 hours'
    order by j.started_at desc
    offset (select s.generations_per_day - 1 from private.settings s) limit 1), now())
$$;
comment on function private.budget_run_after(uuid) is 'Earliest start of the user''s next generation under generations_per_day (every reason).';

-- Grants: none. These functions run as postgres only (see 20261125000200).
revoke execute on all functions in schema private from public;
