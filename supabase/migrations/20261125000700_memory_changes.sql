-- Memory changes keep the cache honest.
--  * Editing, archiving or deleting an active memory removes, in the same transaction, every
--    claim citing it from the stored narrative (content re-rendered from the remaining claims,
--    marked partial), so no path (functions, MCP, a direct select) can read text derived from
--    it after commit; a memories_changed job is queued (debounced by change_debounce_seconds).
--    A user left below eligibility keeps no narrative at all.
--  * New active memories are counted; past stale_after_new_memories a stale refresh is queued,
--    debounced by stale_debounce_seconds so a burst of inserts makes one job.
-- Statement-level triggers with transition tables: a bulk insert/update is one pass per user.
--  * The changed ids are recorded on the user's active job (private.record_changes), so a
--    generation running meanwhile never stores claims resting on what it read of them.

-- Records on the user's active job, under its row lock, that these memories or notes changed
-- (deduplicated; cut at max_tracked_changes + 1 ids, which complete_job reads as "too many to
-- tell"). A claim or completion of the job waits for the changing transaction and sees them.
-- Called before the change strips the stored narrative: a completion in flight then either
-- waits for this transaction (and drops the claims) or has committed before the strip reads
-- (and is stripped). When the job row waited for turns out finished, its completion may have
-- queued the next job: a second statement, with a fresh snapshot, records on that one, which
-- might otherwise be claimed and read before this transaction commits.
create function private.record_changes(p_user_id uuid, p_ids uuid[]) returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  for i in 1 .. 2 loop
    update public.narrative_jobs j set
      changed_ids = array(select distinct x from unnest(j.changed_ids || p_ids) x where x is not null order by x
                          limit (select s.max_tracked_changes + 1 from private.settings s)),
      updated_at = now()
    where j.user_id = p_user_id and j.status in ('queued', 'running');
    exit when found;
  end loop;
end
$$;
comment on function private.record_changes(uuid, uuid[]) is 'Lists changed memory/note ids on the user''s active job (under its row lock) for complete_job to drop their claims.';

-- Removes the claims citing changed memories (or the whole narrative of a user no longer
-- eligible) and queues regeneration. p_changes: [{user_id, memory_id}].
create function private.note_destructive_changes(p_changes jsonb) returns void
language plpgsql security definer set search_path = '' as $$
declare
  v_debounce int := (select change_debounce_seconds from private.settings);
  r record;
begin
  for r in
    select (c ->> 'user_id')::uuid as user_id, array_agg((c ->> 'memory_id')::uuid) as ids
    from jsonb_array_elements(p_changes) c
    group by 1
  loop
    -- The user may be going away (cascade from auth.users): nothing to record then.
    continue when not exists (select 1 from auth.users where id = r.user_id);
    -- Under the job row's lock: a claim or completion of this user's job waits for this
    -- transaction, so it sees these ids and drops their claims too (see complete_job).
    perform private.record_changes(r.user_id, r.ids);
    if not private.is_eligible(r.user_id) then
      delete from public.user_narratives where user_id = r.user_id;
      continue;
    end if;
    with k as (
      select u.id, jsonb_array_length(u.claims) as before, private.claims_without(u.claims, r.ids) as claims
      from public.user_narratives u
      where u.user_id = r.user_id and u.cited_memory_ids && r.ids
    )
    update public.user_narratives u set
      claims = k.claims,
      cited_memory_ids = private.cited_ids(k.claims),
      narrative_content = private.render_claims(k.claims),
      partial = true,
      removed_claims = u.removed_claims + k.before - jsonb_array_length(k.claims),
      updated_at = now()
    from k
    where u.id = k.id;
    perform private.enqueue_if_eligible(r.user_id, 'memories_changed', v_debounce);
  end loop;
end
$$;
comment on function private.note_destructive_changes(jsonb) is 'Strips claims citing changed memories (or the narrative of an ineligible user) and queues memories_changed jobs.';

-- Counts new active memories on each narrative; past the threshold queues a debounced refresh.
create function private.on_memories_inserted() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  v_queued int;
begin
  with s as (select stale_after_new_memories, stale_debounce_seconds from private.settings),
  added as (
    select user_id, count(*) as n from new_rows where state = 'active' group by user_id
  ), bumped as (
    update public.user_narratives u set new_memories_since = u.new_memories_since + a.n
    from added a
    where u.user_id = a.user_id
    returning u.user_id, u.new_memories_since
  )
  select count(*) into v_queued
  from bumped b, s, lateral private.enqueue_if_eligible(b.user_id, 'stale', s.stale_debounce_seconds) e
  where b.new_memories_since >= s.stale_after_new_memories;
  return null;
end
$$;
comment on function private.on_memories_inserted() is 'Insert trigger: counts new memories per narrative and queues stale refreshes.';

-- Edits (content, or leaving 'active') and deletes of active memories. The transition tables
-- differ by operation; new_rows is only read for an UPDATE.
create function private.on_memories_changed() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  v_changes jsonb;
begin
  if tg_op = 'UPDATE' then
    select jsonb_agg(jsonb_build_object('user_id', o.user_id, 'memory_id', o.id)) into v_changes
    from old_rows o join new_rows n on n.id = o.id
    where o.state = 'active'
      and (n.state <> 'active' or n.content is distinct from o.content or n.user_id <> o.user_id);
  else
    select jsonb_agg(jsonb_build_object('user_id', o.user_id, 'memory_id', o.id)) into v_changes
    from old_rows o where o.state = 'active';
  end if;
  perform private.note_destructive_changes(v_changes) where v_changes is not null;
  return null;
end
$$;
comment on function private.on_memories_changed() is 'Update/delete trigger: collects destructive changes of active memories.';

create trigger memories_inserted after insert on public.memories
  referencing new table as new_rows
  for each statement execute function private.on_memories_inserted();
create trigger memories_updated after update on public.memories
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.on_memories_changed();
create trigger memories_deleted after delete on public.memories
  referencing old table as old_rows
  for each statement execute function private.on_memories_changed();

-- Grants: none. These functions run as postgres only (see 20261125000200).
revoke execute on all functions in schema private from public;
