-- Notes and history in SQL: notes under RLS (own rows, one line of 1..500 characters, at most
-- max_notes); a stored version is recorded with its exact diff and summary and pruned past
-- history_versions_kept; a narrative write drops claims quoting a changed note; deleting a
-- pinned note or a cited memory strips the narrative and every version in the same
-- transaction; a user left below eligibility keeps no history.
begin;
create extension if not exists pgtap with schema extensions;
\ir helpers.psql
select plan(23);

update private.settings set min_memories = 3, max_notes = 3, history_versions_kept = 2;
insert into auth.users (id, email) values
  ('60000000-0000-4000-8000-00000000000a', 'notes-a@example.test'),
  ('60000000-0000-4000-8000-00000000000b', 'notes-b@example.test');
insert into public.memories (id, user_id, content)
select ('61000000-0000-4000-8000-0000000000a' || g)::uuid, '60000000-0000-4000-8000-00000000000a', 'memory ' || g
from generate_series(1, 4) g;

-- Runs a statement as a user under RLS; answers 'ok' or the SQLSTATE it failed with.
create function pg_temp.as_user(p_user text, p_sql text) returns text language plpgsql as $$
begin
  perform tests.authenticate_as(p_user::uuid);
  execute p_sql;
  perform tests.clear_authentication();
  return 'ok';
exception when others then
  perform tests.clear_authentication();
  return sqlstate;
end $$;
create function pg_temp.count_as(p_user text, p_sql text) returns int language plpgsql as $$
declare
  n int;
begin
  perform tests.authenticate_as(p_user::uuid);
  execute p_sql into n;
  perform tests.clear_authentication();
  return n;
end $$;

\set a '''60000000-0000-4000-8000-00000000000a'''
\set b '''60000000-0000-4000-8000-00000000000b'''

select is(pg_temp.as_user(:a, $$insert into public.narrative_notes (id, content, pinned)
  values ('62000000-0000-4000-8000-0000000000a1', 'Call me Sam', true)$$), '42501', 'the id is the server''s (no grant)');
select is(pg_temp.as_user(:a, $$insert into public.narrative_notes (content, pinned) values ('Call me Sam', true)$$), 'ok', 'a user adds a note');
select is(pg_temp.count_as(:b, 'select count(*)::int from public.narrative_notes'), 0, 'another user reads none of it');
select is(pg_temp.as_user(:b, $$update public.narrative_notes set content = 'x'$$), 'ok', 'an update by another user runs');
select is((select content from public.narrative_notes where user_id = :a::uuid), 'Call me Sam', 'and changes nothing');
select is(pg_temp.as_user(:a, format($$insert into public.narrative_notes (content) values (%L)$$, repeat('x', 501))), '23514', '501 characters refused');
select is(pg_temp.as_user(:a, $$insert into public.narrative_notes (content) values (E'two\nlines')$$), '23514', 'a line break refused');
select is(pg_temp.as_user(:a, $$insert into public.narrative_notes (content) values ('two'), ('three')$$), 'ok', 'up to max_notes');
select throws_ok(format($$insert into public.narrative_notes (user_id, content) values (%L, 'four')$$, :a), '23514',
  'notes_limit: at most 3 notes per user; delete one first', 'past max_notes: a clear error');
select is(pg_temp.as_user(:b, $$insert into public.narrative_notes (content) values ('b''s own')$$), 'ok', 'the limit is per user');

-- Version 1 from the pipeline's write: a pinned claim quoting the note and two memory claims.
create function pg_temp.claim(p_section text, p_text text, p_memory text) returns jsonb language sql as $$
  select jsonb_build_object('section', p_section, 'text', p_text, 'memory_ids', jsonb_build_array('61000000-0000-4000-8000-0000000000a' || p_memory))
$$;
create function pg_temp.pinned() returns jsonb language sql as $$
  select jsonb_build_object('section', 'Pinned by you', 'text', 'Call me Sam', 'memory_ids', '[]'::jsonb,
    'note_ids', jsonb_build_array(id)) from public.narrative_notes
  where user_id = '60000000-0000-4000-8000-00000000000a' and content = 'Call me Sam'
$$;
insert into public.user_narratives (user_id, narrative_content, claims, cited_memory_ids, generated_at, memories_as_of)
select :a::uuid, private.render_claims(c), c, private.cited_ids(c), now(), now()
from (select jsonb_build_array(pg_temp.pinned(), pg_temp.claim('Who they are', 'One.', '1'), pg_temp.claim('Who they are', 'Two.', '2')) c) x;
select is((select summary from public.user_narrative_versions where user_id = :a::uuid and version = 1),
  '3 added, 0 removed, 0 kept — new in Pinned by you: Call me Sam', 'version 1 recorded with its summary');

