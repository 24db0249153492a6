-- Claims: the SQL renderer (twin of shared/narrative.ts renderClaims), the citation index, and
-- what a delete, archive or edit of a cited memory does to the stored narrative in the same
-- transaction (claims citing it removed, content re-rendered, partial), and to a user left
-- below eligibility (no narrative row).
begin;
create extension if not exists pgtap with schema extensions;
\ir helpers.psql
select plan(20);

update private.settings set min_memories = 3;
insert into auth.users (id, email) values
  ('50000000-0000-4000-8000-00000000000a', 'claims-a@example.test'),
  ('50000000-0000-4000-8000-00000000000b', 'claims-b@example.test');
insert into public.memories (id, user_id, content)
select ('51000000-0000-4000-8000-0000000000' || u || g)::uuid, ('50000000-0000-4000-8000-00000000000' || u)::uuid, 'memory ' || g
from unnest(array['a', 'b']) u, generate_series(1, 4) g;

-- A's narrative: claim 1 cites a1, claim 2 cites a1 and a2, claim 3 cites a3.
create function pg_temp.claims(p_user text) returns jsonb language sql as $$
  select jsonb_build_array(
    jsonb_build_object('section', 'Who they are', 'text', 'One from ' || p_user || '1.', 'memory_ids', jsonb_build_array('51000000-0000-4000-8000-0000000000' || p_user || '1')),
    jsonb_build_object('section', 'Recurring themes and patterns', 'text', 'Two from ' || p_user || '1 and ' || p_user || '2.',
      'memory_ids', jsonb_build_array('51000000-0000-4000-8000-0000000000' || p_user || '1', '51000000-0000-4000-8000-0000000000' || p_user || '2')),
    jsonb_build_object('section', 'Who they are', 'text', 'Three from ' || p_user || '3.', 'memory_ids', jsonb_build_array('51000000-0000-4000-8000-0000000000' || p_user || '3')))
$$;
insert into public.user_narratives (user_id, narrative_content, claims, cited_memory_ids, generated_at, memories_as_of)
select ('50000000-0000-4000-8000-00000000000' || u)::uuid, private.render_claims(pg_temp.claims(u)), pg_temp.claims(u),
  private.cited_ids(pg_temp.claims(u)), now(), now()
from unnest(array['a', 'b']) u;

select is(private.render_claims(pg_temp.claims('a')),
  E'## Who they are\n\n- One from a1.\n- Three from a3.\n\n## Current work and trajectory\n\nNot enough information yet.\n\n'
  || E'## How to interact with them\n\nNot enough information yet.\n\n## Recurring themes and patterns\n\n- Two from a1 and a2.\n',
  'render_claims: four sections in order, claims as bullets, empty sections say so');
select ok(private.render_claims('[{"section": "Pinned by you", "text": "Call me Sam.", "memory_ids": []}]') like E'## Pinned by you\n\n- Call me Sam.\n\n## Who they are%',
  'render_claims: "Pinned by you" first, only when it has claims');
select is(private.cited_ids(pg_temp.claims('a')) @> array['51000000-0000-4000-8000-0000000000a1', '51000000-0000-4000-8000-0000000000a2',
  '51000000-0000-4000-8000-0000000000a3']::uuid[] and cardinality(private.cited_ids(pg_temp.claims('a'))) = 3, true, 'cited_ids: the distinct cited memories');
select ok((select indexdef like '%USING gin (cited_memory_ids)%' from pg_indexes where indexname = 'user_narratives_cited_memory_ids_idx'),
  'which narratives cite a memory: a GIN index');

delete from public.memories where id = '51000000-0000-4000-8000-0000000000a1';
select is((select jsonb_array_length(claims) from user_narratives where user_id = '50000000-0000-4000-8000-00000000000a'), 1,
  'delete: both claims citing a1 removed');
