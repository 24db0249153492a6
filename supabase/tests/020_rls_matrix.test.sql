-- RLS matrix: every table in the exposed schema x (anon, user A, user B, service_role) x
-- (select, insert, update, delete), plus: RLS is on for every exposed table, and the internals
-- are not executable by the API roles. Runs as postgres (not a superuser) on a database with no
-- default grants: what a role may do comes only from the grants beside each table (see
-- 030_grants for each grant's necessity). anon and service_role hold none: permission denied.
begin;
create extension if not exists pgtap with schema extensions;
\ir helpers.psql
select plan(58);

-- Exposed schema hygiene.
select is(
  (select coalesce(array_agg(tablename::text order by tablename), '{}') from pg_tables where schemaname = 'public' and not rowsecurity),
  '{}'::text[], 'every table in public has row level security enabled');
select is(
  (select coalesce(array_agg(p.proname::text order by p.proname), '{}') from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname = 'private' and (has_function_privilege('anon', p.oid, 'execute') or has_function_privilege('authenticated', p.oid, 'execute')
     or has_function_privilege('service_role', p.oid, 'execute'))),
  '{}'::text[], 'no private function is executable by anon, authenticated or service_role');
select ok(has_function_privilege('authenticated', 'public.narrative_for_me(text, text)', 'execute'), 'users may request their own narrative');
select ok(not has_function_privilege('anon', 'public.narrative_for_me(text, text)', 'execute'), 'anon may not');
select ok(not has_function_privilege('service_role', 'public.narrative_for_me(text, text)', 'execute'), 'service_role may not (it needs a user)');
select ok(not has_schema_privilege('authenticated', 'private', 'usage'), 'the private schema is not reachable by users');

-- Fixtures (as postgres, the tables' owner): users A and B, each with a memory, a narrative and a job.
insert into auth.users (id, email) values
  ('20000000-0000-4000-8000-00000000000a', 'rls-a@example.test'),
  ('20000000-0000-4000-8000-00000000000b', 'rls-b@example.test');
insert into memories (id, user_id, content) values
  ('21000000-0000-4000-8000-00000000000a', '20000000-0000-4000-8000-00000000000a', 'A memory'),
  ('21000000-0000-4000-8000-00000000000b', '20000000-0000-4000-8000-00000000000b', 'B memory');
insert into user_narratives (user_id, narrative_content, generated_at, memories_as_of) values
  ('20000000-0000-4000-8000-00000000000a', 'A narrative', now(), now()),
  ('20000000-0000-4000-8000-00000000000b', 'B narrative', now(), now());
insert into narrative_jobs (user_id, reason, status, finished_at) values
  ('20000000-0000-4000-8000-00000000000a', 'manual', 'succeeded', now()),
  ('20000000-0000-4000-8000-00000000000b', 'manual', 'succeeded', now());

-- Rows a data-changing statement touched, under whatever role is current.
create function pg_temp.affected(p_sql text) returns int language plpgsql as $$
declare
  n int;
begin
  execute p_sql;
  get diagnostics n = row_count;
  return n;
end $$;

-- anon: no grant at all, so every statement is refused before RLS is even consulted.
select tests.authenticate_as(null, 'anon');
select throws_ok($$select count(*) from memories$$, '42501', null, 'anon: select memories -> denied');
select throws_ok($$select count(*) from user_narratives$$, '42501', null, 'anon: select narratives -> denied');
select throws_ok($$select count(*) from narrative_jobs$$, '42501', null, 'anon: select jobs -> denied');
select throws_ok($$insert into memories (user_id, content) values ('20000000-0000-4000-8000-00000000000a', 'x')$$, '42501', null, 'anon: insert memory -> denied');
select throws_ok($$insert into user_narratives (user_id, narrative_content, generated_at, memories_as_of) values ('20000000-0000-4000-8000-00000000000a', 'x', now(), now())$$, '42501', null, 'anon: insert narrative -> denied');
select throws_ok($$insert into narrative_jobs (user_id, reason) values ('20000000-0000-4000-8000-00000000000a', 'manual')$$, '42501', null, 'anon: insert job -> denied');
select throws_ok($$update memories set content = 'x'$$, '42501', null, 'anon: update memories -> denied (no column privileges)');
select throws_ok($$update user_narratives set narrative_content = 'x'$$, '42501', null, 'anon: update narratives -> denied');
select throws_ok($$update narrative_jobs set status = 'failed'$$, '42501', null, 'anon: update jobs -> denied');
select throws_ok($$delete from memories$$, '42501', null, 'anon: delete memories -> denied');
select throws_ok($$delete from user_narratives$$, '42501', null, 'anon: delete narratives -> denied');
select throws_ok($$delete from narrative_jobs$$, '42501', null, 'anon: delete jobs -> denied');
select tests.clear_authentication();

-- Users A and B: their own rows only; narratives and jobs are read-only.
select tests.authenticate_as('20000000-0000-4000-8000-00000000000a');
select results_eq($$select content from memories$$, $$values ('A memory')$$, 'A: select memories -> only A''s');
select results_eq($$select narrative_content from user_narratives$$, $$values ('A narrative')$$, 'A: select narratives -> only A''s');
select results_eq($$select user_id::text from narrative_jobs$$, $$values ('20000000-0000-4000-8000-00000000000a')$$, 'A: select jobs -> only A''s');
select lives_ok($$insert into memories (user_id, content) values ('20000000-0000-4000-8000-00000000000a', 'A new')$$, 'A: insert own memory -> ok');
select throws_ok($$insert into memories (user_id, content) values ('20000000-0000-4000-8000-00000000000b', 'planted')$$, '42501', null, 'A: insert memory for B -> denied');
select throws_ok($$insert into memories (user_id, content, created_at) values ('20000000-0000-4000-8000-00000000000a', 'x', now() + interval '1 year')$$, '42501', null, 'A: set created_at -> denied (the server''s clock decides)');
select is(pg_temp.affected($q$update memories set content = 'A edited' where id = '21000000-0000-4000-8000-00000000000a'$q$), 1, 'A: update own memory -> 1 row');
select is(pg_temp.affected($q$update memories set content = 'hacked' where id = '21000000-0000-4000-8000-00000000000b'$q$), 0, 'A: update B''s memory -> 0 rows');
select throws_ok($$update memories set user_id = '20000000-0000-4000-8000-00000000000b' where id = '21000000-0000-4000-8000-00000000000a'$$, '42501', null, 'A: give a memory to B -> denied');
select is(pg_temp.affected($q$delete from memories where id = '21000000-0000-4000-8000-00000000000b'$q$), 0, 'A: delete B''s memory -> 0 rows');
select throws_ok($$insert into user_narratives (user_id, narrative_content, generated_at, memories_as_of) values ('20000000-0000-4000-8000-00000000000a', 'x', now(), now())$$, '42501', null, 'A: insert narrative -> denied');
select throws_ok($$update user_narratives set narrative_content = 'x'$$, '42501', null, 'A: update own narrative -> denied');
select throws_ok($$delete from user_narratives$$, '42501', null, 'A: delete narrative -> denied');
select throws_ok($$insert into narrative_jobs (user_id, reason) values ('20000000-0000-4000-8000-00000000000a', 'manual')$$, '42501', null, 'A: insert job -> denied');
select throws_ok($$update narrative_jobs set status = 'queued'$$, '42501', null, 'A: update job -> denied');
select throws_ok($$delete from narrative_jobs$$, '42501', null, 'A: delete job -> denied');
select is(pg_temp.affected($q$delete from memories where id = '21000000-0000-4000-8000-00000000000a'$q$), 1, 'A: delete own memory -> 1 row');
select tests.clear_authentication();

select tests.authenticate_as('20000000-0000-4000-8000-00000000000b');
select results_eq($$select content from memories$$, $$values ('B memory')$$, 'B: select memories -> only B''s (A''s edits invisible)');
select results_eq($$select narrative_content from user_narratives$$, $$values ('B narrative')$$, 'B: select narratives -> only B''s');
select results_eq($$select user_id::text from narrative_jobs$$, $$values ('20000000-0000-4000-8000-00000000000b')$$, 'B: select jobs -> only B''s');
select throws_ok($$insert into memories (user_id, content) values ('20000000-0000-4000-8000-00000000000a', 'planted')$$, '42501', null, 'B: insert memory for A -> denied');
select is(pg_temp.affected($q$update memories set content = 'hacked' where user_id = '20000000-0000-4000-8000-00000000000a'$q$), 0, 'B: update A''s memories -> 0 rows');
select is(pg_temp.affected($q$delete from memories where user_id = '20000000-0000-4000-8000-00000000000a'$q$), 0, 'B: delete A''s memories -> 0 rows');
select throws_ok($$update user_narratives set narrative_content = 'x'$$, '42501', null, 'B: update narratives -> denied');
select throws_ok($$delete from user_narratives$$, '42501', null, 'B: delete narratives -> denied');
select throws_ok($$insert into narrative_jobs (user_id, reason) values ('20000000-0000-4000-8000-00000000000b', 'manual')$$, '42501', null, 'B: insert job -> denied');
select throws_ok($$delete from narrative_jobs$$, '42501', null, 'B: delete jobs -> denied');
select tests.clear_authentication();

-- service_role: bypasses RLS, but holds no grant: no code here uses it (service callers of the
-- functions run on the postgres connection), so the secret key opens no table via the Data API.
select tests.authenticate_as(null, 'service_role');
select throws_ok($$select count(*) from memories$$, '42501', null, 'service_role: select memories -> denied');
select throws_ok($$select count(*) from user_narratives$$, '42501', null, 'service_role: select narratives -> denied');
select throws_ok($$select count(*) from narrative_jobs$$, '42501', null, 'service_role: select jobs -> denied');
select throws_ok($$insert into memories (user_id, content) values ('20000000-0000-4000-8000-00000000000b', 'by service')$$, '42501', null, 'service_role: insert memory -> denied');
select throws_ok($$update user_narratives set narrative_content = 'by service'$$, '42501', null, 'service_role: update narrative -> denied');
select throws_ok($$update narrative_jobs set last_error = 'note'$$, '42501', null, 'service_role: update job -> denied');
select throws_ok($$delete from memories$$, '42501', null, 'service_role: delete memory -> denied');
select throws_ok($$delete from narrative_jobs$$, '42501', null, 'service_role: delete job -> denied');
select throws_ok($$delete from user_narratives$$, '42501', null, 'service_role: delete narrative -> denied');
select throws_ok($$insert into user_narratives (user_id, narrative_content, generated_at, memories_as_of) values ('20000000-0000-4000-8000-00000000000b', 'again', now(), now())$$, '42501', null, 'service_role: insert narrative -> denied');
select throws_ok($$insert into narrative_jobs (user_id, reason, status, finished_at) values ('20000000-0000-4000-8000-00000000000b', 'manual', 'failed', now())$$, '42501', null, 'service_role: insert job -> denied');
select tests.clear_authentication();

-- The pipeline's writes, as postgres (the functions' connection, cron, the dispatch trigger).
select lives_ok($$update user_narratives set narrative_content = 'by the pipeline' where user_id = '20000000-0000-4000-8000-00000000000b'$$, 'postgres: update narrative -> ok');
select lives_ok($$select private.enqueue_job('20000000-0000-4000-8000-00000000000b', 'manual')$$, 'postgres: run the queue functions -> ok');

select * from finish();
rollback;
