-- Limits: the daily generation budget (every reason; new jobs and pull-forwards wait for it;
-- an edit still strips claims at once), narrative_for_me's retry_after, and the memory bounds
-- (metadata size, memories per user) with the errcode a supabase-js caller sees.
begin;
create extension if not exists pgtap with schema extensions;
\ir helpers.psql
select plan(24);

update private.settings set min_memories = 3, generations_per_day = 3, max_memories_per_user = 6, memory_metadata_max_bytes = 100;
insert into auth.users (id, email) values
  ('60000000-0000-4000-8000-00000000000a', 'limits-a@example.test'),
  ('60000000-0000-4000-8000-00000000000b', 'limits-b@example.test');
insert into public.memories (id, user_id, content)
select ('61000000-0000-4000-8000-0000000000' || u || g)::uuid, ('60000000-0000-4000-8000-00000000000' || u)::uuid, 'memory ' || g
from unnest(array['a', 'b']) u, generate_series(1, 4) g;
insert into public.user_narratives (user_id, narrative_content, claims, cited_memory_ids, generated_at, memories_as_of)
values ('60000000-0000-4000-8000-00000000000a', 'x',
  jsonb_build_array(jsonb_build_object('section', 'Who they are', 'text', 'From a1.', 'memory_ids', jsonb_build_array('61000000-0000-4000-8000-0000000000a1'))),
  array['61000000-0000-4000-8000-0000000000a1'::uuid], now(), now());

-- A spent the budget: three generations (any reasons) started 20, 10 and 1 hours ago; B one.
insert into public.narrative_jobs (user_id, reason, status, started_at, finished_at)
select '60000000-0000-4000-8000-00000000000a', r, 'succeeded', now() - make_interval(hours => h), now() - make_interval(hours => h)
from (values ('memories_changed', 20), ('manual', 10), ('stale', 1)) v(r, h);
insert into public.narrative_jobs (user_id, reason, status, started_at, finished_at)
values ('60000000-0000-4000-8000-00000000000b', 'manual', 'succeeded', now() - interval '1 hour', now() - interval '1 hour');

select is(private.budget_run_after('60000000-0000-4000-8000-00000000000a'), now() + interval '4 hours',
  'over budget: the next generation waits until the oldest of the three ages out (20 h ago + 24 h)');
select is(private.budget_run_after('60000000-0000-4000-8000-00000000000b'), now(), 'under budget: now');

-- An edit of a cited memory: claims stripped in this transaction, the job deferred to the budget.
update public.memories set content = 'edited' where id = '61000000-0000-4000-8000-0000000000a1';
select is((select partial from public.user_narratives where user_id = '60000000-0000-4000-8000-00000000000a'), true,
  'the edit still strips the citing claim at once (partial)');
select is((select run_after from public.narrative_jobs where user_id = '60000000-0000-4000-8000-00000000000a' and status = 'queued'),
  now() + interval '4 hours', 'the memories_changed job waits for the budget, not the 10 s debounce');
select is((select count(*)::int from private.enqueue_job('60000000-0000-4000-8000-00000000000a', 'manual') e where not e.created), 1,
  'asking again returns the same job');
select is((select run_after from public.narrative_jobs where user_id = '60000000-0000-4000-8000-00000000000a' and status = 'queued'),
  now() + interval '4 hours', 'a pull-forward (delay 0) cannot bring it before the budget');
select is((select run_after from public.narrative_jobs where user_id = '60000000-0000-4000-8000-00000000000b' and status = 'queued'),
  null, 'B has no job (control)');
select private.enqueue_job('60000000-0000-4000-8000-00000000000b', 'manual');
select is((select run_after <= now() from public.narrative_jobs where user_id = '60000000-0000-4000-8000-00000000000b' and status = 'queued'),
  true, 'B under budget runs now');

-- What the user is told: the partial narrative (ready) with its refresh job and retry_after.
select tests.authenticate_as('60000000-0000-4000-8000-00000000000a');
select is((select status::text || '/' || job_status || '/' || retry_after_seconds from public.narrative_for_me('cache_miss')),
  'ready/queued/14400', 'narrative_for_me serves the partial narrative and says when the refresh may start');

