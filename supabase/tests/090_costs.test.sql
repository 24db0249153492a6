-- Costs, the spend ledger and the spend limits, inside one rolled-back transaction: the price
-- arithmetic; pricing that fails closed (by model, else by the requested model, else the highest
-- listed rates, never null); every paid call one ledger row that moves today's spend, narrative
-- attempts (failed ones and lease-lost ones too) adding up to their job's cost; the daily
-- ceiling and the per-user token budget as private.spend_limit_reached decides them; the bulk
-- lane pausing at the budget or the ceiling; queue health; pruning.
begin;
create extension if not exists pgtap with schema extensions;
select plan(41);

-- Price arithmetic and the price entry a call is charged at.
select is(private.token_cost('{"input_per_mtok": 1, "output_per_mtok": 10, "cached_input_per_mtok": 0.1}', 1000000, 100000, 200000, 400000),
          (600000 * 1 + 400000 * 0.1 + 300000 * 10) / 1000000.0,
          'uncached input, cached input and output plus thinking, each at its price');
select is(private.token_cost('{"input_per_mtok": 1, "output_per_mtok": 10}', 1000000, 0, 0, 500000), 1.0,
          'no cached price: cached tokens at the input price');
select is(private.token_cost('{"input_per_mtok": 1, "output_per_mtok": 10}', null, null, null, null), 0.0, 'unknown counts cost nothing');

update private.settings set model_prices = '{
  "gemini-3.8-flash": {"input_per_mtok": 0.50, "output_per_mtok": 3.00, "cached_input_per_mtok": 0.05},
  "gemini-3.5-flash-lite": {"input_per_mtok": 0.10, "output_per_mtok": 0.40, "cached_input_per_mtok": 0.01},
  "odd-model": {"input_per_mtok": 0.20, "output_per_mtok": 5.00}}';
select is((select pricing || ':' || priced_as from private.price_entry((select model_prices from private.settings), 'gemini-3.8-flash', 'gemini-3.5-flash-lite')),
          'model:gemini-3.8-flash', 'the answering model''s own price first');
select is((select pricing || ':' || priced_as from private.price_entry((select model_prices from private.settings), 'gemini-3.8-flash-001', 'gemini-3.8-flash')),
          'requested_model:gemini-3.8-flash', 'a version without a price (modelVersion gemini-3.8-flash-001) is priced as the requested model');
select is((select row(price, pricing, priced_as)::text from private.price_entry((select model_prices from private.settings), 'mystery-9', 'mystery')),
          row('{"input_per_mtok": 0.50, "output_per_mtok": 5.00, "cached_input_per_mtok": 0.20}'::jsonb, 'highest', null::text)::text,
          'neither priced: the highest of each rate over every listed model (a missing cached rate counts as its input rate)');
select is((select pricing from private.price_entry((select model_prices from private.settings), null, null)), 'highest',
          'no model at all: the highest rates too');
select throws_ok($$update private.settings set model_prices = '{}'$$, '23514', null, 'a price table must hold an entry (nothing to fall back on otherwise)');
select throws_ok($$update private.settings set model_prices = '{"m": {"input_per_mtok": 1}}'$$, '23514', null, 'every entry needs input and output rates');
select throws_ok($$update private.settings set model_prices = '{"m": {"input_per_mtok": -1, "output_per_mtok": 1}}'$$, '23514', null, 'rates are not negative');
update private.settings set model_prices = '{
  "gemini-3.8-flash": {"input_per_mtok": 0.50, "output_per_mtok": 3.00, "cached_input_per_mtok": 0.05},
  "gemini-3.5-flash-lite": {"input_per_mtok": 0.10, "output_per_mtok": 0.40, "cached_input_per_mtok": 0.01}}';

-- Fixtures: a quiet queue and today's spend from zero (both rolled back).
delete from public.narrative_jobs;
delete from private.daily_spend;
delete from private.spend_ledger;
update private.settings set max_concurrency = 4, bulk_min_share = 0.25, interactive_min_share = 0.25,
  daily_budget_usd = null, daily_ceiling_usd = null, tokens_per_user_per_day = 2000000;
