-- Grants: each one the migrations make is needed (revoking it breaks the operation it exists
-- for, named in the test) and they are all there is (the inventory below is exact). Runs as
-- postgres, which is not a superuser, on a database whose default privileges grant the API
-- roles nothing, as a hosted project's.
begin;
create extension if not exists pgtap with schema extensions;
\ir helpers.psql
select plan(28);

-- The platform as hosted sets it up (local/bootstrap/supabase.sql).
select ok((select not rolsuper and rolcreaterole and rolcreatedb and rolreplication and rolbypassrls
           from pg_roles where rolname = 'postgres'), 'postgres: not a superuser; createrole, createdb, replication, bypassrls');
select ok((select bool_and(rolinherit) from pg_roles where rolname in ('anon', 'authenticated', 'service_role')), 'API roles inherit');
select ok((select not rolinherit from pg_roles where rolname = 'authenticator'), 'authenticator is noinherit');
select ok(pg_has_role('postgres', 'authenticated', 'member') and pg_has_role('postgres', 'anon', 'member')
          and pg_has_role('postgres', 'service_role', 'member'), 'postgres is a member of the API roles');
select is((select count(*)::int from pg_default_acl d, aclexplode(d.defaclacl) a
           where d.defaclrole = 'postgres'::regrole and a.grantee in ('anon'::regrole, 'authenticated'::regrole, 'service_role'::regrole)),
          0, 'nothing postgres creates is granted to the API roles by default');

-- Exactly these privileges of the API roles on what the migrations made (tables, columns,
-- functions, sequences and schemas in public and private).
select is((select array_agg(g::text collate "C" order by g::text collate "C") from (
  select format('%s %s %s', a.grantee::regrole, a.privilege_type, c.oid::regclass)
  from pg_class c, aclexplode(c.relacl) a
  where c.relnamespace in ('public'::regnamespace, 'private'::regnamespace)
    and a.grantee in ('anon'::regrole, 'authenticated'::regrole, 'service_role'::regrole, 0)
  union all
  select format('%s %s (%s) %s', a.grantee::regrole, a.privilege_type, att.attname, att.attrelid::regclass)
  from pg_attribute att join pg_class c on c.oid = att.attrelid, aclexplode(att.attacl) a
  where c.relnamespace in ('public'::regnamespace, 'private'::regnamespace)
    and a.grantee in ('anon'::regrole, 'authenticated'::regrole, 'service_role'::regrole, 0)
  union all
  select format('%s %s %s', case when a.grantee = 0 then 'PUBLIC' else a.grantee::regrole::text end, a.privilege_type, p.oid::regprocedure)
  from pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
  where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace)
    and a.grantee in ('anon'::regrole, 'authenticated'::regrole, 'service_role'::regrole, 0)
  union all
  select format('%s %s schema %s', a.grantee::regrole, a.privilege_type, n.nspname)
  from pg_namespace n, aclexplode(n.nspacl) a
  where n.nspname = 'private' and a.grantee in ('anon'::regrole, 'authenticated'::regrole, 'service_role'::regrole, 0)
  ) s(g)),
  array[
    'authenticated DELETE memories',
    'authenticated DELETE narrative_notes',
    'authenticated EXECUTE narrative_for_me(text,text)',
    'authenticated INSERT (content) memories',
    'authenticated INSERT (content) narrative_notes',
    'authenticated INSERT (metadata) memories',
    'authenticated INSERT (pinned) narrative_notes',
    'authenticated INSERT (state) memories',
    'authenticated INSERT (user_id) memories',
    'authenticated SELECT memories',
    'authenticated SELECT narrative_jobs',
    'authenticated SELECT narrative_notes',
    'authenticated SELECT user_narrative_versions',
    'authenticated SELECT user_narratives',
    'authenticated UPDATE (content) memories',
    'authenticated UPDATE (content) narrative_notes',
    'authenticated UPDATE (metadata) memories',
    'authenticated UPDATE (pinned) narrative_notes',
    'authenticated UPDATE (state) memories']::text[],
  'the API roles hold exactly the grants the migrations write out, nothing for anon or service_role');

-- Fixtures: user A with a memory, a narrative and a job.
insert into auth.users (id, email) values ('30000000-0000-4000-8000-00000000000a', 'grants-a@example.test');
insert into memories (id, user_id, content) values ('31000000-0000-4000-8000-00000000000a', '30000000-0000-4000-8000-00000000000a', 'A memory');
insert into user_narratives (user_id, narrative_content, generated_at, memories_as_of)
  values ('30000000-0000-4000-8000-00000000000a', 'A narrative', now(), now());
insert into narrative_jobs (user_id, reason, status, finished_at)
  values ('30000000-0000-4000-8000-00000000000a', 'manual', 'succeeded', now());

