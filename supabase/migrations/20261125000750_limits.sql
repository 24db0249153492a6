-- Limits: what one user may cost or store. Bounds on what a user may keep in public.memories,
-- the MCP provider calls one user may have in flight, and per-user request buckets of
-- orchestrate and MCP. (The daily generation budget over every job reason is the jobs' own:
-- private.budget_run_after, 20261125000500.) Bad input gets a clear error a supabase-js caller
-- sees (PostgREST forwards errcode and message; 23514 is an HTTP 400 there).

-- Memories a user may hold (active or archived); also the most tombstones (soft-deleted rows)
-- a user keeps: soft-deleting past it purges that user's oldest.
alter table private.settings add column max_memories_per_user int not null default 20000 check (max_memories_per_user >= 1);
-- Days a tombstone is kept before the sweeper purges it (a hard delete of an empty row).
alter table private.settings add column tombstone_retention_days int not null default 30 check (tombstone_retention_days >= 0);
-- Largest memories.metadata, in bytes of its jsonb text.
alter table private.settings add column memory_metadata_max_bytes int not null default 8192 check (memory_metadata_max_bytes >= 2);

-- How many memories each user holds (active or archived: a deleted one is an empty tombstone
-- and gives its room back), kept by statement triggers on memories so the per-user limit is
-- one row read, not a count. The insert trigger's upsert locks each
-- user's row it adds to (a tuple lock, not a slot of the shared lock table: a bulk insert for
-- 100,000 users in one statement needs none; a per-user advisory lock ran out of shared memory
-- there), in user order, so concurrent inserts for one user queue and the total stays exact.
-- Tombstones are counted beside them, under the same row lock, for the per-user tombstone bound.
create table private.memory_counts (
  user_id uuid primary key references auth.users (id) on delete cascade,
  n int not null check (n >= 0),
  tombstones int not null default 0 check (tombstones >= 0)
);
comment on table private.memory_counts is 'Memories per user that are not deleted (max_memories_per_user), and their tombstones.';
insert into private.memory_counts (user_id, n, tombstones)
select user_id, count(*) filter (where state <> 'deleted'), count(*) filter (where state = 'deleted')
from public.memories group by user_id;

-- Memory bounds, statement-level (a bulk insert is one pass): no memory inserted as deleted (a
-- tombstone only comes from deleting a memory, so their number follows the memories a user
-- really had), metadata size on inserts and updates, the per-user count on inserts (the new
-- rows added to memory_counts first); an update that deletes memories gives their room back and
-- counts their tombstones, and past max_memories_per_user tombstones the user's oldest are
-- purged (hard-deleted: an empty row, no claim cites it, so no claim work runs). The purge skips
-- tombstones another transaction holds (the sweeper deleting them) rather than wait for them
-- while holding the count row the sweeper's delete needs.
create function private.check_memory_limits() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  s private.settings;
  r record;
begin
  select * into s from private.settings;
  if tg_op = 'INSERT' and exists (select 1 from new_rows n where n.state = 'deleted') then
    raise exception 'a memory cannot be inserted as deleted'
      using errcode = '23514', constraint = 'memories_inserted_deleted',
        hint = 'Insert it active or archived; deleting a memory (state = ''deleted'') makes its tombstone.';
  end if;
  select octet_length(n.metadata::text) as bytes into r from new_rows n
  where octet_length(n.metadata::text) > s.memory_metadata_max_bytes limit 1;
  if found then
    raise exception 'memory metadata is % bytes; at most % are allowed', r.bytes, s.memory_metadata_max_bytes
      using errcode = '23514', constraint = 'memories_metadata_size',
        hint = 'Store less in metadata (limit: private.settings.memory_metadata_max_bytes).';
  end if;
  if tg_op = 'UPDATE' then
    for r in
      update private.memory_counts c set n = greatest(c.n - d.k, 0), tombstones = c.tombstones + d.k
      from (select n.user_id, count(*) as k from new_rows n join old_rows o on o.id = n.id
            where n.state = 'deleted' and o.state <> 'deleted' group by n.user_id) d
      where c.user_id = d.user_id
      returning c.user_id, c.tombstones - s.max_memories_per_user as excess
    loop
      continue when r.excess <= 0;
      delete from public.memories m
      where m.id in (select t.id from public.memories t
                     where t.user_id = r.user_id and t.state = 'deleted'
                     order by t.deleted_at, t.id limit r.excess
                     for update skip locked);
    end loop;
  end if;
  if tg_op = 'INSERT' then
    with added as (
      insert into private.memory_counts as c (user_id, n)
      select n.user_id, count(*) from new_rows n where n.state <> 'deleted' group by n.user_id order by n.user_id
      on conflict (user_id) do update set n = c.n + excluded.n
      returning c.n
    )
    select 1 as over into r from added where added.n > s.max_memories_per_user limit 1;
    if found then
      raise exception 'memory limit reached: at most % memories per user', s.max_memories_per_user
        using errcode = '23514', constraint = 'memories_per_user_limit',
          hint = 'Delete memories before adding more (limit: private.settings.max_memories_per_user).';
    end if;
  end if;
  return null;
