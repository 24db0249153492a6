-- Outages and bounds: the retry schedule outlasts a two-hour provider outage, the weekly refresh
-- retries a user whose job ran out of attempts on its next run (not a week later), old
-- cron.job_run_details of our jobs are pruned, the per-user request buckets of orchestrate and
-- MCP, and the prompt's memory selection bounded by prompt_candidates.
begin;
create extension if not exists pgtap with schema extensions;
select plan(33);

-- 1. The retry schedule. A job that keeps failing waits backoff(1), backoff(2), ... before
-- attempts 2, 3, ...; at the smallest jitter (0.5) the waits before the last attempt must add up
-- to more than two hours, and the cap must reach past an hour.
select cmp_ok((select sum(0.5 * least(s.backoff_max_seconds, s.backoff_base_seconds * power(2, n - 1)))
               from private.settings s, generate_series(1, s.max_attempts - 1) n)::numeric, '>=', 7200::numeric,
  'the default max_attempts and backoff wait out a 2-hour outage even at the smallest jitter');
select cmp_ok((select 0.5 * backoff_max_seconds from private.settings)::numeric, '>=', 3600::numeric,
  'a capped wait is at least an hour');
select ok((select bool_and(extract(epoch from private.backoff(n)) between
                0.5 * least(s.backoff_max_seconds, s.backoff_base_seconds * power(2, n - 1))
            and least(s.backoff_max_seconds, s.backoff_base_seconds * power(2, n - 1)))
           from private.settings s, generate_series(1, 20) n, generate_series(1, 50) k),
  'every wait is within [0.5, 1] x the capped exponential (1,000 samples)');
select ok((select count(distinct extract(epoch from private.backoff(12))) > 40 from generate_series(1, 50)),
  'the capped waits are jittered (no herd when an outage ends)');
select is((select extract(epoch from private.backoff(1, 5000))), 5000::numeric, 'a provider''s Retry-After stays a floor');

-- 2. Weekly refresh after failures. Users e1..e5 have narratives past the TTL; their last jobs:
-- e1 ran out of attempts an hour ago (an outage), e2 ran out of attempts a minute ago (within
-- failure_cooldown_seconds), e3 was refused for good (prompt_blocked on attempt 1) a day ago,
-- e4 ran out of attempts once but its latest job was refused for good, e5 ran out of attempts on
-- its own output (invalid_output: not an outage, it would only fail again).
update private.settings set min_memories = 1, max_concurrency = 100000, weekly_batch_size = 1000;
insert into auth.users (id, email)
select ('70000000-0000-4000-8000-0000000000' || u)::uuid, 'outage-' || u || '@example.test' from unnest(array['e1', 'e2', 'e3', 'e4', 'e5']) u;
insert into public.memories (user_id, content)
select ('70000000-0000-4000-8000-0000000000' || u)::uuid, 'a memory' from unnest(array['e1', 'e2', 'e3', 'e4', 'e5']) u;
insert into public.user_narratives (user_id, narrative_content, generated_at, memories_as_of)
select ('70000000-0000-4000-8000-0000000000' || u)::uuid, 'old', now() - interval '8 days', now() - interval '8 days'
from unnest(array['e1', 'e2', 'e3', 'e4', 'e5']) u;
insert into public.narrative_jobs (user_id, reason, status, attempts, max_attempts, last_error_code, last_error, finished_at, created_at) values
  ('70000000-0000-4000-8000-0000000000e1', 'weekly', 'failed', 12, 12, 'provider_unavailable', 'provider_unavailable: 503 (gave up after 12 attempts)', now() - interval '1 hour', now() - interval '4 hours'),
  ('70000000-0000-4000-8000-0000000000e2', 'weekly', 'failed', 12, 12, 'provider_unavailable', 'provider_unavailable: 503 (gave up after 12 attempts)', now() - interval '1 minute', now() - interval '4 hours'),
  ('70000000-0000-4000-8000-0000000000e3', 'weekly', 'failed', 1, 12, 'prompt_blocked', 'prompt_blocked: SAFETY', now() - interval '1 day', now() - interval '1 day'),
  ('70000000-0000-4000-8000-0000000000e4', 'weekly', 'failed', 12, 12, 'timeout', 'timeout (gave up after 12 attempts)', now() - interval '2 days', now() - interval '3 days'),
  ('70000000-0000-4000-8000-0000000000e4', 'manual', 'failed', 1, 12, 'output_blocked', 'output_blocked: SAFETY', now() - interval '1 hour', now() - interval '2 hours'),
  ('70000000-0000-4000-8000-0000000000e5', 'weekly', 'failed', 12, 12, 'invalid_output', 'invalid_output: 1 valid claim (gave up after 12 attempts)', now() - interval '1 hour', now() - interval '4 hours');
