-- Change detection by identity (issue 19, item 5): a memory or note changed after a job was
-- claimed is listed on the job (changed_ids) and complete_job drops every claim citing it, even
-- when the change's updated_at is older than the generation's read (p_as_of one minute ahead
-- here: an editing transaction that began before the read). A change before the claim is in
-- what the attempt reads (the claim clears the list); a note added meanwhile drops nothing but
-- queues the next job; more changes than max_tracked_changes store nothing. The concurrent
-- orderings themselves are proved through the stack (tests/edits-during-generation.test.ts).
begin;
create extension if not exists pgtap with schema extensions;
select plan(20);

update private.settings set min_memories = 3, change_debounce_seconds = 0, max_tracked_changes = 3,
  max_concurrency = (select count(*) + 10 from narrative_jobs where status = 'running');
insert into auth.users (id, email)
select ('b0000000-0000-4000-8000-00000000000' || u)::uuid, 'changes-' || u || '@example.test' from unnest(array['a', 'b', 'c', 'd']) u;
insert into public.memories (id, user_id, content)
select ('b1000000-0000-4000-8000-0000000000' || u || g)::uuid, ('b0000000-0000-4000-8000-00000000000' || u)::uuid, 'memory ' || u || g
from unnest(array['a', 'b', 'c', 'd']) u, generate_series(1, 5) g;

create function pg_temp.uid(p text) returns uuid language sql as $$ select ('b0000000-0000-4000-8000-00000000000' || p)::uuid $$;
create function pg_temp.mid(p text) returns text language sql as $$ select 'b1000000-0000-4000-8000-0000000000' || p $$;
-- A claim citing memories (ids like 'a1') and notes.
create function pg_temp.claim(p_text text, p_memories text[], p_notes uuid[] default '{}') returns jsonb language sql as $$
  select jsonb_build_object('section', 'Who they are', 'text', p_text,
    'memory_ids', (select coalesce(jsonb_agg(pg_temp.mid(m)), '[]'::jsonb) from unnest(p_memories) m))
    || case when cardinality(p_notes) > 0 then jsonb_build_object('note_ids', to_jsonb(p_notes)) else '{}'::jsonb end
$$;
-- Enqueues and claims the user's job; its id and lease.
create function pg_temp.claimed(p text) returns table (job_id bigint, lease uuid) language sql as $$
  select c.job_id, (select l.lease_token from private.claim_job(c.job_id) l)
  from (select e.job_id from private.enqueue_job(pg_temp.uid(p), 'manual') e) c
$$;
-- complete_job as generate-narrative calls it, read "a minute after" every change made here.
create function pg_temp.complete(p_job bigint, p_lease uuid, p_claims jsonb) returns text language sql as $$
  select outcome::text from private.complete_job(p_job_id => p_job, p_lease_token => p_lease, p_content => 'x', p_model => 'm',
    p_memories_used => 5, p_memories_omitted => 0, p_as_of => now() + interval '1 minute', p_prompt_tokens => 1,
    p_output_tokens => 1, p_duration_ms => 1, p_claims => p_claims)
$$;
create function pg_temp.texts(p text) returns text language sql as $$
  select string_agg(c ->> 'text', ',' order by o) from public.user_narratives n, jsonb_array_elements(n.claims) with ordinality x(c, o)
  where n.user_id = pg_temp.uid(p)
$$;

-- A: a memory edited after the claim.
create temp table ja as select * from pg_temp.claimed('a');
update public.memories set content = 'memory a1, edited' where id = pg_temp.mid('a1')::uuid;
update public.memories set metadata = '{"importance": 0.9}' where id = pg_temp.mid('a2')::uuid;
select is((select changed_ids from narrative_jobs where id = (select job_id from ja)), array[pg_temp.mid('a1')::uuid],
  'the edit is listed on the running job (a metadata edit is not: it changes no text)');
select is(pg_temp.complete((select job_id from ja), (select lease from ja), jsonb_build_array(
    pg_temp.claim('One', array['a1']), pg_temp.claim('Two', array['a2']), pg_temp.claim('Joint', array['a1', 'a3']), pg_temp.claim('Four', array['a4']))),
  'stored', 'the completion stores');
select is(pg_temp.texts('a'), 'Two,Four', 'every claim citing the edited memory is dropped, though its updated_at is before p_as_of');
select is((select partial::text || '/' || removed_claims from user_narratives where user_id = pg_temp.uid('a')), 'true/2', 'stored partial, counted');
select is((select count(*)::int from user_narrative_versions where user_id = pg_temp.uid('a') and claims::text || changes::text || narrative_content ~ 'One|Joint'), 0,
  'history version 1 holds none of them either');
select is((select reason from narrative_jobs where user_id = pg_temp.uid('a') and status = 'queued'), 'memories_changed', 'another job is queued');

