-- The queue's state machine, called directly inside one rolled-back transaction (so settings
-- changed here are invisible to anything else): claim compare-and-set, the concurrency cap,
-- leases, retry and failure, older input never replacing newer, weekly selection, RLS.
begin;
create extension if not exists pgtap with schema extensions;
\ir helpers.psql
select plan(36);

-- A cap of one more than what is running elsewhere right now: our first claim fills it.
update private.settings set min_memories = 3,
  max_concurrency = (select count(*) + 1 from narrative_jobs where status = 'running');

insert into auth.users (id, email) values
  ('10000000-0000-4000-8000-00000000000a', 'queue-a@example.test'),
  ('10000000-0000-4000-8000-00000000000b', 'queue-b@example.test'),
  ('10000000-0000-4000-8000-00000000000c', 'queue-c@example.test'),
  ('10000000-0000-4000-8000-00000000000d', 'queue-d@example.test'),
  ('10000000-0000-4000-8000-00000000000e', 'queue-e@example.test');
insert into public.memories (user_id, content)
select u, 'memory ' || g
from unnest(array['10000000-0000-4000-8000-00000000000a', '10000000-0000-4000-8000-00000000000b',
                  '10000000-0000-4000-8000-00000000000d', '10000000-0000-4000-8000-00000000000e']::uuid[]) u,
     generate_series(1, 4) g;
insert into public.memories (user_id, content)
values ('10000000-0000-4000-8000-00000000000c', 'only one memory');

-- Enqueue is idempotent.
create temp table ja as select * from private.enqueue_job('10000000-0000-4000-8000-00000000000a', 'manual');
select is((select created from ja), true, 'enqueue creates a job');
select is((select job_id from private.enqueue_job('10000000-0000-4000-8000-00000000000a', 'cache_miss')),
          (select job_id from ja), 'enqueue again returns the active job');
select is((select count(*)::int from narrative_jobs where user_id = '10000000-0000-4000-8000-00000000000a'), 1, 'still one job');
select is(private.is_eligible('10000000-0000-4000-8000-00000000000c'), false, 'one memory is not eligible');
select is(private.is_eligible('10000000-0000-4000-8000-00000000000a'), true, 'four memories are eligible at min 3');

-- Claim is a compare-and-set with a lease; attempts are counted at claim.
create temp table ca as select * from private.claim_job((select job_id from ja));
select is((select outcome from ca), 'claimed', 'a queued due job is claimed');
select is((select attempts from ca), 1, 'the attempt is counted at claim');
select isnt((select lease_token from ca), null, 'the claim holds a lease token');
select is((select status from narrative_jobs where id = (select job_id from ja)), 'running', 'claimed jobs are running');
select is((select outcome from private.claim_job((select job_id from ja))), 'not_claimable', 'a running job cannot be claimed twice');
select is((select outcome from private.claim_job(-1)), 'not_found', 'unknown jobs are reported');

-- The global cap is reached: a second user's job waits.
create temp table jb as select * from private.enqueue_job('10000000-0000-4000-8000-00000000000b', 'manual');
select is((select outcome from private.claim_job((select job_id from jb))), 'concurrency_limited', 'the running cap holds');
select is((select status from narrative_jobs where id = (select job_id from jb)), 'queued', 'a deferred job stays queued');
select is((select dispatched_at from narrative_jobs where id = (select job_id from jb)), null, 'and is no longer in flight');

-- Completing stores the narrative and succeeds the job in one step; only the lease holder can.
select is((select outcome from private.complete_job((select job_id from ja), gen_random_uuid(), 'x', 'm', 4, 0, now(), 1, 1, 1)),
          'lease_lost', 'a wrong lease token cannot complete');
select is((select outcome || ':' || version from private.complete_job((select job_id from ja), (select lease_token from ca),
          'narrative one', 'model-a', 4, 0, now(), 10, 20, 30)), 'stored:1', 'the lease holder stores version 1');
select is((select status from narrative_jobs where id = (select job_id from ja)), 'succeeded', 'the job succeeded');
select is((select narrative_content from user_narratives where user_id = '10000000-0000-4000-8000-00000000000a'),
          'narrative one', 'the narrative is stored');
select is((select outcome from private.complete_job((select job_id from ja), (select lease_token from ca), 'again', 'm', 4, 0, now(), 1, 1, 1)),
          'lease_lost', 'a finished job cannot complete twice');

-- Older input never replaces newer: a job that read memories before the stored narrative's.
create temp table ja2 as select * from private.enqueue_job('10000000-0000-4000-8000-00000000000a', 'manual');
create temp table ca2 as select * from private.claim_job((select job_id from ja2));
select is((select outcome from private.complete_job((select job_id from ja2), (select lease_token from ca2), 'older',
          'm', 4, 0, now() - interval '1 hour', 1, 1, 1)), 'stale_input', 'older input is not stored');
