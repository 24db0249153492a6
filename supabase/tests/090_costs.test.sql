-- Costs and the bulk budget, inside one rolled-back transaction: the price arithmetic (cached
-- input at its rate, thinking as output, unknown model null), jobs priced as their tokens are
-- added, today's spend, and a spent budget stopping bulk dispatch but not interactive.
begin;
create extension if not exists pgtap with schema extensions;
select plan(12);

select is(private.token_cost('{"m": {"input_per_mtok": 1, "output_per_mtok": 10, "cached_input_per_mtok": 0.1}}',
                             'm', 1000000, 100000, 200000, 400000),
          (600000 * 1 + 400000 * 0.1 + 300000 * 10) / 1000000.0,
          'uncached input, cached input and output plus thinking, each at its price');
select is(private.token_cost('{"m": {"input_per_mtok": 1, "output_per_mtok": 10}}', 'other', 1000, 1000, 0, 0), null,
          'a model without a price costs null');
select is(private.token_cost('{"m": {"input_per_mtok": 1, "output_per_mtok": 10}}', 'm', 1000000, 0, 0, 500000), 1.0,
          'no cached price: cached tokens at the input price');

delete from public.narrative_jobs;
delete from private.daily_spend;
update private.settings set max_concurrency = 4, bulk_min_share = 0.25, interactive_min_share = 0.25, daily_budget_usd = 1;
insert into auth.users (id, email)
select ('30000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'costs-' || g || '@example.test'
from generate_series(1, 4) g;
create function pg_temp.u(g int) returns uuid language sql as $$
  select ('30000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid $$;

insert into public.narrative_jobs (user_id, reason, run_after) values (pg_temp.u(1), 'cache_miss', now() + interval '1 hour');
select private.add_usage((select id from public.narrative_jobs where user_id = pg_temp.u(1)),
  'gemini-3.8-flash', 'gemini-3.8-flash', 1, 1000000, 100000, 100000, 0, 1200000);
select is((select estimated_cost_usd from public.narrative_jobs where user_id = pg_temp.u(1)), 1.10000000,
          'add_usage prices the job at the default gemini-3.8-flash estimate (1M in, 200k out+thinking)');
select is((select cost_usd from private.daily_spend where day = (now() at time zone 'UTC')::date), 1.10000000,
          'the cost is added to today''s spend');
select private.add_usage((select id from public.narrative_jobs where user_id = pg_temp.u(1)),
  null, null, 1, 0, 0, 0, 0, 0);
select is((select cost_usd from private.daily_spend where day = (now() at time zone 'UTC')::date), 1.10000000,
          'a second attempt with no new tokens adds nothing');
insert into public.narrative_jobs (user_id, reason, run_after) values (pg_temp.u(4), 'backfill', now() + interval '1 hour');
select private.add_usage((select id from public.narrative_jobs where user_id = pg_temp.u(4)), 'some-new-model', null, 1, 10, 10, 0, 0, 20);
select is((select estimated_cost_usd from public.narrative_jobs where user_id = pg_temp.u(4)), null, 'an unpriced model costs null');
update public.narrative_jobs set started_at = now() where user_id in (pg_temp.u(1), pg_temp.u(4));
select is((private.queue_health() -> 'usage' -> 'last_hour'), jsonb_build_object(
  'jobs', 2, 'prompt_tokens', 1000010, 'output_tokens', 100010, 'thoughts_tokens', 100000, 'cached_tokens', 0,
  'total_tokens', 1200020, 'estimated_cost_usd', 1.1, 'unpriced_jobs', 1, 'unpriced_models', '["some-new-model"]'::jsonb),
  'queue health: tokens and cost of the last hour, the unpriced job and its model visible');
delete from public.narrative_jobs where user_id in (pg_temp.u(1), pg_temp.u(4));

-- Spent budget: a due bulk job and a due interactive job; only the interactive one is sent.
select is(private.bulk_pause(), 'daily_budget_spent', 'today''s spend reached the budget');
insert into public.narrative_jobs (user_id, reason, run_after) values
  (pg_temp.u(2), 'backfill', now() - interval '1 minute'),
  (pg_temp.u(3), 'cache_miss', now());
select is((select array_agg(reason order by reason) from public.narrative_jobs where dispatched_at is not null),
          array['cache_miss'], 'the interactive job is sent, the bulk one stays queued');
select is((private.queue_health() -> 'lanes' -> 'bulk' ->> 'paused'), 'daily_budget_spent', 'queue health says bulk is paused and why');
update private.settings set daily_budget_usd = null;
select private.dispatch_pending();
select is((select dispatched_at is not null from public.narrative_jobs where user_id = pg_temp.u(2)), true,
          'with no budget (unlimited) the bulk job is sent');

select * from finish();
rollback;