insert into auth.users (id, email)
select ('30000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'costs-' || g || '@example.test'
from generate_series(1, 5) g;
create function pg_temp.u(g int) returns uuid language sql as $$
  select ('30000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid $$;
create function pg_temp.today() returns numeric language sql as $$
  select coalesce((select cost_usd from private.daily_spend where day = (now() at time zone 'UTC')::date), 0) $$;

-- An MCP answer (no job) whose version has no price: priced as requested, in the ledger, in today's spend.
select is((select row(cost_usd, pricing)::text from private.record_spend('mcp_answer', pg_temp.u(1), null,
            'gemini-3.8-flash', 'gemini-3.8-flash-001', 2, 1000000, 100000, 100000, 0, 1200000)),
          row(1.10000000, 'requested_model')::text, 'record_spend prices 1M in and 200k out+thinking at the requested model: 1.10');
select is((select row(kind, job_id, provider_calls, tokens, cost_usd, pricing, priced_as)::text from private.spend_ledger where user_id = pg_temp.u(1)),
          row('mcp_answer', null::bigint, 2, 1200000, 1.10000000, 'requested_model', 'gemini-3.8-flash')::text,
          'one ledger row with its tokens, cost and how it was priced');
select is(pg_temp.today(), 1.10000000, 'today''s spend moved in the same transaction');
select is((select count(*)::int from private.record_spend('mcp_answer', pg_temp.u(1), null, 'gemini-3.8-flash', null, 0, null, null, null, null, null)),
          0, 'a call that reached no provider (provider_calls 0: no response, the local writer) records nothing');
select is((select count(*)::int from private.spend_ledger), 1, 'no row for it');
select is((select row(cost_usd, pricing)::text from private.record_spend('mcp_answer', pg_temp.u(2), null, 'mystery', 'mystery-7', 1, 1000, 100, 0, 0, 1100)),
          row(0.00080000, 'highest')::text, 'a wholly unknown model costs the highest listed rates (0.50 in, 3.00 out), never null');
select is(pg_temp.today(), 1.10080000, 'and moves today''s spend');

-- A narrative job's attempts: a failed one that reached the provider, one whose lease was lost,
-- then a success. Each is a ledger row; the job's cost is their sum.
insert into public.narrative_jobs (user_id, reason, run_after) values (pg_temp.u(3), 'manual', now());
create temp table j3 as select id from public.narrative_jobs where user_id = pg_temp.u(3);
create temp table c1 as select * from private.claim_job((select id from j3));
select is((select outcome::text from private.fail_job((select id from j3), (select lease_token from c1), 'invalid_output', 'not JSON', true,
            null, 10, 'gemini-3.8-flash', 'gemini-3.8-flash', 1, 10000, 1000, 0, 0, 11000)),
          'retry_scheduled', 'an invalid answer is retried');
update public.narrative_jobs set run_after = now() where id = (select id from j3);
create temp table c2 as select * from private.claim_job((select id from j3));
select is((select outcome::text from private.complete_job((select id from j3), gen_random_uuid(), 'late', 'gemini-3.8-flash', 4, 0, now(),
            20000, 2000, 5, null, null, 22000, 'gemini-3.8-flash', 1)),
          'lease_lost', 'a result under a lost lease is discarded');
select is((select outcome::text from private.complete_job((select id from j3), (select lease_token from c2), 'x', 'gemini-3.8-flash', 4, 0, now(),
            10000, 1000, 5, null, null, 11000, 'gemini-3.8-flash', 1)),
          'stored', 'the success is stored');
select is((select array_agg(cost_usd order by id) from private.spend_ledger where job_id = (select id from j3)),
          array[0.00800000, 0.01600000, 0.00800000]::numeric[],
          'three ledger rows: the failed attempt, the lease-lost one (paid all the same) and the success');
select is((select estimated_cost_usd from public.narrative_jobs where id = (select id from j3)),
          (select sum(cost_usd) from private.spend_ledger where job_id = (select id from j3)), 'the job''s cost is the sum of its ledger rows');
select is((select provider_calls || '/' || total_tokens from public.narrative_jobs where id = (select id from j3)), '3/44000',
          'and its calls and tokens count every attempt');
select is(pg_temp.today(), 1.13280000, 'today''s spend includes every attempt');

-- The per-user token budget (2,000,000 here), rolling over 24 hours: user 1 has 1,200,000.
insert into private.spend_ledger (at, user_id, kind, provider_calls, tokens, cost_usd, pricing)
values (now() - interval '25 hours', pg_temp.u(4), 'mcp_answer', 1, 5000000, 0, 'model');
select is(private.user_tokens_24h(pg_temp.u(4)), 0::bigint, 'calls older than 24 hours have aged out');
select is(private.spend_limit_reached(pg_temp.u(4)), null, 'so that user may call');
select is(private.spend_limit_reached(pg_temp.u(1)), null, 'user 1 under the budget may call');
select is((select cost_usd from private.record_spend('mcp_answer', pg_temp.u(1), null, 'gemini-3.5-flash-lite', 'gemini-3.5-flash-lite',
            1, 790000, 10000, 0, 0, 800000)), 0.08300000, 'another 800,000 tokens for user 1, at the Flash-Lite price');
select is(private.spend_limit_reached(pg_temp.u(1)), 'token_budget_reached', 'user 1 at 2,000,000 tokens in 24 hours: no paid call');
select is(private.spend_limit_reached(pg_temp.u(5)), null, 'another user is not affected');

-- The daily ceiling: below what was spent today, no paid call for anyone, and bulk pauses even
-- without a budget; the budget alone pauses bulk only.
update private.settings set daily_budget_usd = 1;
select is(private.bulk_pause(), 'daily_budget_spent', 'the budget is spent: bulk pauses');
select is(private.spend_limit_reached(pg_temp.u(5)), null, 'the budget does not stop interactive calls');
update private.settings set daily_budget_usd = null, daily_ceiling_usd = pg_temp.today() - 0.01;
select is(private.spend_limit_reached(pg_temp.u(5)), 'daily_ceiling_reached', 'past the ceiling: no paid call for anyone');
select is(private.bulk_pause(), 'daily_ceiling_reached', 'and bulk pauses at the ceiling (no budget set)');
insert into public.narrative_jobs (user_id, reason, run_after) values
  (pg_temp.u(4), 'backfill', now() - interval '1 minute'),
  (pg_temp.u(5), 'cache_miss', now());
select is((select array_agg(reason order by reason) from public.narrative_jobs where dispatched_at is not null and status = 'queued'),
          array['cache_miss'], 'the interactive job is sent (its attempt writes locally), the bulk one stays queued');

-- Queue health says it all.
create temp table h as select private.queue_health() as v;
select is((select (v -> 'budget') - 'resets_at' from h), jsonb_build_object(
  'daily_budget_usd', null, 'daily_ceiling_usd', 1.2058, 'spent_today_usd', 1.2158, 'ceiling_reached', true,
  'degraded', jsonb_build_object('reason', 'daily_ceiling_reached', 'narratives', 'written by the local writer (local-narrative-v1)',
    'mcp_answers', 'extractive (quoted memories, no model call)', 'bulk', 'paused'),
  'tokens_per_user_per_day', 2000000, 'users_over_token_budget', 1),
  'budget: spent today, the ceiling reached, what degrades, users over their token budget');
select is((select v -> 'lanes' -> 'bulk' ->> 'paused' from h), 'daily_ceiling_reached', 'the bulk lane says why it is paused');
select is((select (v -> 'usage' -> 'last_hour') - 'by_kind' from h), jsonb_build_object(
  'calls', 6, 'provider_calls', 7, 'prompt_tokens', 1831000, 'output_tokens', 114100, 'thoughts_tokens', 100000, 'cached_tokens', 0,
  'total_tokens', 2045100, 'estimated_cost_usd', 1.2158, 'unpriced_calls', 1, 'estimated_calls', 0, 'unpriced_models', '["mystery-7"]'::jsonb,
  'versions_priced_as_requested', '["gemini-3.8-flash-001"]'::jsonb),
  'usage of the last hour from the ledger: calls, tokens, cost, the unpriced model and the version priced as requested');
select is((select v -> 'usage' -> 'last_hour' -> 'by_kind' -> 'narrative' from h),
          jsonb_build_object('calls', 3, 'total_tokens', 44000, 'estimated_cost_usd', 0.032), 'split by kind');

-- Pruning: ledger rows past spend_ledger_retention_days go; the day totals stay.
insert into private.spend_ledger (at, user_id, kind, provider_calls, tokens, cost_usd, pricing)
values (now() - interval '100 days', pg_temp.u(4), 'mcp_answer', 1, 10, 0, 'model');
select is((select (private.sweep() ->> 'pruned_spend_rows')::int), 1, 'the sweep prunes the old ledger row');
select is((select count(*)::int from private.spend_ledger where at < now() - interval '90 days'), 0, 'it is gone');

select * from finish();
rollback;