end
$$;
comment on function private.check_memory_limits() is 'Refuses memories inserted as deleted, past max_memories_per_user or with metadata over memory_metadata_max_bytes (23514); bounds tombstones.';

-- A hard delete (the Data API, an account going away, a tombstone purge) gives the rows back:
-- memories to n, tombstones to tombstones. A user's own row may already be gone with the
-- account: then there is nothing to update.
create function private.uncount_memories() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  update private.memory_counts c set n = greatest(c.n - d.live, 0), tombstones = greatest(c.tombstones - d.dead, 0)
  from (select o.user_id, count(*) filter (where o.state <> 'deleted') as live, count(*) filter (where o.state = 'deleted') as dead
        from old_rows o group by o.user_id) d
  where c.user_id = d.user_id;
  return null;
end
$$;
comment on function private.uncount_memories() is 'Takes hard-deleted memories and tombstones off private.memory_counts.';

-- Named to fire before the memory-change triggers (after-triggers run in name order): a refused
-- insert is refused before anything queues or dispatches.
create trigger memories_bounds_inserted after insert on public.memories
  referencing new table as new_rows
  for each statement execute function private.check_memory_limits();
create trigger memories_bounds_updated after update on public.memories
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.check_memory_limits();
create trigger memories_uncounted after delete on public.memories
  referencing old table as old_rows
  for each statement execute function private.uncount_memories();

-- The prompt's candidates: the user's active memories ranked by private.memory_rank (importance,
-- or 0.5 when unknown, plus a recency bonus halving in about three weeks), best first (`rank` 1),
-- each capped at memory_char_cap. prompt_char_budget is a bound on the text actually sent, which
-- only the sanitised lines can tell (sanitising turns "<" into "&lt;": 60,000 budgeted characters
-- of "<" once made a 240,918-character prompt), so the caller takes them in rank order while the
-- lines fit (fitMemories, _shared/narrative/prompt.ts); this returns every candidate that could
-- fit, a superset of what can be taken: no line is shorter than its 16-character head
-- ("1. [YYYY-MM-DD] "), so at most budget / 16 of them (a floor per memory from its text would
-- read fewer rows, but costs a pass over every candidate's text: 20 ms became 85 ms for a user
-- with 20,000 memories). Bounded whatever the user holds: the ranking runs over candidates
-- only, the prompt_candidates newest and the
-- prompt_candidates most important (two index range scans, never a sort of every memory). A
-- memory outside both lists is older than the newest N and less important than the top N, so
-- it could only outrank them when many newer ones are trivial and many important ones very old.
-- `total` tells how many active memories exist, so the caller knows how many were left out:
-- private.memory_counts.n (kept exactly by the statement triggers above: every memory that is
-- not deleted) less the user's archived ones (a partial index), instead of a count of every
-- active row, which was two thirds of the call for a user with 200,000 memories (70 ms → 25 ms);
-- a user with no count row is counted. `as_of` is when they were read. Defined here, after the
-- counts it reads; called by generate-narrative only.
create function private.memories_for_prompt(p_user_id uuid)
returns table (id uuid, content text, created_at timestamptz, importance real, rank int, total int, as_of timestamptz)
language sql stable security definer set search_path = '' as $$
  with s as (select prompt_char_budget, memory_char_cap, prompt_candidates from private.settings),
  candidates as (
    (select m.id from public.memories m
      where m.user_id = p_user_id and m.state = 'active'
      order by m.created_at desc
      limit (select prompt_candidates from s))
    union
    (select m.id from public.memories m
      where m.user_id = p_user_id and m.state = 'active'
      order by coalesce(m.importance, 0.5) desc, m.created_at desc
      limit (select prompt_candidates from s))
  ),
  ranked as (
    select m.id, left(m.content, s.memory_char_cap) as content, m.created_at, m.importance,
      row_number() over (order by private.memory_rank(m.importance, m.created_at) desc, m.created_at desc, m.id) as rank,
      s.prompt_char_budget as budget
    from candidates c
    join public.memories m on m.id = c.id
    cross join s
  )
  select r.id, r.content, r.created_at, r.importance, r.rank::int,
    coalesce(
      (select c.n - (select count(*) from public.memories m where m.user_id = p_user_id and m.state = 'archived')
       from private.memory_counts c where c.user_id = p_user_id),
      (select count(*) from public.memories m where m.user_id = p_user_id and m.state = 'active'))::int,
    now()
  from ranked r
  where r.rank * 16 <= r.budget
  order by r.rank