-- Version 2: One kept, Two removed, Three added.
update public.user_narratives set version = 2, claims = c, cited_memory_ids = private.cited_ids(c), narrative_content = private.render_claims(c)
from (select jsonb_build_array(pg_temp.pinned(), pg_temp.claim('Who they are', 'One.', '1'), pg_temp.claim('Current work and trajectory', 'Three.', '3')) c) x
where user_id = :a::uuid;
select is((select changes from public.user_narrative_versions where user_id = :a::uuid and version = 2),
  jsonb_build_object('added', jsonb_build_array(pg_temp.claim('Current work and trajectory', 'Three.', '3')),
    'removed', jsonb_build_array(pg_temp.claim('Who they are', 'Two.', '2')),
    'kept', jsonb_build_array(pg_temp.pinned(), pg_temp.claim('Who they are', 'One.', '1'))),
  'version 2: exact added, removed and kept');
select is(pg_temp.count_as(:b, 'select count(*)::int from public.user_narrative_versions'), 0, 'another user reads none of the history');

-- A write quoting a note with other text (it changed while generating) drops that claim.
update public.user_narratives set claims = claims || jsonb_build_array(jsonb_build_object('section', 'Pinned by you', 'text', 'Call me Bob',
  'memory_ids', '[]'::jsonb, 'note_ids', pg_temp.pinned() -> 'note_ids'))
where user_id = :a::uuid;
select is((select jsonb_array_length(claims) from public.user_narratives where user_id = :a::uuid), 3, 'a claim quoting a changed note is not stored');

-- Deleting a cited memory strips every version in the same transaction.
delete from public.memories where id = '61000000-0000-4000-8000-0000000000a1';
select is((select count(*)::int from public.user_narrative_versions where user_id = :a::uuid
  and (claims::text like '%One.%' or changes::text like '%One.%' or narrative_content like '%One.%')), 0, 'a deleted memory''s claims leave every version');
select is((select summary from public.user_narrative_versions where user_id = :a::uuid and version = 2),
  '1 added, 1 removed, 1 kept — new in Current work and trajectory: Three.', 'the summary follows');

-- Deleting the pinned note strips the narrative and every version.
select is(pg_temp.as_user(:a, $$delete from public.narrative_notes where content = 'Call me Sam'$$), 'ok', 'the user deletes the pinned note');
select is((select count(*)::int from public.user_narratives where user_id = :a::uuid and narrative_content like '%Call me Sam%')
  + (select count(*)::int from public.user_narrative_versions where user_id = :a::uuid and (claims::text || changes::text || narrative_content) like '%Call me Sam%'),
  0, 'the pinned note leaves the narrative and every version in the deleting transaction');

-- Pruning: a third version leaves the two newest.
update public.user_narratives set version = 3 where user_id = :a::uuid;
select is((select array_agg(version order by version) from public.user_narrative_versions where user_id = :a::uuid), array[2, 3], 'pruned past history_versions_kept');
select is((select summary from public.user_narrative_versions where user_id = :a::uuid and version = 3), '0 added, 0 removed, 1 kept',
  'a version that adds nothing: just the counts');

-- The summary line itself, with and without additions (a long first claim is cut at 80 characters).
select is(private.changes_summary(jsonb_build_object('added', '[]'::jsonb,
    'removed', jsonb_build_array(pg_temp.claim('Who they are', 'Two.', '2')), 'kept', jsonb_build_array(pg_temp.claim('Who they are', 'One.', '1')))),
  '0 added, 1 removed, 1 kept', 'nothing added: no "new in" tail');
select is(private.changes_summary(jsonb_build_object('added', jsonb_build_array(pg_temp.claim('Recurring themes and patterns', repeat('y', 81), '3'),
    pg_temp.claim('Who they are', 'Later.', '4')), 'removed', '[]'::jsonb, 'kept', '[]'::jsonb)),
  '2 added, 0 removed, 0 kept — new in Recurring themes and patterns: ' || repeat('y', 79) || '…', 'with additions: the first one, cut at 80 characters');

-- Below eligibility: no narrative, no history.
delete from public.memories where user_id = :a::uuid;
select is((select count(*)::int from public.user_narrative_versions where user_id = :a::uuid), 0, 'an ineligible user keeps no history');

select * from finish();
rollback;
