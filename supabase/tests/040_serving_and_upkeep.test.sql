-- What users are served and how the queue keeps itself clean, inside one rolled-back transaction
-- (settings and Vault changed here are invisible to anything else):
-- narrative_for_me's decision table, the project's cron jobs, dispatch without Vault secrets,
-- lease expiry with no attempts left, pruning, the weekly batch limit, and a comment on every
-- function.
-- User keys are hex: f1 fresh, 51 stale (old), 71 stale (new memories), b1 partial, e1 ineligible, c1 failed, a1 active job,
-- d1 dispatch, aa/ab expired leases, cc pruning, e2-e4 weekly.
begin;
create extension if not exists pgtap with schema extensions;
\ir helpers.psql
select plan(41);

-- Room for every due job to be dispatched (the cap is not what these tests are about).
update private.settings set min_memories = 3, max_concurrency = 100000, weekly_batch_size = 2;

insert into auth.users (id, email)
select ('40000000-0000-4000-8000-0000000000' || k)::uuid, 'serving-' || k || '@example.test'
from unnest(array['f1', '51', '71', 'b1', 'e1', 'c1', 'a1', 'd1', 'aa', 'ab', 'cc', 'e2', 'e3', 'e4']) k;

-- Memories first (inserting them later would count as new memories since generation).
insert into public.memories (user_id, content)
select ('40000000-0000-4000-8000-0000000000' || k)::uuid, 'memory ' || g
from unnest(array['f1', '51', '71', 'b1', 'c1', 'a1', 'd1', 'e2', 'e3', 'e4']) k, generate_series(1, 4) g;
insert into public.memories (user_id, content) values ('40000000-0000-4000-8000-0000000000e1', 'only one');

insert into public.user_narratives (user_id, narrative_content, generated_at, memories_as_of, new_memories_since, partial) values
  ('40000000-0000-4000-8000-0000000000f1', 'fresh', now() - interval '1 day', now(), 0, false),
  ('40000000-0000-4000-8000-000000000051', 'old', now() - interval '8 days', now(), 0, false),
  ('40000000-0000-4000-8000-000000000071', 'many new', now() - interval '1 day', now(),
   (select stale_after_new_memories from private.settings), false),
  ('40000000-0000-4000-8000-0000000000b1', 'partial', now() - interval '1 day', now(), 0, true),
  ('40000000-0000-4000-8000-0000000000e2', 'e2', now() - interval '402 days', now() - interval '402 days', 0, false),
  ('40000000-0000-4000-8000-0000000000e3', 'e3', now() - interval '401 days', now() - interval '401 days', 0, false),
  ('40000000-0000-4000-8000-0000000000e4', 'e4', now() - interval '400 days', now() - interval '400 days', 0, false);
insert into public.narrative_jobs (user_id, reason, status, attempts, finished_at, last_error_code, last_error) values
  ('40000000-0000-4000-8000-0000000000c1', 'cache_miss', 'failed', 5, now() - interval '1 minute', 'output_blocked', 'output_blocked: x');
insert into public.narrative_jobs (user_id, reason, status, attempts, locked_until, lease_token, started_at) values
  ('40000000-0000-4000-8000-0000000000a1', 'cache_miss', 'running', 1, now() + interval '1 minute', gen_random_uuid(), now());

-- narrative_for_me as a user (its own claims, role authenticated), then back to postgres.
create function pg_temp.for_me(p_user text, p_reason text default 'cache_miss')
returns table (status text, stale boolean, job_id bigint, job_status text, retry_after_seconds int, min_memories int, memory_count int)
language plpgsql as $$
begin
  perform tests.authenticate_as(('40000000-0000-4000-8000-0000000000' || p_user)::uuid);
  return query select f.status::text, f.stale, f.job_id, f.job_status, f.retry_after_seconds, f.min_memories, f.memory_count
    from public.narrative_for_me(p_reason) f;
  perform tests.clear_authentication();
end $$;
create function pg_temp.jobs_of(p_user text) returns text language sql as $$
  select coalesce(string_agg(reason || ':' || status, ',' order by id), '')
  from public.narrative_jobs where user_id = ('40000000-0000-4000-8000-0000000000' || p_user)::uuid
$$;

