-- The named steps of complete_job, fail_job and sweep, each called alone inside one rolled-back
-- transaction: what it decides from its arguments, so a change to one step shows here before
-- the whole operation's tests (010, 040, 100, 110, 130) say something changed.
begin;
create extension if not exists pgtap with schema extensions;
select plan(19);

-- Alone with this file's jobs (the prune counts are exact), as 130 does.
delete from public.narrative_jobs;
update private.settings set min_memories = 1, max_concurrency = 100, generations_per_day = 100;
insert into auth.users (id, email) values
  ('c0000000-0000-4000-8000-00000000000a', 'steps-a@example.test'),
  ('c0000000-0000-4000-8000-00000000000b', 'steps-b@example.test');
insert into public.memories (id, user_id, content) values
  ('c1000000-0000-4000-8000-0000000000a1', 'c0000000-0000-4000-8000-00000000000a', 'one'),
  ('c1000000-0000-4000-8000-0000000000a2', 'c0000000-0000-4000-8000-00000000000a', 'two'),
  ('c1000000-0000-4000-8000-0000000000a3', 'c0000000-0000-4000-8000-00000000000a', 'three'),
  ('c1000000-0000-4000-8000-0000000000b1', 'c0000000-0000-4000-8000-00000000000b', 'b''s');
update public.memories set state = 'archived' where id = 'c1000000-0000-4000-8000-0000000000a3';

-- fail_job's decision and its message, from a job row as it stands.
create function pg_temp.job(p_attempts int, p_max int, p_content_failures int) returns public.narrative_jobs
language plpgsql as $$
declare
  j public.narrative_jobs;
begin
  j.attempts := p_attempts;
  j.max_attempts := p_max;
  j.content_failures := p_content_failures;
  return j;
end $$;
select is(private.may_retry(pg_temp.job(1, 12, 0), 'rate_limited', true, 2), true, 'may_retry: retryable with attempts left');
select is(private.may_retry(pg_temp.job(12, 12, 0), 'rate_limited', true, 2), false, 'may_retry: not past max_attempts');
select is(private.may_retry(pg_temp.job(1, 12, 0), 'prompt_blocked', false, 2), false, 'may_retry: never a permanent error');
select is(private.may_retry(pg_temp.job(3, 12, 1), 'invalid_output', true, 2), true, 'may_retry: a content failure under content_retry_limit');
select is(private.may_retry(pg_temp.job(3, 12, 2), 'invalid_output', true, 2), false, 'may_retry: a content failure at content_retry_limit');
select is(private.may_retry(pg_temp.job(3, 12, 2), 'timeout', true, 2), true, 'may_retry: content failures do not bound an outage');
select is(private.failure_text(pg_temp.job(2, 12, 0), 'timeout', 'slow', true, true, 2), 'timeout: slow', 'failure_text: a retry says only the error');
select is(private.failure_text(pg_temp.job(12, 12, 0), 'timeout', 'slow', true, false, 2), 'timeout: slow (gave up after 12 attempts)',
  'failure_text: out of attempts says so');
select is(private.failure_text(pg_temp.job(3, 12, 2), 'invalid_output', 'bad', true, false, 2),
  'invalid_output: bad (gave up after 3 unusable answers: content_retry_limit is 2)', 'failure_text: out of content retries says so');
select is(length(private.failure_text(pg_temp.job(1, 12, 0), 'unexpected', repeat('x', 5000), false, false, 2)), 2000,
  'failure_text: at most 2,000 characters');

-- complete_job's claims filter: changed ids and memories that are not the user's active ones go.
select is((select jsonb_agg(c ->> 'text') from jsonb_array_elements(private.claims_to_store('c0000000-0000-4000-8000-00000000000a', jsonb_build_array(
    jsonb_build_object('section', 'Who they are', 'text', 'kept', 'memory_ids', jsonb_build_array('c1000000-0000-4000-8000-0000000000a1')),
    jsonb_build_object('section', 'Who they are', 'text', 'changed', 'memory_ids', jsonb_build_array('c1000000-0000-4000-8000-0000000000a2')),
    jsonb_build_object('section', 'Who they are', 'text', 'archived', 'memory_ids', jsonb_build_array('c1000000-0000-4000-8000-0000000000a3')),
    jsonb_build_object('section', 'Who they are', 'text', 'someone else''s', 'memory_ids', jsonb_build_array('c1000000-0000-4000-8000-0000000000b1')),
    jsonb_build_object('section', 'Pinned by you', 'text', 'a changed note', 'memory_ids', '[]'::jsonb, 'note_ids', jsonb_build_array('c2000000-0000-4000-8000-000000000001')),
    jsonb_build_object('section', 'Recurring themes and patterns', 'text', 'also kept', 'memory_ids', jsonb_build_array('c1000000-0000-4000-8000-0000000000a1'))),
    array['c1000000-0000-4000-8000-0000000000a2', 'c2000000-0000-4000-8000-000000000001']::uuid[])) c),
  '["kept", "also kept"]'::jsonb, 'claims_to_store: keeps, in order, only claims on unchanged active memories of the user');

-- complete_job's store: version + 1 recorded on the job, never over newer input.
create temp table j1 as select job_id from private.enqueue_job('c0000000-0000-4000-8000-00000000000a', 'manual');
select is(private.store_narrative((select job_id from j1), 'c0000000-0000-4000-8000-00000000000a', 'the content', '[]', 0, 'm', 2, 0, now(), 0),
  1, 'store_narrative: the first version');
select is(private.store_narrative((select job_id from j1), 'c0000000-0000-4000-8000-00000000000a', 'again', '[]', 0, 'm', 2, 0, now(), 0),
  2, 'store_narrative: the next one');
select is((select narrative_version from public.narrative_jobs where id = (select job_id from j1)), 2, 'store_narrative: the version is on the job');
select is(private.store_narrative((select job_id from j1), 'c0000000-0000-4000-8000-00000000000a', 'older', '[]', 0, 'm', 2, 0, now() - interval '1 day', 0),
  null, 'store_narrative: input older than what is stored is not written');
select is((select narrative_content || ' v' || version from public.user_narratives where user_id = 'c0000000-0000-4000-8000-00000000000a'),
  'again v2', 'store_narrative: the stored narrative is unchanged');
select private.record_not_stored((select job_id from j1), 'stale_input', 'a narrative from newer memories is already stored');
select is((select last_error_code || ' / ' || last_error from public.narrative_jobs where id = (select job_id from j1)),
  'stale_input / stale_input: a narrative from newer memories is already stored', 'record_not_stored: code and message on the row');

-- Sweep steps take their retention as an argument: finished jobs past it go, others stay.
update public.narrative_jobs set status = 'succeeded', finished_at = now() - interval '3 days' where id = (select job_id from j1);
insert into public.narrative_jobs (user_id, reason, status, finished_at)
  values ('c0000000-0000-4000-8000-00000000000b', 'manual', 'failed', now() - interval '1 day');
select is(private.prune_finished_jobs(2), 1, 'prune_finished_jobs(2): the job finished 3 days ago');
select is((select count(*)::int from public.narrative_jobs where user_id in ('c0000000-0000-4000-8000-00000000000a', 'c0000000-0000-4000-8000-00000000000b')),
  1, 'prune_finished_jobs: the one finished a day ago stays');

select * from finish();
rollback;
