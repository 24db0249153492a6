-- Tombstones are bounded (issue 19, item 6): a memory cannot be inserted as deleted (23514,
-- constraint memories_inserted_deleted, as the user through the Data API and as postgres, one
-- row or 50,000); a user keeps at most max_memories_per_user tombstones (soft-deleting past it
-- purges their oldest); the sweeper purges tombstones past tombstone_retention_days. A purge is
-- a hard delete of empty rows: no claim is touched and no job queued.
begin;
create extension if not exists pgtap with schema extensions;
\ir helpers.psql
select plan(18);

update private.settings set min_memories = 3, max_memories_per_user = 6, tombstone_retention_days = 30;
insert into auth.users (id, email) values
  ('c0000000-0000-4000-8000-00000000000a', 'tomb-a@example.test'),
  ('c0000000-0000-4000-8000-00000000000b', 'tomb-b@example.test');

-- The SQLSTATE, constraint and message a statement fails with (as the user when p_user is set),
-- or 'ok'.
create function pg_temp.error_of(p_sql text, p_user text default null) returns text language plpgsql as $$
declare
  v_state text;
  v_constraint text;
  v_message text;
begin
  if p_user is not null then
    perform tests.authenticate_as(p_user::uuid);
  end if;
  execute p_sql;
  perform tests.clear_authentication();
  return 'ok';
exception when others then
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name, v_message = message_text;
  perform tests.clear_authentication();
  return v_state || ' ' || v_constraint || ': ' || v_message;
end $$;

\set a '''c0000000-0000-4000-8000-00000000000a'''
\set b '''c0000000-0000-4000-8000-00000000000b'''

-- 1. No memory is inserted as deleted, whoever inserts it.
select is(pg_temp.error_of($$insert into public.memories (user_id, content, state) values ('c0000000-0000-4000-8000-00000000000a', '', 'deleted')$$, :a),
  '23514 memories_inserted_deleted: a memory cannot be inserted as deleted', 'as the user (the Data API path): 23514, named, clear');
select is(pg_temp.error_of($$insert into public.memories (user_id, content, state) values ('c0000000-0000-4000-8000-00000000000a', '', 'deleted')$$),
  '23514 memories_inserted_deleted: a memory cannot be inserted as deleted', 'as postgres too');
select is(pg_temp.error_of($$insert into public.memories (user_id, content, state)
    select 'c0000000-0000-4000-8000-00000000000a', '', 'deleted' from generate_series(1, 50000)$$),
  '23514 memories_inserted_deleted: a memory cannot be inserted as deleted', '50,000 tombstones in one statement: refused');
select is(pg_temp.error_of($$insert into public.memories (user_id, content, state) values
    ('c0000000-0000-4000-8000-00000000000a', 'fine', 'active'), ('c0000000-0000-4000-8000-00000000000a', '', 'deleted')$$, :a),
  '23514 memories_inserted_deleted: a memory cannot be inserted as deleted', 'one deleted row refuses the whole insert');
select is((select count(*)::int from public.memories where user_id = :a::uuid), 0, 'nothing was stored');
select is(pg_temp.error_of($$insert into public.memories (user_id, content, state) values ('c0000000-0000-4000-8000-00000000000a', 'kept aside', 'archived')$$, :a),
  'ok', 'an archived memory may be inserted');

-- 2. At most max_memories_per_user (6) tombstones per user. Six memories deleted, six more
-- added, three of those deleted: the three oldest tombstones go (equal deleted_at in this
-- transaction, so the order is by id: t01..t03).
delete from public.memories where user_id = :a::uuid;
insert into public.memories (id, user_id, content)
select ('c1000000-0000-4000-8000-0000000000' || lpad(g::text, 2, '0'))::uuid, :a::uuid, 'memory ' || g from generate_series(1, 6) g;
update public.memories set state = 'deleted' where user_id = :a::uuid;
select is((select n || '/' || tombstones from private.memory_counts where user_id = :a::uuid), '0/6', 'six tombstones counted, no room taken');
insert into public.memories (id, user_id, content)
select ('c1000000-0000-4000-8000-0000000000' || lpad(g::text, 2, '0'))::uuid, :a::uuid, 'memory ' || g from generate_series(7, 12) g;
select is(pg_temp.error_of($$update public.memories set state = 'deleted'
    where id in ('c1000000-0000-4000-8000-000000000007', 'c1000000-0000-4000-8000-000000000008', 'c1000000-0000-4000-8000-000000000009')$$, :a),
  'ok', 'the user soft-deletes three more');
select is((select count(*)::int from public.memories where user_id = :a::uuid and state = 'deleted'), 6, 'still six tombstones');
select is((select string_agg(right(id::text, 2), ',' order by id) from public.memories where user_id = :a::uuid and state = 'deleted'),
  '04,05,06,07,08,09', 'the oldest three were purged');
select is((select n || '/' || tombstones from private.memory_counts where user_id = :a::uuid), '3/6', 'the counts follow');
select is((select count(*)::int from public.memories where user_id = :a::uuid and state = 'active'), 3, 'active memories untouched');

-- 3. The sweeper purges tombstones past tombstone_retention_days, and nothing else: B has a
-- narrative on four active memories, one old tombstone and one recent one. (touch_memory keeps
-- deleted_at as the delete set it, so the test ages the old one with the trigger off.)
insert into public.memories (id, user_id, content)
select ('c2000000-0000-4000-8000-00000000000' || g)::uuid, :b::uuid, 'memory ' || g from generate_series(1, 6) g;
update public.memories set state = 'deleted' where id in ('c2000000-0000-4000-8000-000000000005', 'c2000000-0000-4000-8000-000000000006');
alter table public.memories disable trigger touch_memory;
update public.memories set deleted_at = now() - interval '31 days' where id = 'c2000000-0000-4000-8000-000000000005';
alter table public.memories enable trigger touch_memory;
insert into public.user_narratives (user_id, narrative_content, claims, cited_memory_ids, generated_at, memories_as_of)
select :b::uuid, private.render_claims(c), c, private.cited_ids(c), now(), now()
from (select jsonb_build_array(jsonb_build_object('section', 'Who they are', 'text', 'From b1.', 'memory_ids',
  jsonb_build_array('c2000000-0000-4000-8000-000000000001'))) c) x;
create temp table jobs_before as select id, status, changed_ids from public.narrative_jobs where user_id = :b::uuid;
create temp table swept as select private.sweep() as r;
select ok((select (r ->> 'purged_tombstones')::int >= 1 from swept), 'the sweep reports the tombstones it purged');
select is((select string_agg(right(id::text, 1), ',' order by id) from public.memories where user_id = :b::uuid and state = 'deleted'), '6',
  'the tombstone past retention is gone, the recent one stays');
select is((select n || '/' || tombstones from private.memory_counts where user_id = :b::uuid), '4/1', 'the counts follow');
select is((select partial::text || '/' || jsonb_array_length(claims) from public.user_narratives where user_id = :b::uuid), 'false/1',
  'the narrative is untouched (no claim work)');
select is((select count(*)::int from (select id, status, changed_ids from public.narrative_jobs where user_id = :b::uuid
                                     except select * from jobs_before) d), 0, 'and no job queued or changed');
select is((select count(*)::int from public.memories where user_id = :b::uuid and state = 'active'), 4, 'active memories untouched');

select * from finish();
rollback;
