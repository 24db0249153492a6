-- Grants, everywhere in these migrations: hosted Supabase grants the API roles nothing on
-- what postgres creates, so each table and function says, beside its definition, exactly what
-- each role may do. Who is who:
--   postgres       the functions' service connection (SUPABASE_DB_URL), cron and the dispatch
--                  trigger: it owns every object here and needs no grant;
--   authenticated  a signed-in user, inside the functions' `set local role authenticated`
--                  transactions (or the Data API): RLS decides which rows;
--   anon           nothing at all;
--   service_role   nothing: no code here uses it (service callers of the functions run on the
--                  postgres connection), so the secret key opens no table through the Data API.
-- Postgres itself lets PUBLIC execute every new function, so each migration that adds private
-- functions ends by revoking that (the private schema is closed anyway; this keeps
-- has_function_privilege honest), and public functions revoke it beside their grant.

-- Internals live in `private`, a schema the Data API does not expose: tables of settings and
-- bookkeeping, and every queue operation as a function. Only postgres (its owner) uses it; a
-- user reaches the queue through our functions and the one public RPC, narrative_for_me.
create schema if not exists private;
revoke all on schema private from public;

-- Operator-tunable policy for the narrative pipeline, one row. SQL (cron, triggers) and the
-- functions read the same values, so there is one source of truth:
--   update private.settings set max_concurrency = 8;
create table private.settings (
  id boolean primary key default true check (id),
  min_memories int not null default 5 check (min_memories >= 1),
  ttl_days int not null default 7 check (ttl_days >= 1),
  max_concurrency int not null default 4 check (max_concurrency >= 1),
  -- Sized with the backoff below so that a provider outage of two hours costs no job: the 11
  -- waits before the 12th attempt add up to at least 8,715 s (2 h 25 min) at the smallest jitter
  -- (5 + 10 + 20 + ... + 2,560 + 3,600 s), 3 h 38 min on average. supabase/tests/100 checks it.
  max_attempts int not null default 12 check (max_attempts >= 1),
  -- Retries of a job whose answers were unusable (invalid_output, incomplete_output): a content
  -- failure, not an outage, so a few tries, not max_attempts (fail_job counts them apart).
  content_retry_limit int not null default 2 check (content_retry_limit >= 0),
  lease_seconds int not null default 180 check (lease_seconds >= 10),
  dispatch_timeout_ms int not null default 150000 check (dispatch_timeout_ms >= 1000),
  redispatch_after_seconds int not null default 120 check (redispatch_after_seconds >= 10),
  backoff_base_seconds int not null default 10 check (backoff_base_seconds >= 1),
  -- The cap reaches past an hour (with jitter a capped wait is 1 to 2 hours), so a long outage
  -- is waited out with a few calls, not hammered.
  backoff_max_seconds int not null default 7200 check (backoff_max_seconds >= 1),
  stale_after_new_memories int not null default 10 check (stale_after_new_memories >= 1),
  stale_debounce_seconds int not null default 60 check (stale_debounce_seconds >= 0),
  change_debounce_seconds int not null default 10 check (change_debounce_seconds >= 0),
  manual_cooldown_seconds int not null default 300 check (manual_cooldown_seconds >= 0),
  -- How long a cache miss answers "failed" after a failed job before trying again.
  failure_cooldown_seconds int not null default 900 check (failure_cooldown_seconds >= 0),
  -- Time budget of the fallback context's full-text search.
  fallback_timeout_ms int not null default 150 check (fallback_timeout_ms >= 10),
  weekly_batch_size int not null default 1000 check (weekly_batch_size >= 1),
  weekly_spread_seconds int not null default 600 check (weekly_spread_seconds >= 0),
  prompt_char_budget int not null default 60000 check (prompt_char_budget >= 1000),
  memory_char_cap int not null default 2000 check (memory_char_cap >= 100),
  -- How many of the newest and how many of the most important active memories the prompt is
  -- chosen from (two index range scans), so a user with 200,000 memories costs what one with
  -- 2,000 does. Twice prompt_char_budget / a typical memory (~200 chars) leaves room.
  prompt_candidates int not null default 1000 check (prompt_candidates >= 10),
  -- Fewest claims with valid citations a generation must keep, or the attempt is invalid_output.
  min_claims int not null default 3 check (min_claims >= 1),
  -- Share of a claim's content words that the texts it cites must contain, or validation drops
  -- it (shared/support.ts): a claim must rest on what it cites, since a delete strips only the
  -- claims citing the deleted memory. 0 turns the check off. The default is calibrated in
  -- shared/support.test.ts (equal to CLAIM_SUPPORT_MIN_DEFAULT there).
  claim_support_min real not null default 0.35 check (claim_support_min between 0 and 1),
  job_retention_days int not null default 30 check (job_retention_days >= 1),
  -- pg_cron logs every run of the narrative-* jobs in cron.job_run_details (1,440 a day for
  -- the sweeper alone) and never prunes it; the sweeper keeps this many days of our jobs' runs.
  cron_history_retention_days int not null default 7 check (cron_history_retention_days >= 1),
  http_response_retention_minutes int not null default 60 check (http_response_retention_minutes >= 1)
);
insert into private.settings default values;

-- Retry delay for a job that failed its n-th attempt: exponential from the base, capped, with
-- jitter so that a burst of failures does not come back as a burst. A provider's own
-- Retry-After (RetryInfo) is a floor.
create function private.backoff(p_attempts int, p_retry_after_seconds numeric default null)
returns interval language sql volatile set search_path = '' as $$
  select make_interval(secs => greatest(
    coalesce(p_retry_after_seconds, 0),
    least(s.backoff_max_seconds, s.backoff_base_seconds * power(2, greatest(p_attempts - 1, 0)))
      * (0.5 + random() * 0.5)
  ))
  from private.settings s
$$;
comment on function private.backoff(int, numeric) is 'Retry delay after the n-th failed attempt: capped exponential with jitter, provider delay as floor.';

-- Grants: none. These functions run as postgres only (see 20261125000200).
revoke execute on all functions in schema private from public;