select ok(private.enqueue_weekly_refresh() >= 1, 'the weekly run queues jobs');
select is((select string_agg(right(user_id::text, 2), ',' order by user_id) from public.narrative_jobs
           where user_id::text like '70000000-%' and status = 'queued'), 'e1',
  'it retries the user whose job ran out of attempts against an outage; not within the failure cooldown, not one refused for good, not one whose output kept failing');
update public.narrative_jobs set finished_at = now() - interval '20 minutes'
where user_id = '70000000-0000-4000-8000-0000000000e2' and status = 'failed';
select private.enqueue_weekly_refresh();
select is((select count(*)::int from public.narrative_jobs where user_id = '70000000-0000-4000-8000-0000000000e2' and status = 'queued'), 1,
  'once the cooldown has passed, the next run retries it');
select is((select count(*)::int from public.narrative_jobs where user_id = '70000000-0000-4000-8000-0000000000e3' and status = 'queued'), 0,
  'a refusal for good still waits a TTL');

-- A read or an edit during an outage does not cut a retry's backoff short (it would spend the
-- attempts in minutes); a job never tried is still pulled forward.
update public.narrative_jobs set attempts = 3, run_after = now() + interval '30 minutes'
where user_id = '70000000-0000-4000-8000-0000000000e1' and status = 'queued';
select private.enqueue_job('70000000-0000-4000-8000-0000000000e1', 'manual');
select is((select run_after from public.narrative_jobs where user_id = '70000000-0000-4000-8000-0000000000e1' and status = 'queued'),
  now() + interval '30 minutes', 'a job in backoff keeps its run_after when asked again');
update public.narrative_jobs set attempts = 0 where user_id = '70000000-0000-4000-8000-0000000000e1' and status = 'queued';
select private.enqueue_job('70000000-0000-4000-8000-0000000000e1', 'manual');
select is((select run_after from public.narrative_jobs where user_id = '70000000-0000-4000-8000-0000000000e1' and status = 'queued'),
  now(), 'one never tried (a debounce) is pulled forward');

-- 3. cron.job_run_details: the sweeper prunes our jobs' runs past cron_history_retention_days and
-- leaves recent runs and other jobs' history alone.
select cron.schedule('someone-elses-job', '0 3 * * *', 'select 1');
insert into cron.job_run_details (jobid, runid, job_pid, database, username, command, status, return_message, start_time, end_time)
select c.jobid, -row_number() over (), 1, 'postgres', 'postgres', c.command, 'succeeded', '1 row',
       now() - make_interval(days => d), now() - make_interval(days => d)
from cron.job c, (values (30), (1)) v(d)
where c.jobname in ('narrative-sweeper', 'someone-elses-job');
create temp table swept as select private.sweep() as r;
select is((select (r ->> 'pruned_cron_runs')::int from swept), 1, 'the sweep reports the old narrative-sweeper run it pruned');
select is((select count(*)::int from cron.job_run_details d join cron.job c using (jobid)
           where c.jobname = 'narrative-sweeper' and d.end_time < now() - interval '7 days'), 0, 'old runs of our jobs are gone');
select is((select count(*)::int from cron.job_run_details d join cron.job c using (jobid)
           where c.jobname = 'narrative-sweeper' and d.runid < 0 and d.end_time > now() - interval '7 days'), 1, 'recent runs stay');
select is((select count(*)::int from cron.job_run_details d join cron.job c using (jobid)
           where c.jobname = 'someone-elses-job'), 2, 'another job''s history is not ours to prune');

-- 4. Request buckets: a burst of N a minute per user and route, then PGRST 429 with
-- Retry-After; a refusal spends nothing; buckets refill with time.
update private.settings set orchestrate_requests_per_minute = 3, mcp_requests_per_minute = 2;
select lives_ok($$select private.take_request('70000000-0000-4000-8000-0000000000e1', 'orchestrate') from generate_series(1, 3)$$,
  'three orchestrate requests in a burst are allowed');
select throws_ok($$select private.take_request('70000000-0000-4000-8000-0000000000e1', 'orchestrate')$$, 'PGRST',
  '{"code" : "rate_limited", "message" : "Too many orchestrate requests: at most 3 a minute per user"}',
  'the fourth is refused the way PostgREST answers a status: sqlstate PGRST with a JSON message');
create function pg_temp.refusal(p_user uuid, p_route text) returns jsonb language plpgsql as $$
begin
  perform private.take_request(p_user, p_route);
  return null;
exception when sqlstate 'PGRST' then
  declare d text;
  begin
    get stacked diagnostics d = pg_exception_detail;
    return d::jsonb;
  end;