$$;
comment on function private.memories_for_prompt(uuid) is 'The candidates a generation may read, best-ranked first; the caller takes them while their sanitised lines fit the character budget.';

-- Grants: none. These functions run as postgres only (see 20261125000200).
revoke execute on all functions in schema private from public;

-- Provider calls one user's MCP answers (ask_memory, deep_memory_query) may have in flight at
-- once, across every function instance: a slot is a row with an expiry, so a crashed call's
-- slot frees itself. Unlogged: losing the slots in a crash only frees them early.
alter table private.settings add column mcp_llm_calls_per_user int not null default 2 check (mcp_llm_calls_per_user >= 1);
create unlogged table private.llm_slots (
  user_id uuid not null,
  slot int not null,
  expires_at timestamptz not null,
  primary key (user_id, slot)
);
comment on table private.llm_slots is 'In-flight MCP provider calls per user (slots with an expiry), for mcp_llm_calls_per_user.';

-- Takes a free slot for p_seconds (the call's deadline plus margin): its number, or null when
-- all mcp_llm_calls_per_user are taken. Concurrent takers of one slot queue on its row and the
-- loser moves on to the next.
create function private.take_llm_slot(p_user_id uuid, p_seconds int) returns int
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_slot int;
begin
  for i in 1 .. (select mcp_llm_calls_per_user from private.settings) loop
    insert into private.llm_slots as l (user_id, slot, expires_at) values (p_user_id, i, now() + make_interval(secs => p_seconds))
    on conflict (user_id, slot) do update set expires_at = excluded.expires_at where l.expires_at <= now()
    returning l.slot into v_slot;
    if v_slot is not null then
      return v_slot;
    end if;
  end loop;
  return null;
end
$$;
comment on function private.take_llm_slot(uuid, int) is 'A free MCP provider-call slot of the user (mcp_llm_calls_per_user), or null.';

create function private.release_llm_slot(p_user_id uuid, p_slot int) returns void
language sql volatile security definer set search_path = '' as $$
  delete from private.llm_slots where user_id = p_user_id and slot = p_slot
$$;
comment on function private.release_llm_slot(uuid, int) is 'Frees an MCP provider-call slot when the call ends.';
revoke execute on all functions in schema private from public;

-- Requests one user may make per minute to orchestrate and to MCP, across every function
-- instance: a token bucket per user and route in Postgres (a burst of N, refilled at N a
-- minute). The service key acting for a user spends that user's bucket too.
alter table private.settings
  add column orchestrate_requests_per_minute int not null default 120 check (orchestrate_requests_per_minute >= 1),
  add column mcp_requests_per_minute int not null default 120 check (mcp_requests_per_minute >= 1);
create unlogged table private.request_buckets (
  user_id uuid not null,
  route text not null check (route in ('orchestrate', 'mcp')),
  tokens double precision not null,
  refilled_at timestamptz not null,
  primary key (user_id, route)
);
comment on table private.request_buckets is 'Per-user request token buckets of orchestrate and MCP (unlogged: a crash refills them).';

-- Spends one request of the user's bucket, or refuses it. The refusal is PostgREST's way for a
-- function to answer an HTTP status of its own (sqlstate PGRST, JSON message and detail), so
-- the functions and a Data API caller alike get 429 rate_limited with Retry-After. A refused
-- request spends nothing: the raise rolls the bucket's update back.
create function private.take_request(p_user_id uuid, p_route text) returns void
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_per_minute int;
  v_tokens double precision;
begin
  select case p_route when 'orchestrate' then s.orchestrate_requests_per_minute
                      when 'mcp' then s.mcp_requests_per_minute end
    into v_per_minute from private.settings s;
  if v_per_minute is null then
    raise exception 'take_request: unknown route %', p_route using errcode = '22023';
  end if;
  insert into private.request_buckets as b (user_id, route, tokens, refilled_at)
  values (p_user_id, p_route, v_per_minute - 1, now())
  on conflict (user_id, route) do update set
    tokens = least(v_per_minute, b.tokens + extract(epoch from now() - b.refilled_at) * v_per_minute / 60.0) - 1,
    refilled_at = now()
  returning tokens into v_tokens;
  if v_tokens < 0 then
    raise sqlstate 'PGRST' using
      message = json_build_object('code', 'rate_limited',
        'message', format('Too many %s requests: at most %s a minute per user', p_route, v_per_minute))::text,
      detail = json_build_object('status', 429,
        'headers', json_build_object('Retry-After', ceil(-v_tokens * 60.0 / v_per_minute)::int::text))::text;
  end if;
end
$$;
comment on function private.take_request(uuid, text) is 'Spends one orchestrate/mcp request of the user''s per-minute bucket, or raises PGRST 429 rate_limited.';
revoke execute on all functions in schema private from public;
