-- Dispatch lanes and the exact cap, called directly inside one rolled-back transaction (settings
-- and the pg_net requests made here are never seen outside it): reason → lane, interactive jobs
-- sent before an older bulk backlog, each lane's reserved share, the dispatch lock held to commit.
begin;
create extension if not exists pgtap with schema extensions;
select plan(16);

select is(private.job_lane(r), l, 'lane of ' || r)
from (values ('manual', 'interactive'), ('cache_miss', 'interactive'), ('memories_changed', 'interactive'),
             ('notes_changed', 'interactive'), ('stale', 'bulk'), ('weekly', 'bulk'), ('backfill', 'bulk')) v(r, l);

-- A queue of our own: other jobs out of the way (rolled back), a cap of 4, shares of one slot each.
delete from public.narrative_jobs;
update private.settings set max_concurrency = 4, bulk_min_share = 0.25, interactive_min_share = 0.25;
insert into auth.users (id, email)
select ('20000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'lanes-' || g || '@example.test'
from generate_series(1, 21) g;
create function pg_temp.u(g int) returns uuid language sql as $$
  select ('20000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid $$;

-- Inserted not yet due (the insert trigger sends nothing), then made due: a backfill backlog
-- older than two cache misses.
insert into public.narrative_jobs (user_id, reason, run_after)
select pg_temp.u(g), 'backfill', now() + interval '1 hour' from generate_series(1, 10) g;
insert into public.narrative_jobs (user_id, reason, run_after)
select pg_temp.u(g), 'cache_miss', now() + interval '1 hour' from generate_series(11, 12) g;
update public.narrative_jobs set run_after = now() - interval '1 minute' where reason = 'backfill';
update public.narrative_jobs set run_after = now() where reason = 'cache_miss';

select is(private.dispatch_pending(), 4, 'four free slots, four requests');
select is((select count(*)::int from public.narrative_jobs where reason = 'cache_miss' and dispatched_at is not null), 2,
          'both cache misses are sent although the backlog is older');
select is((select array_agg(user_id order by id) from public.narrative_jobs where reason = 'backfill' and dispatched_at is not null),
          array[pg_temp.u(1), pg_temp.u(2)], 'the rest go to the oldest backfill jobs');
select is(private.dispatch_pending(), 0, 'no free slot: nothing more is sent');
select ok(exists (select 1 from pg_locks where locktype = 'advisory' and pid = pg_backend_pid() and granted
                  and objid = (hashtext('private.dispatch_pending')::bigint & 4294967295)::oid),
          'the dispatch lock is held until this transaction commits');

-- An interactive flood: bulk keeps its reserved slot.
insert into public.narrative_jobs (user_id, reason, run_after)
select pg_temp.u(g), 'cache_miss', now() + interval '1 hour' from generate_series(13, 20) g;
update public.narrative_jobs set dispatched_at = null;
update public.narrative_jobs set run_after = now() where reason = 'cache_miss';
select is(private.dispatch_pending(), 4, 'four requests under a flood');
select is((select count(*)::int from public.narrative_jobs where reason = 'backfill' and dispatched_at is not null), 1,
          'bulk still gets its reserved share (one of four)');

-- A backlog alone: bulk never takes the interactive share, so a new miss is sent at once.
delete from public.narrative_jobs where reason = 'cache_miss';
update public.narrative_jobs set dispatched_at = null;
select is(private.dispatch_pending(), 3, 'bulk alone fills three of four slots');
insert into public.narrative_jobs (user_id, reason) values (pg_temp.u(21), 'cache_miss');
select isnt((select dispatched_at from public.narrative_jobs where user_id = pg_temp.u(21)), null,
            'a new cache miss behind the backlog is sent by its own insert');

select * from finish();
rollback;