-- B: a note edited after the claim ("Call me Sam" -> "Call me Alex"); a pinned note left alone.
insert into public.narrative_notes (id, user_id, content, pinned) values
  ('b2000000-0000-4000-8000-0000000000b1', pg_temp.uid('b'), 'Call me Sam', false),
  ('b2000000-0000-4000-8000-0000000000b2', pg_temp.uid('b'), 'Pinned one', true);
select is((select changed_ids from narrative_jobs where user_id = pg_temp.uid('b') and status = 'queued'),
  array['b2000000-0000-4000-8000-0000000000b2'::uuid], 'a change while the job is queued is listed too (the second note; the first queued the job)');
create temp table jb as select * from pg_temp.claimed('b');
select is((select changed_ids from narrative_jobs where id = (select job_id from jb)), '{}'::uuid[], 'the claim clears what changed before it');
update public.narrative_notes set content = 'Call me Alex' where id = 'b2000000-0000-4000-8000-0000000000b1';
select is(pg_temp.complete((select job_id from jb), (select lease from jb), jsonb_build_array(
    jsonb_build_object('section', 'Pinned by you', 'text', 'Pinned one', 'memory_ids', '[]'::jsonb, 'note_ids', jsonb_build_array('b2000000-0000-4000-8000-0000000000b2')),
    pg_temp.claim('Goes by Sam', '{}', array['b2000000-0000-4000-8000-0000000000b1'::uuid]), pg_temp.claim('Two', array['b2']),
    pg_temp.claim('Sam sails', array['b3'], array['b2000000-0000-4000-8000-0000000000b1'::uuid]), pg_temp.claim('Four', array['b4']))),
  'stored', 'the completion stores');
select is(pg_temp.texts('b'), 'Pinned one,Two,Four', 'claims citing the edited note are dropped; the unchanged pinned note stays');
select is((select count(*)::int from user_narrative_versions where user_id = pg_temp.uid('b') and claims::text || changes::text || narrative_content ~ 'Sam'), 0,
  'no version says Sam');

-- Unpinned claims need their note to exist, by identity, no clock: a direct write citing a
-- deleted note loses that claim, one citing a note edited long ago keeps it.
delete from public.narrative_notes where id = 'b2000000-0000-4000-8000-0000000000b1';
update public.user_narratives set claims = claims || jsonb_build_array(
    pg_temp.claim('On a gone note', '{}', array['b2000000-0000-4000-8000-0000000000b1'::uuid]),
    pg_temp.claim('On the pinned note', '{}', array['b2000000-0000-4000-8000-0000000000b2'::uuid]))
where user_id = pg_temp.uid('b');
select is(pg_temp.texts('b'), 'Pinned one,Two,Four,On the pinned note', 'a write keeps claims on existing notes only');

-- C: more changes than max_tracked_changes (3): the list is cut at 4 and nothing is stored.
create temp table jc as select * from pg_temp.claimed('c');
update public.memories set content = content || ', edited' where user_id = pg_temp.uid('c');
select is((select cardinality(changed_ids) from narrative_jobs where id = (select job_id from jc)), 4, 'five edits listed as max_tracked_changes + 1 ids');
select is(pg_temp.complete((select job_id from jc), (select lease from jc), jsonb_build_array(
    pg_temp.claim('One', array['c1']), pg_temp.claim('Two', array['c2']), pg_temp.claim('Three', array['c3']))),
  'stale_input', 'too much changed to tell: stale_input');
select is((select count(*)::int from user_narratives where user_id = pg_temp.uid('c')), 0, 'nothing stored');
select is((select last_error_code || '/' || status from narrative_jobs where id = (select job_id from jc)), 'stale_input/succeeded', 'the job says why');
select is((select reason from narrative_jobs where user_id = pg_temp.uid('c') and status = 'queued'), 'memories_changed', 'and another runs');

-- D: a note added while generating drops nothing but queues the next job (the flag the ids replace).
create temp table jd as select * from pg_temp.claimed('d');
insert into public.narrative_notes (user_id, content) values (pg_temp.uid('d'), 'I left Acme');
select is(pg_temp.complete((select job_id from jd), (select lease from jd), jsonb_build_array(
    pg_temp.claim('One', array['d1']), pg_temp.claim('Two', array['d2']), pg_temp.claim('Three', array['d3']))),
  'stored', 'stored');
select is((select pg_temp.texts('d') || '/' || partial from user_narratives where user_id = pg_temp.uid('d')), 'One,Two,Three/false',
  'whole: no claim cited the new note');
select is((select reason from narrative_jobs where user_id = pg_temp.uid('d') and status = 'queued'), 'memories_changed',
  'the next job follows the note');

select * from finish();
rollback;