select is((select version from user_narratives where user_id = '10000000-0000-4000-8000-00000000000a'), 1, 'version unchanged');

-- Retryable failure: back to queued with backoff; permanent or out of attempts: failed.
create temp table cb as select * from private.claim_job((select job_id from jb));
select is((select outcome from cb), 'claimed', 'the slot is free again');
select is((select outcome from private.fail_job((select job_id from jb), (select lease_token from cb), 'rate_limited', 'slow down', true, 30)),
          'retry_scheduled', 'a retryable error schedules a retry');
select ok((select run_after >= now() + interval '30 seconds' from narrative_jobs where id = (select job_id from jb)),
          'the provider''s retry delay is a floor for the backoff');
select is((select last_error from narrative_jobs where id = (select job_id from jb)), 'rate_limited: slow down', 'the error is kept');
-- A worker the platform stopped mid-generation (beforeunload): due again at once, no backoff.
update narrative_jobs set run_after = now() where id = (select job_id from jb);
create temp table cbw as select * from private.claim_job((select job_id from jb));
select is((select outcome || ':' || status from private.fail_job((select job_id from jb), (select lease_token from cbw), 'worker_shutdown',
          'the worker was stopped mid-generation (wall_clock)', true, null, 1000, 'm', 'm', 1, 10, 5, 0, 0, 15)),
          'retry_scheduled:queued', 'worker_shutdown is retried');
select ok((select run_after <= now() and last_error_code = 'worker_shutdown' and provider_calls = 1 and total_tokens = 15
           from narrative_jobs where id = (select job_id from jb)),
          'worker_shutdown: due at once, with what the stopped attempt spent');
update narrative_jobs set run_after = now(), attempts = max_attempts - 1 where id = (select job_id from jb);
create temp table cb2 as select * from private.claim_job((select job_id from jb));
select is((select outcome from private.fail_job((select job_id from jb), (select lease_token from cb2), 'provider_unavailable', '503', true)),
          'failed', 'out of attempts fails even when retryable');
select matches((select last_error from narrative_jobs where id = (select job_id from jb)),
  'gave up after ' || (select max_attempts from narrative_jobs where id = (select job_id from jb)) || ' attempts', 'and says so');

-- Weekly refresh picks exactly the eligible users whose narrative is older than the TTL, who
-- have no active job and whose generation did not fail this week (B's just failed above).
insert into user_narratives (user_id, narrative_content, generated_at, memories_as_of) values
  ('10000000-0000-4000-8000-00000000000b', 'b', now() - interval '8 days', now() - interval '8 days'),
  ('10000000-0000-4000-8000-00000000000c', 'c', now() - interval '8 days', now() - interval '8 days'),
  ('10000000-0000-4000-8000-00000000000d', 'd', now() - interval '8 days', now() - interval '8 days'),
  ('10000000-0000-4000-8000-00000000000e', 'e', now() - interval '8 days', now() - interval '8 days');
select private.enqueue_job('10000000-0000-4000-8000-00000000000d', 'manual');
update user_narratives set generated_at = now() - interval '1 day' where user_id = '10000000-0000-4000-8000-00000000000a';
select private.enqueue_weekly_refresh();
select results_eq(
  $$select user_id::text from narrative_jobs where reason = 'weekly' and user_id::text like '10000000-%' order by 1$$,
  $$values ('10000000-0000-4000-8000-00000000000e')$$,
  'weekly: old + eligible + idle only (not fresh A, not just-failed B, not ineligible C, not busy D)');
select ok((select run_after between now() and now() + interval '10 minutes' from narrative_jobs where reason = 'weekly'
           and user_id = '10000000-0000-4000-8000-00000000000e'), 'weekly jobs are spread over the next minutes');

-- RLS: users read only their own narrative and jobs, and cannot write either.
select tests.authenticate_as('10000000-0000-4000-8000-00000000000a');
select results_eq($$select user_id::text from user_narratives$$, $$values ('10000000-0000-4000-8000-00000000000a')$$,
  'a user sees only their own narrative');
select ok((select bool_and(user_id = '10000000-0000-4000-8000-00000000000a') from narrative_jobs), 'and only their own jobs');
select throws_ok($$update user_narratives set narrative_content = 'hacked'$$, '42501', null, 'users cannot write narratives');
select throws_ok($$insert into narrative_jobs (user_id, reason) values ('10000000-0000-4000-8000-00000000000a', 'manual')$$,
  '42501', null, 'users cannot insert jobs');
select throws_ok($$select private.enqueue_job('10000000-0000-4000-8000-00000000000a', 'manual')$$,
  '42501', null, 'users cannot call queue internals');
select tests.clear_authentication();

select * from finish();
rollback;