end $$;
select is((select r -> 'status' from pg_temp.refusal('70000000-0000-4000-8000-0000000000e1', 'orchestrate') r), '429'::jsonb,
  'its detail carries status 429');
select ok((select (r -> 'headers' ->> 'Retry-After')::int between 1 and 20 from pg_temp.refusal('70000000-0000-4000-8000-0000000000e1', 'orchestrate') r),
  'and Retry-After: the seconds until one request refills (60 / 3 = 20 at most)');
select ok((select tokens > -1 and tokens < 0.5 from private.request_buckets
           where user_id = '70000000-0000-4000-8000-0000000000e1' and route = 'orchestrate'),
  'refused requests spent nothing (the bucket is where the third request left it)');
select lives_ok($$select private.take_request('70000000-0000-4000-8000-0000000000e2', 'orchestrate')$$, 'another user has a bucket of their own');
select lives_ok($$select private.take_request('70000000-0000-4000-8000-0000000000e1', 'mcp') from generate_series(1, 2)$$,
  'and so does every route');
select is((select r -> 'status' from pg_temp.refusal('70000000-0000-4000-8000-0000000000e1', 'mcp') r), '429'::jsonb, 'mcp has its own limit');
update private.request_buckets set refilled_at = refilled_at - interval '40 seconds' where user_id = '70000000-0000-4000-8000-0000000000e1';
select lives_ok($$select private.take_request('70000000-0000-4000-8000-0000000000e1', 'orchestrate') from generate_series(1, 2)$$,
  '40 s later two orchestrate requests have refilled');
select throws_ok($$select private.take_request('70000000-0000-4000-8000-0000000000e1', 'search')$$, '22023', null, 'an unknown route is an error, not a free pass');

-- 5. The prompt's memories: 3,000 memories, prompt_candidates = 40. The ranking only sees the 40
-- newest and the 40 most important, so at most 80 come back even when the budget fits all.
update private.settings set prompt_candidates = 40, prompt_char_budget = 1000000, memory_char_cap = 100;
insert into auth.users (id, email) values ('70000000-0000-4000-8000-0000000000b1', 'bounded@example.test');
insert into public.memories (user_id, content, metadata, created_at)
select '70000000-0000-4000-8000-0000000000b1', 'memory ' || g,
       case when g % 100 = 0 then '{"importance": 0.95}'::jsonb else '{}'::jsonb end,
       now() - make_interval(days => g)
from generate_series(1, 3000) g;
create temp table picked as select * from private.memories_for_prompt('70000000-0000-4000-8000-0000000000b1');
select cmp_ok((select count(*)::int from picked), '<=', 80, 'at most 2 x prompt_candidates memories are ranked');
select is((select max(total) from picked), 3000, 'total still counts every active memory (how many were left out)');
select ok((select bool_and(content in (select 'memory ' || g from generate_series(1, 40) g)) from picked where importance is null),
  'the unimportant ones are the 40 newest');
select is((select count(*)::int from picked where importance = 0.95::real), 30,
  'every important one is in, however old (memory 3000 is 3,000 days old)');
-- total is the kept count (private.memory_counts.n: every memory not deleted) less the archived
-- ones, never a count of every active row; exact through archives and deletes, and counted
-- where a user has no count row.
update public.memories set state = 'archived'
where user_id = '70000000-0000-4000-8000-0000000000b1' and content in ('memory 2999', 'memory 2998');
select is((select max(total) from private.memories_for_prompt('70000000-0000-4000-8000-0000000000b1')), 2998,
  'total leaves archived memories out');
update public.memories set state = 'deleted'
where user_id = '70000000-0000-4000-8000-0000000000b1' and content in ('memory 2997', 'memory 2999');
select is((select max(total) from private.memories_for_prompt('70000000-0000-4000-8000-0000000000b1')), 2997,
  'and deleted ones, archived or not');
delete from private.memory_counts where user_id = '70000000-0000-4000-8000-0000000000b1';
select is((select max(total) from private.memories_for_prompt('70000000-0000-4000-8000-0000000000b1')), 2997,
  'a user without a count row is counted');

-- The stored importance: metadata.importance clamped to 0..1, null when not a number.
insert into public.memories (user_id, content, metadata)
select '70000000-0000-4000-8000-0000000000b1', 'imp ' || k, v::jsonb
from (values (1, '{"importance": 7}'), (2, '{"importance": -3}'), (3, '{"importance": "high"}'), (4, '{"importance": 1e400}'),
             (5, '{"importance": 1e-50}')) x(k, v);
select is((select array_agg(importance order by content) from public.memories where content like 'imp %'),
  array[1, 0, null, 1, 0]::real[], 'importance column: clamped, null for a string, no overflow for 1e400 nor underflow for 1e-50');

select * from finish();
rollback;