select is((select narrative_content from user_narratives where user_id = '50000000-0000-4000-8000-00000000000a'),
  private.render_claims((select claims from user_narratives where user_id = '50000000-0000-4000-8000-00000000000a')),
  'delete: content re-rendered from the remaining claims');
select ok((select narrative_content not like '%a1%' and partial and removed_claims = 2
           and not ('51000000-0000-4000-8000-0000000000a1'::uuid = any (cited_memory_ids))
           from user_narratives where user_id = '50000000-0000-4000-8000-00000000000a'),
  'delete: no text from it, partial, counted, and out of the citation index');
select is((select reason from narrative_jobs where user_id = '50000000-0000-4000-8000-00000000000a' and status = 'queued'),
  'memories_changed', 'delete: a regeneration is queued');
select is((select claims from user_narratives where user_id = '50000000-0000-4000-8000-00000000000b'), pg_temp.claims('b'),
  'another user''s narrative is untouched');

update public.memories set content = 'memory 3, edited' where id = '51000000-0000-4000-8000-0000000000a3';
select is((select jsonb_array_length(claims) || ':' || removed_claims from user_narratives where user_id = '50000000-0000-4000-8000-00000000000a'),
  '0:3', 'edit: its claim removed too');
update public.memories set metadata = '{"importance": 1}' where id = '51000000-0000-4000-8000-0000000000b3';
select is((select partial from user_narratives where user_id = '50000000-0000-4000-8000-00000000000b'), false, 'a metadata edit removes nothing');
update public.memories set state = 'archived' where id = '51000000-0000-4000-8000-0000000000b3';
select is((select jsonb_array_length(claims) || ':' || partial from user_narratives where user_id = '50000000-0000-4000-8000-00000000000b'),
  '2:true', 'archive: its claim removed');

-- A soft delete is real: the row stays as a tombstone without its text or metadata, the user
-- reading the table directly gets nothing of it, and it cannot be brought back.
update public.memories set metadata = '{"importance": 0.9, "source": "chat"}' where id = '51000000-0000-4000-8000-0000000000b4';
update public.memories set state = 'deleted' where id = '51000000-0000-4000-8000-0000000000b4';
select is((select content || ':' || metadata::text || ':' || (deleted_at is not null) || ':' || (importance is null)
           from public.memories where id = '51000000-0000-4000-8000-0000000000b4'),
  ':{}:true:true', 'soft delete: content and metadata emptied, deleted_at set');
select tests.authenticate_as('50000000-0000-4000-8000-00000000000b');
select is((select content from public.memories where id = '51000000-0000-4000-8000-0000000000b4'), '',
  'a direct select as the user returns no text of the deleted memory');
select throws_ok($$update public.memories set state = 'active' where id = '51000000-0000-4000-8000-0000000000b4'$$,
  '23514', null, 'a deleted memory cannot be restored');
select throws_ok($$update public.memories set state = 'active', content = 'back' where id = '51000000-0000-4000-8000-0000000000b4'$$,
  '23514', null, 'not even with new text');
select tests.clear_authentication();
select throws_ok($$insert into public.memories (user_id, content) values ('50000000-0000-4000-8000-00000000000b', '')$$,
  '23514', null, 'an empty memory is still refused');
select throws_ok($$insert into public.memories (user_id, content, state) values ('50000000-0000-4000-8000-00000000000b', 'secret', 'deleted')$$,
  '23514', null, 'a memory inserted as deleted must be an empty tombstone too');

-- Below min_memories (3): nothing is kept.
delete from public.memories where id = '51000000-0000-4000-8000-0000000000a2';
select is((select count(*)::int from user_narratives where user_id = '50000000-0000-4000-8000-00000000000a'), 0,
  'delete until ineligible: the narrative row is gone');
select is((select count(*)::int from narrative_jobs where user_id = '50000000-0000-4000-8000-00000000000a' and status = 'queued'), 1,
  'the queued job stays (it fails not_eligible when it runs)');

select * from finish();
rollback;