-- The decision table.
select is((select status || ':' || stale from pg_temp.for_me('f1')), 'ready:false', 'fresh: served, not stale');
select is(pg_temp.jobs_of('f1'), '', 'fresh: nothing queued');
select is((select status || ':' || stale || ':' || job_status from pg_temp.for_me('51')), 'ready:true:queued', 'older than ttl_days: served stale, its refresh returned');
select is(pg_temp.jobs_of('51'), 'stale:queued', 'older than ttl_days: a stale refresh is queued');
select is((select status || ':' || stale from pg_temp.for_me('71')), 'ready:true', 'stale_after_new_memories reached: served stale');
select is(pg_temp.jobs_of('71'), 'stale:queued', 'new memories: a stale refresh is queued');
select is((select status || ':' || stale from pg_temp.for_me('b1')), 'ready:true', 'partial: served (what is stored is servable), as stale');
select is(pg_temp.jobs_of('b1'), 'stale:queued', 'partial: a refresh is queued');
select is((select status || ':' || min_memories || ':' || memory_count from pg_temp.for_me('e1')), 'ineligible:3:1',
  'ineligible: says so with settings.min_memories (3 here) and the user''s count');
select is(pg_temp.jobs_of('e1'), '', 'ineligible: nothing queued');
select ok((select status = 'failed' and job_status = 'failed' and retry_after_seconds > 0 from pg_temp.for_me('c1')),
  'failed within failure_cooldown_seconds: failed, with the job and when to retry');
select is(pg_temp.jobs_of('c1'), 'cache_miss:failed', 'failed: nothing queued during the cooldown');
select is((select status || ':' || job_status from pg_temp.for_me('a1')), 'running:running', 'active job: its status');
select is(pg_temp.jobs_of('a1'), 'cache_miss:running', 'active job: no second job');
select is((select status from pg_temp.for_me('f1', 'manual')), 'queued', 'manual: queues a regeneration even when fresh');
select ok((select status = 'cooldown' and retry_after_seconds > 0 from pg_temp.for_me('f1', 'manual')), 'manual again: cooldown');
select is(pg_temp.jobs_of('f1'), 'manual:queued', 'manual: one job');
select is((select status from pg_temp.for_me('e1', 'manual')), 'ineligible', 'manual for an ineligible user: ineligible');
select throws_ok($$select * from pg_temp.for_me('f1', 'weekly')$$, '22023', null, 'other reasons are bad input');
select is((select count(*)::int from public.user_narratives n, private.settings s
           where n.user_id::text like '40000000-%' and private.narrative_is_fresh(n, s)), 1,
  'the freshness rule backfill and weekly use agrees: only f1 is fresh');

-- The cache hit (private.narrative_hit): the answer body of a fresh narrative, the same rule as
-- narrative_for_me's first step, null for anything else; only its owner may run it.
create function pg_temp.hit(p_user text, p_shape text) returns jsonb language sql as $$
  select private.narrative_hit(('40000000-0000-4000-8000-0000000000' || p_user)::uuid, p_shape)::jsonb
