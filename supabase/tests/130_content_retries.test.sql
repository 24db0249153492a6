-- Content failures and the failure cooldown, inside one rolled-back transaction: an unusable
-- answer (invalid_output, incomplete_output) is retried at most content_retry_limit times,
-- counted apart from outage attempts; after a failed job, a change-triggered enqueue (a note
-- or memory edit, stale) waits out failure_cooldown_seconds from the failure, while a manual
-- regeneration and users without a failure do not.
begin;
create extension if not exists pgtap with schema extensions;
select plan(17);

delete from public.narrative_jobs;
update private.settings set min_memories = 3, max_concurrency = 100, content_retry_limit = 2, failure_cooldown_seconds = 900,
  change_debounce_seconds = 10, generations_per_day = 100;
insert into auth.users (id, email)
select ('a0000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'content-' || g || '@example.test' from generate_series(1, 4) g;
create function pg_temp.u(g int) returns uuid language sql as $$
  select ('a0000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid $$;
insert into public.memories (user_id, content)
select pg_temp.u(g), 'memory ' || k from generate_series(1, 4) g, generate_series(1, 3) k;

-- One attempt of user g's active job that fails with p_code: claimed now, failed, made due again.
create function pg_temp.attempt(g int, p_code text) returns text language plpgsql as $$
declare
  v_job bigint := (select id from public.narrative_jobs where user_id = pg_temp.u(g) and status = 'queued');
  v_lease uuid;
  v_out text;
begin
  update public.narrative_jobs set run_after = now() where id = v_job;
  select lease_token into v_lease from private.claim_job(v_job);
  select outcome::text into v_out from private.fail_job(v_job, v_lease, p_code, 'unusable', true);
  return v_out;
end $$;

-- User 1: every answer invalid ("never mention anything"). Three attempts: two retries, then failed.
select is((select created from private.enqueue_job(pg_temp.u(1), 'manual')), true, 'user 1 gets a job');
select is(array[pg_temp.attempt(1, 'invalid_output'), pg_temp.attempt(1, 'incomplete_output'), pg_temp.attempt(1, 'invalid_output')],
          array['retry_scheduled', 'retry_scheduled', 'failed'], 'two content retries (content_retry_limit 2), then failed');
select is((select row(status, attempts, content_failures, last_error_code)::text from public.narrative_jobs where user_id = pg_temp.u(1)),
          row('failed', 3, 3, 'invalid_output')::text, 'after 3 of its 12 attempts, with the content failure''s code');
select matches((select last_error from public.narrative_jobs where user_id = pg_temp.u(1)),
               'gave up after 3 unusable answers: content_retry_limit is 2', 'last_error says why it stopped');

-- User 2: outage failures do not use up the content retries (nor the other way round).
select is((select created from private.enqueue_job(pg_temp.u(2), 'manual')), true, 'user 2 gets a job');
select is(array[pg_temp.attempt(2, 'provider_unavailable'), pg_temp.attempt(2, 'invalid_output'), pg_temp.attempt(2, 'rate_limited'),
                pg_temp.attempt(2, 'timeout'), pg_temp.attempt(2, 'invalid_output')],
          array['retry_scheduled', 'retry_scheduled', 'retry_scheduled', 'retry_scheduled', 'retry_scheduled'],
          'five failures, two of them content: still retried');
select is((select content_failures || '/' || attempts from public.narrative_jobs where user_id = pg_temp.u(2)), '2/5', 'counted apart');
update public.narrative_jobs set max_attempts = 6 where user_id = pg_temp.u(2);
select is(pg_temp.attempt(2, 'provider_unavailable'), 'failed', 'max_attempts still ends an outage');
select matches((select last_error from public.narrative_jobs where user_id = pg_temp.u(2)), 'gave up after 6 attempts', 'and says so');

-- The failure cooldown. User 1's job failed just now: a note edit queues a notes_changed job
-- that waits until the failure plus failure_cooldown_seconds, not the 10 s debounce.
insert into public.narrative_notes (user_id, content) values (pg_temp.u(1), 'never mention anything');
select is((select q.reason || ' ' || (q.run_after = f.finished_at + interval '900 seconds')::text
           from public.narrative_jobs q, public.narrative_jobs f
           where q.user_id = pg_temp.u(1) and q.status = 'queued' and f.user_id = pg_temp.u(1) and f.status = 'failed'),
          'notes_changed true', 'a note edit after a failed job waits out the cooldown from the failure');
update public.narrative_notes set content = 'never mention anything at all' where user_id = pg_temp.u(1);
update public.memories set content = 'memory edited' where user_id = pg_temp.u(1) and content = 'memory 1';
select is((select count(*)::int || ' ' || bool_and(run_after >= now() + interval '899 seconds')::text
           from public.narrative_jobs where user_id = pg_temp.u(1) and status = 'queued'),
          '1 true', 'more note and memory edits: the same one job, still waiting (no pull-forward)');

-- A memory edit after a failure (user 3), and stale: the same wait.
insert into public.narrative_jobs (user_id, reason, status, attempts, last_error_code, last_error, started_at, finished_at, created_at)
values (pg_temp.u(3), 'manual', 'failed', 3, 'invalid_output', 'x', now() - interval '5 minutes', now() - interval '5 minutes', now() - interval '6 minutes');
update public.memories set content = 'edited' where user_id = pg_temp.u(3) and content = 'memory 1';
select is((select reason || ' ' || run_after::text from public.narrative_jobs where user_id = pg_temp.u(3) and status = 'queued'),
          'memories_changed ' || (now() + interval '600 seconds')::text, 'a memory edit 5 minutes after a failure waits the other 10 minutes');
delete from public.narrative_jobs where user_id = pg_temp.u(3) and status = 'queued';
create temp table stale3 as select * from private.enqueue_job(pg_temp.u(3), 'stale');
select is((select run_after from public.narrative_jobs where id = (select job_id from stale3)),
          now() + interval '600 seconds', 'stale waits too');
delete from public.narrative_jobs where user_id = pg_temp.u(3) and status = 'queued';
create temp table manual3 as select * from private.enqueue_job(pg_temp.u(3), 'manual');
select is((select run_after from public.narrative_jobs where id = (select job_id from manual3)),
          now(), 'a manual regeneration does not (its own cooldown applies in narrative_for_me)');

-- Once the cooldown is over, or without a failure, edits queue after the debounce as before.
delete from public.narrative_jobs where user_id = pg_temp.u(3) and status = 'queued';
update public.narrative_jobs set finished_at = now() - interval '16 minutes' where user_id = pg_temp.u(3);
update public.memories set content = 'edited again' where user_id = pg_temp.u(3) and content = 'memory 2';
select is((select run_after from public.narrative_jobs where user_id = pg_temp.u(3) and status = 'queued'),
          now() + interval '10 seconds', 'after the cooldown: the debounce only');
insert into public.narrative_notes (user_id, content) values (pg_temp.u(4), 'call me Sam');
select is((select reason || ' ' || run_after::text from public.narrative_jobs where user_id = pg_temp.u(4) and status = 'queued'),
          'notes_changed ' || (now() + interval '10 seconds')::text, 'a user without a failure: the debounce only');
select is(private.failure_cooldown_until(pg_temp.u(4)), null, 'no cooldown for them');

select * from finish();
rollback;
