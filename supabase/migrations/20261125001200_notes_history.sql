-- Notes and history (issue 13).
--  * public.narrative_notes: what the user tells the writer ("call me Sam", "never mention my
--    health"). Notes outrank memories in every generation; pinned notes appear verbatim under
--    "Pinned by you" as claims {section, text, memory_ids: [], note_ids: [id]}. Deleting,
--    editing or unpinning a pinned note strips its claim from the narrative and from every
--    stored version in the same transaction, like a memory change.
--  * public.user_narrative_versions: one row per stored narrative version, written by a trigger
--    on user_narratives (so in complete_job's transaction), with the claim diff against the
--    previous version; pruned past history_versions_kept; gone with the narrative.

alter table private.settings add column history_versions_kept int not null default 50 check (history_versions_kept >= 1);
alter table private.settings add column max_notes int not null default 20 check (max_notes >= 1);

-- The user's instructions to the narrative writer, written by the user through the API (RLS).
create table public.narrative_notes (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  -- One line: a pinned note is rendered verbatim as a markdown list item, so a line break could
  -- fake a heading in the narrative.
  content text not null check (char_length(content) between 1 and 500 and content !~ '[\r\n\u2028\u2029\u0085]'),
  pinned boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.narrative_notes is 'User-written instructions that outrank memories in narrative generation; pinned ones are quoted verbatim.';

-- Policies filter on user_id; the prompt reads a user's notes oldest first.
create index narrative_notes_user_id_idx on public.narrative_notes (user_id, created_at);

alter table public.narrative_notes enable row level security;

-- Users read their own notes.
create policy "Users read their own notes" on public.narrative_notes
  for select to authenticated using ((select auth.uid()) = user_id);
-- Users add notes for themselves only.
create policy "Users add their own notes" on public.narrative_notes
  for insert to authenticated with check ((select auth.uid()) = user_id);
-- Users edit their own notes and cannot hand them to someone else.
create policy "Users edit their own notes" on public.narrative_notes
  for update to authenticated using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);
-- Users delete their own notes.
create policy "Users delete their own notes" on public.narrative_notes
  for delete to authenticated using ((select auth.uid()) = user_id);

-- Grants: the user writes notes through supabase-js (RLS decides the rows): only content and
-- pinned (user_id is auth.uid() by default and cannot be moved; timestamps are the server's).
-- anon, service_role: nothing.
grant select, delete on public.narrative_notes to authenticated;
grant insert (content, pinned) on public.narrative_notes to authenticated;
grant update (content, pinned) on public.narrative_notes to authenticated;

-- At most max_notes per user, exactly under concurrency: inserts of one user are serialised on
-- the user's lock before counting. The error is what a supabase-js caller sees
-- (error.code 23514, error.message 'notes_limit: ...').
create function private.on_note_inserting() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  v_max int := (select max_notes from private.settings);
begin
  perform private.lock_user(new.user_id);
  if (select count(*) from public.narrative_notes where user_id = new.user_id) >= v_max then
    raise exception 'notes_limit: at most % notes per user; delete one first', v_max
      using errcode = 'check_violation', hint = 'Delete or edit an existing note.';
  end if;
  return new;
end
$$;
comment on function private.on_note_inserting() is 'Before insert on narrative_notes: the per-user note limit, under the user''s lock.';

create trigger narrative_notes_limit before insert on public.narrative_notes
  for each row execute function private.on_note_inserting();

-- updated_at follows edits.
create function private.on_note_updating() returns trigger
language plpgsql set search_path = '' as $$
begin
  new.updated_at := now();
  return new;
end
$$;
comment on function private.on_note_updating() is 'Before update on narrative_notes: keeps updated_at.';

create trigger narrative_notes_updated_at before update on public.narrative_notes
  for each row execute function private.on_note_updating();

-- Keeps only the claims whose cited notes are still there: a "Pinned by you" claim needs its
-- note pinned with exactly that text, any other claim its notes to exist (memory claims cite no
-- notes and pass). A note edited while a job generated is caught by identity, not here by
-- clock: the note trigger lists it on the job (changed_ids) and complete_job drops its claims.
create function private.claims_with_current_notes(p_user_id uuid, p_claims jsonb) returns jsonb
language sql stable security definer set search_path = '' as $$
  select coalesce(jsonb_agg(c.claim order by c.ord), '[]'::jsonb)
  from jsonb_array_elements(p_claims) with ordinality c(claim, ord)
  where not exists (
    select 1 from jsonb_array_elements_text(coalesce(c.claim -> 'note_ids', '[]'::jsonb)) x(nid)
    where not exists (select 1 from public.narrative_notes n
                      where n.id = x.nid::uuid and n.user_id = p_user_id
                        and (c.claim ->> 'section' <> 'Pinned by you' or (n.pinned and n.content = c.claim ->> 'text'))))
$$;
comment on function private.claims_with_current_notes(uuid, jsonb) is 'Claims minus those citing a deleted note, or quoting a pinned note that no longer says that.';

-- Every write of a narrative's claims (complete_job, a strip, a direct write) keeps only claims
-- on notes that exist and pinned claims that still quote their note (complete_job and note
-- changes both hold the user's lock).
create function private.on_narrative_writing() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  v_claims jsonb;
begin
  if not jsonb_path_exists(new.claims, '$[*].note_ids') then
    return new;
  end if;
  v_claims := private.claims_with_current_notes(new.user_id, new.claims);
  if jsonb_array_length(v_claims) < jsonb_array_length(new.claims) then
    new.removed_claims := new.removed_claims + jsonb_array_length(new.claims) - jsonb_array_length(v_claims);
    new.claims := v_claims;
    new.narrative_content := private.render_claims(v_claims);
    new.partial := true;
  end if;
  return new;
end
$$;
comment on function private.on_narrative_writing() is 'Before insert/update on user_narratives: drops claims quoting notes that changed.';

create trigger user_narratives_current_notes before insert or update of claims on public.user_narratives
  for each row execute function private.on_narrative_writing();

-- One row per stored narrative version: what the user saw then, and what changed.
create table public.user_narrative_versions (
  user_id uuid not null references auth.users (id) on delete cascade,
  version int not null check (version >= 1),
  generated_at timestamptz not null,
  model text,
  reason text,
  memory_count int,
  claim_count int not null,
  claims jsonb not null check (jsonb_typeof(claims) = 'array'),
  narrative_content text not null,
  -- Every memory id the claims cite: a memory delete, archive or edit strips them here too.
  cited_memory_ids uuid[] not null default '{}',
  -- {added, removed, kept} against the previous stored version, each a list of claims.
  changes jsonb not null,
  summary text not null,
  primary key (user_id, version)
);
comment on table public.user_narrative_versions is 'Every stored narrative version with its claims and the diff to the one before (GET narrative/history).';

-- Which versions cite a memory (the memory-change trigger below).
create index user_narrative_versions_cited_memory_ids_idx on public.user_narrative_versions using gin (cited_memory_ids);

alter table public.user_narrative_versions enable row level security;

-- Users read their own history; only the pipeline writes it.
create policy "Users read their own narrative history" on public.user_narrative_versions
  for select to authenticated using ((select auth.uid()) = user_id);

-- Grants: users read their own versions (GET narrative/history as the user); anon, service_role: nothing.
grant select on public.user_narrative_versions to authenticated;

-- A claim's identity for diffs: its text and the sorted ids it cites.
create function private.claim_key(p_claim jsonb) returns text
language sql immutable set search_path = '' as $$
  select (p_claim ->> 'text') || '|' || coalesce((select string_agg(x, ',' order by x) from jsonb_array_elements_text(
    coalesce(p_claim -> 'memory_ids', '[]'::jsonb) || coalesce(p_claim -> 'note_ids', '[]'::jsonb)) x), '')
$$;
comment on function private.claim_key(jsonb) is 'Text plus sorted cited ids: how versions match claims.';

-- {added, removed, kept} from p_old to p_new, each in its version's claim order.
create function private.claims_diff(p_old jsonb, p_new jsonb) returns jsonb
language sql immutable set search_path = '' as $$
  select jsonb_build_object(
    'added', (select coalesce(jsonb_agg(n.c order by n.o), '[]'::jsonb) from jsonb_array_elements(p_new) with ordinality n(c, o)
              where not exists (select 1 from jsonb_array_elements(p_old) p(c) where private.claim_key(p.c) = private.claim_key(n.c))),
    'removed', (select coalesce(jsonb_agg(p.c order by p.o), '[]'::jsonb) from jsonb_array_elements(p_old) with ordinality p(c, o)
              where not exists (select 1 from jsonb_array_elements(p_new) n(c) where private.claim_key(p.c) = private.claim_key(n.c))),
    'kept', (select coalesce(jsonb_agg(n.c order by n.o), '[]'::jsonb) from jsonb_array_elements(p_new) with ordinality n(c, o)
              where exists (select 1 from jsonb_array_elements(p_old) p(c) where private.claim_key(p.c) = private.claim_key(n.c))))
$$;
comment on function private.claims_diff(jsonb, jsonb) is 'Claims added, removed and kept between two versions.';

-- "2 added, 1 removed, 5 kept — new in Current work and trajectory: <first added claim>"; with
-- nothing added, just the counts (format() turns a missing section into '', never null, so the
-- tail is decided by whether there is a first added claim, not by coalesce).
create function private.changes_summary(p_changes jsonb) returns text
language sql immutable set search_path = '' as $$
  select format('%s added, %s removed, %s kept', jsonb_array_length(p_changes -> 'added'),
      jsonb_array_length(p_changes -> 'removed'), jsonb_array_length(p_changes -> 'kept'))
    || case when p_changes -> 'added' -> 0 ->> 'text' is null then ''
       else format(' — new in %s: %s', p_changes -> 'added' -> 0 ->> 'section',
         case when char_length(p_changes -> 'added' -> 0 ->> 'text') > 80
           then left(p_changes -> 'added' -> 0 ->> 'text', 79) || '…' else p_changes -> 'added' -> 0 ->> 'text' end) end
$$;
comment on function private.changes_summary(jsonb) is 'One deterministic line describing a version''s changes.';

-- A new version of a narrative is recorded with its diff, and old ones beyond
-- history_versions_kept pruned, in the storing transaction.
create function private.on_narrative_versioned() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  v_changes jsonb;
begin
  v_changes := private.claims_diff(coalesce(
    (select v.claims from public.user_narrative_versions v where v.user_id = new.user_id order by v.version desc limit 1),
    '[]'::jsonb), new.claims);
  insert into public.user_narrative_versions (user_id, version, generated_at, model, reason, memory_count, claim_count,
    claims, narrative_content, cited_memory_ids, changes, summary)
  values (new.user_id, new.version, new.generated_at, new.model,
    (select j.reason from public.narrative_jobs j where j.id = new.job_id), new.source_memory_count,
    jsonb_array_length(new.claims), new.claims, new.narrative_content, new.cited_memory_ids, v_changes,
    private.changes_summary(v_changes))
  on conflict (user_id, version) do update set
    generated_at = excluded.generated_at, model = excluded.model, reason = excluded.reason,
    memory_count = excluded.memory_count, claim_count = excluded.claim_count, claims = excluded.claims,
    narrative_content = excluded.narrative_content, cited_memory_ids = excluded.cited_memory_ids,
    changes = excluded.changes, summary = excluded.summary;
  delete from public.user_narrative_versions v
  where v.user_id = new.user_id
    and v.version <= new.version - (select history_versions_kept from private.settings);
  return null;
end
$$;
comment on function private.on_narrative_versioned() is 'After a narrative version is stored: records it in user_narrative_versions and prunes.';

create trigger user_narratives_versioned after insert or update of version on public.user_narratives
  for each row when (new.version is not null) execute function private.on_narrative_versioned();

-- A user who keeps no narrative (below eligibility) keeps no history either.
create function private.on_narrative_deleted() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  delete from public.user_narrative_versions where user_id = old.user_id;
  return null;
end
$$;
comment on function private.on_narrative_deleted() is 'After a narrative row is deleted: its history goes too.';

create trigger user_narratives_deleted after delete on public.user_narratives
  for each row execute function private.on_narrative_deleted();

-- Removes from stored versions (their claims, content and diffs) every claim citing one of
-- p_ids: history is served too, so a delete really removes derived text on every path.
create function private.strip_versions(p_user_id uuid, p_ids uuid[]) returns void
language sql volatile security definer set search_path = '' as $$
  with k as (
    select v.version, private.claims_without(v.claims, p_ids) as claims
    from public.user_narrative_versions v
    where v.user_id = p_user_id
      and (v.cited_memory_ids && p_ids or jsonb_path_exists(v.claims, '$[*].note_ids')
           or jsonb_path_exists(v.changes, '$.removed[*]'))
  )
  update public.user_narrative_versions v set
    claims = k.claims,
    claim_count = jsonb_array_length(k.claims),
    cited_memory_ids = private.cited_ids(k.claims),
    narrative_content = private.render_claims(k.claims),
    changes = jsonb_build_object(
      'added', private.claims_without(v.changes -> 'added', p_ids),
      'removed', private.claims_without(v.changes -> 'removed', p_ids),
      'kept', private.claims_without(v.changes -> 'kept', p_ids)),
    summary = private.changes_summary(jsonb_build_object(
      'added', private.claims_without(v.changes -> 'added', p_ids),
      'removed', private.claims_without(v.changes -> 'removed', p_ids),
      'kept', private.claims_without(v.changes -> 'kept', p_ids)))
  from k
  where v.user_id = p_user_id and v.version = k.version
$$;
comment on function private.strip_versions(uuid, uuid[]) is 'Strips claims citing changed memories or notes from every stored version of a user.';

-- Memory edits, archives and deletes reach the history as they reach the narrative
-- (20261125000700): same transaction, same rule. new_rows exists only for an UPDATE.
create function private.on_memories_changed_history() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  r record;
begin
  if tg_op = 'UPDATE' then
    for r in
      select o.user_id, array_agg(o.id) as ids
      from old_rows o join new_rows n on n.id = o.id
      where o.state = 'active' and (n.state <> 'active' or n.content is distinct from o.content or n.user_id <> o.user_id)
      group by o.user_id
    loop
      perform private.strip_versions(r.user_id, r.ids);
    end loop;
  else
    for r in select o.user_id, array_agg(o.id) as ids from old_rows o where o.state = 'active' group by o.user_id loop
      perform private.strip_versions(r.user_id, r.ids);
    end loop;
  end if;
  return null;
end
$$;
comment on function private.on_memories_changed_history() is 'Update/delete trigger on memories: strips citing claims from stored versions.';

create trigger memories_updated_history after update on public.memories
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.on_memories_changed_history();
create trigger memories_deleted_history after delete on public.memories
  referencing old table as old_rows
  for each statement execute function private.on_memories_changed_history();

-- A note deleted, edited or unpinned: the claims citing it leave the narrative and every version in this
-- transaction (under the user's lock, serialised with complete_job); any note change is listed
-- on the active job (a running generation drops the claims citing the note, and is followed by
-- another) and queues a debounced notes_changed regeneration so the narrative follows the notes.
-- Lock order as complete_job's: the user's lock, the job row, then the narrative's rows.
create function private.on_notes_changed() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  v_user uuid := coalesce(new.user_id, old.user_id);
begin
  -- The user may be going away (cascade from auth.users): nothing to record then.
  if not exists (select 1 from auth.users where id = v_user) then
    return null;
  end if;
  perform private.lock_user(v_user);
  -- Under the job row's lock, like memory changes: the completion drops claims citing the note.
  perform private.record_changes(v_user, array[old.id, new.id]);
  if tg_op = 'DELETE' or (tg_op = 'UPDATE' and (new.content is distinct from old.content or (old.pinned and not new.pinned))) then
    update public.user_narratives u set
      claims = private.claims_without(u.claims, array[old.id]),
      narrative_content = private.render_claims(private.claims_without(u.claims, array[old.id])),
      partial = true,
      removed_claims = u.removed_claims + jsonb_array_length(u.claims) - jsonb_array_length(private.claims_without(u.claims, array[old.id])),
      updated_at = now()
    where u.user_id = v_user and u.claims @> jsonb_build_array(jsonb_build_object('note_ids', jsonb_build_array(old.id)));
    perform private.strip_versions(v_user, array[old.id]);
  end if;
  perform private.enqueue_if_eligible(v_user, 'notes_changed', (select change_debounce_seconds from private.settings));
  return null;
end
$$;
comment on function private.on_notes_changed() is 'After a note change: strips the claims citing a changed note everywhere and queues notes_changed.';

create trigger narrative_notes_changed after insert or update or delete on public.narrative_notes
  for each row execute function private.on_notes_changed();

-- The notes a generation reads, oldest first (the prompt numbers them n1, n2, ...).
create function private.notes_for_prompt(p_user_id uuid)
returns table (id uuid, content text, pinned boolean, created_at timestamptz)
language sql stable security definer set search_path = '' as $$
  select n.id, n.content, n.pinned, n.created_at from public.narrative_notes n
  where n.user_id = p_user_id order by n.created_at, n.id
$$;
comment on function private.notes_for_prompt(uuid) is 'A user''s notes for the prompt, oldest first.';

-- Grants: none. These functions run as postgres only (see 20261125000200).
revoke execute on all functions in schema private from public;