$$;
select is(pg_temp.hit('f1', 'orchestrate'), jsonb_build_object('source', 'narrative', 'context', 'fresh',
    'narrative', jsonb_build_object('version', 1, 'stale', false, 'partial', false,
      'generated_at', (select to_char(generated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') from public.user_narratives
                       where user_id = '40000000-0000-4000-8000-0000000000f1')),
    'claims', '[]'::jsonb, 'job', null),
  'hit, orchestrate: the answer body, generated_at as toISOString writes it');
select is(pg_temp.hit('f1', 'narrative') - 'generated_at', jsonb_build_object('narrative', 'fresh', 'version', 1, 'age_days', 1,
    'stale', false, 'model', null, 'claims', '[]'::jsonb, 'partial', false),
  'hit, GET narrative: the answer body, age_days as narrative_for_me computes it');
select is(array[pg_temp.hit('51', 'orchestrate'), pg_temp.hit('71', 'orchestrate'), pg_temp.hit('b1', 'narrative'),
                pg_temp.hit('e1', 'narrative'), pg_temp.hit('00', 'orchestrate')],
  array[null, null, null, null, null]::jsonb[], 'no hit when stale, past the new-memory threshold, partial, absent or unknown');
select throws_ok($$select pg_temp.hit('f1', 'weekly')$$, '22023', null, 'hit: an unknown shape is bad input');
select ok(not has_function_privilege('authenticated', 'private.narrative_hit(uuid, text)', 'execute')
          and not has_function_privilege('anon', 'private.narrative_hit(uuid, text)', 'execute')
          and not has_function_privilege('service_role', 'private.narrative_hit(uuid, text)', 'execute'),
  'hit: it takes a user id, so no API role may run it (the Data API would let anyone name anyone)');
create function pg_temp.hit_as_user(p_user text) returns text language plpgsql as $$
begin
  perform tests.authenticate_as(('40000000-0000-4000-8000-0000000000' || p_user)::uuid);
  perform private.narrative_hit('40000000-0000-4000-8000-0000000000f1', 'orchestrate');
  perform tests.clear_authentication();
  return 'ran';
exception when others then
  perform tests.clear_authentication();
  return sqlstate;
end $$;
select is(pg_temp.hit_as_user('f1'), '42501', 'hit: a signed-in user cannot run it, even for their own id');

-- The project's two cron jobs: schedules and commands (they only tick; the work is above).
select results_eq(
  $$select jobname::text, schedule::text, command::text, active from cron.job where jobname like 'narrative-%' order by jobname$$,
  $$values ('narrative-sweeper', '* * * * *', 'select private.sweep()', true),
           ('narrative-weekly-refresh', '*/10 * * * *', 'select private.enqueue_weekly_refresh()', true)$$,
  'narrative-sweeper every minute and narrative-weekly-refresh every 10 minutes, active');

-- Dispatch without the Vault secrets: the job stays queued with the reason on the row.
delete from vault.secrets where name in ('project_url', 'narrative_service_secret');
create temp table dj as select * from private.enqueue_job('40000000-0000-4000-8000-0000000000d1', 'manual');
select is((select last_error_code || ':' || status || ':' || (dispatched_at is null) from public.narrative_jobs
           where user_id = '40000000-0000-4000-8000-0000000000d1'), 'dispatch_not_configured:queued:true',
  'no Vault secrets: dispatch_not_configured on the row, queued, not in flight');

-- Sweeper fixtures: expired leases (attempts used up, attempts left), old and recent finished
-- jobs, old and recent pg_net responses.
insert into public.narrative_jobs (user_id, reason, status, attempts, max_attempts, locked_until, lease_token, started_at) values
  ('40000000-0000-4000-8000-0000000000aa', 'manual', 'running', 5, 5, now() - interval '1 minute', gen_random_uuid(), now() - interval '5 minutes'),
  ('40000000-0000-4000-8000-0000000000ab', 'manual', 'running', 1, 5, now() - interval '1 minute', gen_random_uuid(), now() - interval '5 minutes');
insert into public.narrative_jobs (user_id, reason, status, finished_at) values
  ('40000000-0000-4000-8000-0000000000cc', 'manual', 'succeeded', now() - make_interval(days => (select job_retention_days + 1 from private.settings))),
  ('40000000-0000-4000-8000-0000000000cc', 'manual', 'failed', now() - make_interval(days => (select job_retention_days - 1 from private.settings)));
insert into net._http_response (id, status_code, created) values
  (-4001, 200, now() - make_interval(mins => (select http_response_retention_minutes + 5 from private.settings))),
  (-4002, 200, now());
create temp table swept as select private.sweep() as r;

select is((select status || ':' || last_error_code from public.narrative_jobs where user_id = '40000000-0000-4000-8000-0000000000aa'),
  'failed:lease_expired', 'an expired lease with attempts used up fails');
select ok((select finished_at is not null and last_error like '%gave up after 5 attempts%' from public.narrative_jobs
           where user_id = '40000000-0000-4000-8000-0000000000aa'), 'with its finish time and the reason');
select is((select status || ':' || (lease_token is null) from public.narrative_jobs where user_id = '40000000-0000-4000-8000-0000000000ab'),
  'queued:true', 'an expired lease with attempts left goes back to queued');
select ok((select (r ->> 'failed_expired')::int >= 1 and (r ->> 'requeued_expired')::int >= 1 from swept), 'the sweep reports both');
select is((select string_agg(status, ',') from public.narrative_jobs where user_id = '40000000-0000-4000-8000-0000000000cc'),
  'failed', 'finished jobs past job_retention_days are pruned, recent ones kept');
select is((select array_agg(id order by id) from net._http_response where id in (-4001, -4002)), array[-4002]::bigint[],
  'pg_net responses past http_response_retention_minutes are pruned, recent ones kept');
select ok((select (r ->> 'pruned_jobs')::int >= 1 and (r ->> 'pruned_responses')::int >= 1 from swept), 'the sweep reports the pruning');

-- The weekly refresh honours weekly_batch_size (2 here), oldest narratives first.
select is(private.enqueue_weekly_refresh(), 2, 'one run queues at most weekly_batch_size jobs');
select results_eq(
  $$select user_id::text from public.narrative_jobs where reason = 'weekly' and user_id::text like '40000000-%' order by 1$$,
  $$values ('40000000-0000-4000-8000-0000000000e2'), ('40000000-0000-4000-8000-0000000000e3')$$,
  'the two oldest narratives first');
select is(pg_temp.jobs_of('e4'), '', 'the third waits for the next run');
select is(private.enqueue_weekly_refresh() >= 1, true, 'and the next run picks it up');
select is(pg_temp.jobs_of('e4'), 'weekly:queued', 'w3 queued on the next run');

-- Studio shows every function's purpose.
select is((select array_agg(p.oid::regprocedure::text order by 1) from pg_proc p
           where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace) and obj_description(p.oid, 'pg_proc') is null),
  null, 'every public and private function has a comment');

select * from finish();
rollback;