-- Memory bounds, as a user writing through the Data API.
select throws_ok($$insert into public.memories (user_id, content, metadata)
  values ('60000000-0000-4000-8000-00000000000a', 'm', jsonb_build_object('k', repeat('x', 200)))$$,
  '23514', 'memory metadata is 209 bytes; at most 100 are allowed', 'metadata over the limit: 23514 with a clear message');
select is((select count(*)::int from public.memories where user_id = '60000000-0000-4000-8000-00000000000a'), 4, 'nothing stored');
select lives_ok($$insert into public.memories (user_id, content) values ('60000000-0000-4000-8000-00000000000a', 'five'),
  ('60000000-0000-4000-8000-00000000000a', 'six')$$, 'up to max_memories_per_user');
select throws_ok($$insert into public.memories (user_id, content) values ('60000000-0000-4000-8000-00000000000a', 'seven')$$,
  '23514', 'memory limit reached: at most 6 memories per user', 'one more is refused: 23514 with a clear message');
select tests.clear_authentication();

-- The count behind the limit: private.memory_counts, kept by the triggers. A hard delete gives
-- rows back; an account going away takes its row with it; and a bulk insert for three times as
-- many users as the shared lock table is sized for (max_locks_per_transaction x max_connections;
-- one advisory lock per user ran out of shared memory between 30,000 and 40,000 here) goes
-- through, because the count takes row locks, not advisory locks.
select is((select n from private.memory_counts where user_id = '60000000-0000-4000-8000-00000000000a'), 6, 'the count is the rows held');
delete from public.memories where user_id = '60000000-0000-4000-8000-00000000000a' and content in ('five', 'six');
select is((select n from private.memory_counts where user_id = '60000000-0000-4000-8000-00000000000a'), 4, 'a hard delete gives rows back');
select lives_ok($$insert into public.memories (user_id, content) values ('60000000-0000-4000-8000-00000000000a', 'five again')$$,
  'and the user may add again');
update public.memories set state = 'deleted' where user_id = '60000000-0000-4000-8000-00000000000a' and content = 'five again';
select is((select n from private.memory_counts where user_id = '60000000-0000-4000-8000-00000000000a'), 4,
  'a soft delete gives its room back too (the tombstone holds nothing)');
delete from public.memories where user_id = '60000000-0000-4000-8000-00000000000a' and state = 'deleted';
select is((select n from private.memory_counts where user_id = '60000000-0000-4000-8000-00000000000a'), 4,
  'and removing the tombstone later does not give it back twice');
create temp table many as
  select gen_random_uuid() as id from generate_series(1, 3 * current_setting('max_locks_per_transaction')::int
                                                             * current_setting('max_connections')::int);
insert into auth.users (id, email) select id, id || '@bulk.test' from many;
select lives_ok($$insert into public.memories (user_id, content) select id, 'bulk' from many$$,
  'one statement adding memories for more users than the lock table could hold locks for');
select is((select count(*)::int from private.memory_counts c join many m on m.id = c.user_id where c.n = 1), (select count(*)::int from many),
  'each of them counted once');
delete from auth.users where id in (select id from many);
select is((select count(*)::int from private.memory_counts c join many m on m.id = c.user_id), 0, 'accounts gone, counts gone');

-- MCP provider-call slots: mcp_llm_calls_per_user (2) at once, freed on release or expiry.
update private.settings set mcp_llm_calls_per_user = 2;
select is(array[private.take_llm_slot('60000000-0000-4000-8000-00000000000a', 30), private.take_llm_slot('60000000-0000-4000-8000-00000000000a', 30),
  private.take_llm_slot('60000000-0000-4000-8000-00000000000a', 30)], array[1, 2, null], 'two slots, then none');
select is(private.take_llm_slot('60000000-0000-4000-8000-00000000000b', 30), 1, 'another user has their own');
select private.release_llm_slot('60000000-0000-4000-8000-00000000000a', 2);
update private.llm_slots set expires_at = now() - interval '1 second' where slot = 1 and user_id = '60000000-0000-4000-8000-00000000000a';
select is(array[private.take_llm_slot('60000000-0000-4000-8000-00000000000a', 30), private.take_llm_slot('60000000-0000-4000-8000-00000000000a', 30)],
  array[1, 2], 'an expired slot and a released one are free again');

select * from finish();
rollback;