-- Runs p_sql as user A twice, each time rolled back: with every grant (it must work), then with
-- p_grant revoked (it must fail with 42501, permission denied); then grants it again.
create function pg_temp.as_user_a(p_sql text) returns text language plpgsql as $$
begin
  begin
    perform tests.authenticate_as('30000000-0000-4000-8000-00000000000a');
    execute p_sql;
    raise exception using errcode = 'P0001', message = 'ran';
  exception when others then
    return case when sqlerrm = 'ran' then 'ok' else sqlstate end;
  end;
end $$;
create function pg_temp.needed(p_grant text, p_sql text, p_what text) returns text language plpgsql as $$
declare
  v_with text := pg_temp.as_user_a(p_sql);
  v_without text;
begin
  execute 'revoke ' || p_grant || ' from authenticated';
  v_without := pg_temp.as_user_a(p_sql);
  execute 'grant ' || p_grant || ' to authenticated';
  return ok(v_with = 'ok' and v_without = '42501',
    format('grant %s to authenticated is needed: %s (with it: %s, without: %s)', p_grant, p_what, v_with, v_without));
end $$;

select pg_temp.needed('select on public.memories',
  'select content from public.memories', 'users read their memories (orchestrate, MCP list/search)');
select pg_temp.needed('delete on public.memories',
  $$delete from public.memories where id = '31000000-0000-4000-8000-00000000000a'$$, 'users delete their memories');
select pg_temp.needed('insert (user_id) on public.memories',
  $$insert into public.memories (user_id, content) values ((select auth.uid()), 'new')$$, 'users add memories (MCP add_memories): user_id');
select pg_temp.needed('insert (content) on public.memories',
  $$insert into public.memories (user_id, content) values ((select auth.uid()), 'new')$$, 'users add memories: content');
select pg_temp.needed('insert (metadata) on public.memories',
  $$insert into public.memories (user_id, content, metadata) values ((select auth.uid()), 'new', '{"importance": 0.5}')$$, 'users add memories with metadata');
select pg_temp.needed('insert (state) on public.memories',
  $$insert into public.memories (user_id, content, state) values ((select auth.uid()), 'new', 'archived')$$, 'users add memories with a state');
select pg_temp.needed('update (content) on public.memories',
  $$update public.memories set content = 'edited' where id = '31000000-0000-4000-8000-00000000000a'$$, 'users edit a memory');
select pg_temp.needed('update (metadata) on public.memories',
  $$update public.memories set metadata = '{"importance": 1}' where id = '31000000-0000-4000-8000-00000000000a'$$, 'users edit a memory''s metadata');
select pg_temp.needed('update (state) on public.memories',
  $$update public.memories set state = 'archived' where id = '31000000-0000-4000-8000-00000000000a'$$, 'users archive or delete a memory');
select pg_temp.needed('select on public.user_narratives',
  'select narrative_content from public.user_narratives', 'users read their narrative (GET narrative, orchestrate, MCP get_narrative)');
select pg_temp.needed('select on public.user_narratives',
  'select claims, cited_memory_ids, partial, removed_claims from public.user_narratives', 'users read their narrative''s claims and citations');
select pg_temp.needed('insert (content, pinned) on public.narrative_notes',
  $$insert into public.narrative_notes (content, pinned) values ('Call me Sam', true)$$, 'users add notes (supabase-js)');
select pg_temp.needed('select on public.narrative_notes',
  'select content, pinned from public.narrative_notes', 'users read their notes');
select pg_temp.needed('update (content, pinned) on public.narrative_notes',
  $$update public.narrative_notes set content = 'Call me Sammy', pinned = false$$, 'users edit their notes');
select pg_temp.needed('delete on public.narrative_notes',
  'delete from public.narrative_notes', 'users delete their notes');
select pg_temp.needed('select on public.user_narrative_versions',
  'select version, summary, changes from public.user_narrative_versions', 'users read their history (GET narrative/history)');
select pg_temp.needed('select on public.narrative_jobs',
  'select status from public.narrative_jobs', 'users read their jobs');
select pg_temp.needed('execute on function public.narrative_for_me(text, text)',
  $$select * from public.narrative_for_me('manual')$$, 'users ask for a narrative (GET/POST narrative, orchestrate, MCP)');

-- And nothing else is reachable: what a user may not do stays denied with every grant in place.
select is(pg_temp.as_user_a($$insert into public.memories (user_id, content, created_at) values ((select auth.uid()), 'x', now())$$),
  '42501', 'users cannot set created_at (no grant)');
select is(pg_temp.as_user_a('select private.sweep()'), '42501', 'users cannot run private functions');
select is(pg_temp.as_user_a('update public.narrative_jobs set status = ''queued'''), '42501', 'users cannot write jobs');
select is(pg_temp.as_user_a($$update public.narrative_notes set user_id = gen_random_uuid()$$), '42501', 'users cannot move a note to someone else (no grant on user_id)');

select * from finish();
rollback;
