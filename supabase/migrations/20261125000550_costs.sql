-- Costs and budgets: every paid model call (each narrative attempt that reached the provider,
-- each MCP answer) is one row of the spend ledger, priced when it is recorded, and the day's
-- total moves in the same transaction. Pricing fails closed: a model without a price is counted
-- at the highest listed one, never as nothing. Three limits read the ledger:
--  * daily_budget_usd: once today's spend (UTC) reaches it the bulk lane is not dispatched;
--  * daily_ceiling_usd: once reached, no paid call is made for anyone until the next UTC day
--    (interactive generations use the local writer, MCP answers quote memories, bulk pauses);
--  * tokens_per_user_per_day: a user whose calls of the last 24 hours add up to it gets the same
--    degradation until they age out.
-- private.spend_limit_reached(user) is the one decision, asked before every paid call.

-- Prices in USD per million tokens. The defaults are estimates for the two configured models
-- (README "Costs and budgets"); set real prices per deployment. A price table must hold at least
-- one complete entry: an unpriced model is counted at the highest rates found here.
create function private.prices_valid(p_prices jsonb) returns boolean
language sql immutable set search_path = '' as $$
  select jsonb_typeof(p_prices) = 'object'
    and exists (select 1 from jsonb_each(p_prices))
    and not exists (
      select 1 from jsonb_each(p_prices) e
      where jsonb_typeof(e.value) <> 'object'
         or jsonb_typeof(e.value -> 'input_per_mtok') is distinct from 'number'
         or jsonb_typeof(e.value -> 'output_per_mtok') is distinct from 'number'
         or (e.value ? 'cached_input_per_mtok' and jsonb_typeof(e.value -> 'cached_input_per_mtok') <> 'number')
         or (e.value ->> 'input_per_mtok')::numeric < 0 or (e.value ->> 'output_per_mtok')::numeric < 0
         or coalesce((e.value ->> 'cached_input_per_mtok')::numeric, 0) < 0)
$$;
comment on function private.prices_valid(jsonb) is 'Check of settings.model_prices: a non-empty object of {input_per_mtok, output_per_mtok[, cached_input_per_mtok]} numbers >= 0.';

alter table private.settings
  add column model_prices jsonb not null default '{
    "gemini-3.8-flash": {"input_per_mtok": 0.50, "output_per_mtok": 3.00, "cached_input_per_mtok": 0.05},
    "gemini-3.5-flash-lite": {"input_per_mtok": 0.10, "output_per_mtok": 0.40, "cached_input_per_mtok": 0.01}
  }'::jsonb check (private.prices_valid(model_prices)),
  add column daily_budget_usd numeric check (daily_budget_usd >= 0),
  add column daily_ceiling_usd numeric check (daily_ceiling_usd >= 0),
  -- About 70 full generations (prompt ~10k, answer and thinking ~4k tokens) or 400 quick MCP
  -- answers a day: far above one person's use, about 1 USD a day at the default Flash estimate.
  add column tokens_per_user_per_day int not null default 1000000 check (tokens_per_user_per_day >= 1),
  add column spend_ledger_retention_days int not null default 90 check (spend_ledger_retention_days >= 8);
comment on column private.settings.model_prices is 'USD per million tokens by model: {model: {input_per_mtok, output_per_mtok, cached_input_per_mtok}} (defaults are estimates).';
comment on column private.settings.daily_budget_usd is 'Global spend per UTC day after which bulk jobs are not dispatched; null = unlimited.';
comment on column private.settings.daily_ceiling_usd is 'Global spend per UTC day after which no paid model call is made (local writer, extractive answers, bulk paused); null = unlimited.';
comment on column private.settings.tokens_per_user_per_day is 'Tokens of paid calls one user may spend in any 24 hours (every attempt and MCP answer); past it, as past the ceiling.';
comment on column private.settings.spend_ledger_retention_days is 'Days the sweeper keeps private.spend_ledger rows (daily_spend keeps the day totals).';

alter table public.narrative_jobs add column estimated_cost_usd numeric not null default 0 check (estimated_cost_usd >= 0);
comment on column public.narrative_jobs.estimated_cost_usd is 'USD of the job''s paid calls: the sum of its private.spend_ledger rows.';

-- One paid model call (a narrative attempt's responses, or one MCP answer with its bigger-cap
-- retry): who, what for, which model, the tokens the provider reported, and what it cost.
-- Written only by private.record_spend. job_id is no foreign key: jobs are pruned after
-- job_retention_days, the ledger after spend_ledger_retention_days.
create table private.spend_ledger (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  user_id uuid not null references auth.users (id) on delete cascade,
  kind text not null check (kind in ('narrative', 'mcp_answer')),
  job_id bigint,
  requested_model text,
  model text,
  provider_calls int not null check (provider_calls >= 1),
  prompt_tokens int,
  output_tokens int,
  thoughts_tokens int,
  cached_tokens int,
  total_tokens int,
  -- What counts against tokens_per_user_per_day: the reported total, else its parts.
  tokens int not null check (tokens >= 0),
  cost_usd numeric not null check (cost_usd >= 0),
  -- How it was priced: by the answering model, by the requested one (an unpriced version such
  -- as gemini-3.8-flash-001), or at the highest listed rates (no entry for either); priced_as
  -- is the model_prices entry used (null for the highest rates).
  pricing text not null check (pricing in ('model', 'requested_model', 'highest')),
  priced_as text,
  -- The counts are an estimate, not the provider's: an MCP call that timed out after it was
  -- sent (Google may have answered and billed it) counts its prompt and its whole output cap.
  usage_estimated boolean not null default false,
  constraint narrative_has_job check ((kind = 'narrative') = (job_id is not null))
);
comment on table private.spend_ledger is 'Every paid model call with its tokens and cost (narrative attempts, MCP answers); feeds daily_spend and the limits.';
-- The per-user rolling token total (index-only), account deletion.
create index spend_ledger_user_at_idx on private.spend_ledger (user_id, at) include (tokens);
-- Queue health's windows, today's spend by kind, pruning.
create index spend_ledger_at_idx on private.spend_ledger (at);
-- "What did job N spend".
create index spend_ledger_job_idx on private.spend_ledger (job_id) where job_id is not null;

-- What was spent per UTC day, kept as a running total so the limits read one row instead of
-- summing the day's ledger.
create table private.daily_spend (
  day date primary key,
  cost_usd numeric not null default 0
);
comment on table private.daily_spend is 'Spend per UTC day: the sum of that day''s spend_ledger rows, added by private.record_spend.';

-- Cost of token counts at one price entry. Gemini's prompt count includes the cached tokens
-- (billed at the cached rate); thinking tokens bill as output. Unknown counts cost nothing.
create function private.token_cost(p_price jsonb, p_prompt int, p_output int, p_thoughts int, p_cached int)
returns numeric
language sql immutable set search_path = '' as $$
  select round((
      greatest(coalesce(p_prompt, 0) - coalesce(p_cached, 0), 0) * (p_price ->> 'input_per_mtok')::numeric
       + coalesce(p_cached, 0) * coalesce((p_price ->> 'cached_input_per_mtok')::numeric, (p_price ->> 'input_per_mtok')::numeric)
       + (coalesce(p_output, 0) + coalesce(p_thoughts, 0)) * (p_price ->> 'output_per_mtok')::numeric
      ) / 1000000, 8)
$$;
comment on function private.token_cost(jsonb, int, int, int, int) is 'USD for token counts at one price entry (cached input at its rate, thinking as output).';

-- The price entry a call is charged at, failing closed: the answering model's, else the
-- requested model's, else the highest of each rate over every listed model.
create function private.price_entry(p_prices jsonb, p_model text, p_requested_model text)
returns table (price jsonb, pricing text, priced_as text)
language sql immutable set search_path = '' as $$
  with f as (select coalesce(p_prices ? p_model, false) as by_model,
                    coalesce(p_prices ? p_requested_model, false) as by_requested)
  select case when f.by_model then p_prices -> p_model else p_prices -> p_requested_model end,
         case when f.by_model then 'model' else 'requested_model' end,
         case when f.by_model then p_model else p_requested_model end
  from f where f.by_model or f.by_requested
  union all
  select jsonb_build_object(
           'input_per_mtok', max((e.value ->> 'input_per_mtok')::numeric),
           'output_per_mtok', max((e.value ->> 'output_per_mtok')::numeric),
           'cached_input_per_mtok', max(coalesce((e.value ->> 'cached_input_per_mtok')::numeric, (e.value ->> 'input_per_mtok')::numeric))),
         'highest', null
  from f, jsonb_each(p_prices) e
  where not (f.by_model or f.by_requested)
  having count(*) > 0
$$;
comment on function private.price_entry(jsonb, text, text) is 'Price of a call: by model, else by requested model, else the highest listed rates (pricing says which).';

-- Today's spend (UTC).
create function private.spent_today() returns numeric
language sql stable security definer set search_path = '' as $$
  select coalesce((select d.cost_usd from private.daily_spend d where d.day = (now() at time zone 'UTC')::date), 0)
$$;
comment on function private.spent_today() is 'Global spend of the current UTC day (private.daily_spend).';

-- Tokens of the user's paid calls in the last 24 hours (an index-only range scan).
create function private.user_tokens_24h(p_user_id uuid) returns bigint
language sql stable security definer set search_path = '' as $$
  select coalesce(sum(l.tokens), 0)::bigint from private.spend_ledger l
  where l.user_id = p_user_id and l.at > now() - interval '24 hours'
$$;
comment on function private.user_tokens_24h(uuid) is 'Tokens the user''s paid model calls spent in the last 24 hours (for tokens_per_user_per_day).';

-- The one rule asked before every paid call (each narrative attempt, each MCP answer): why no
-- paid call may be made for this user now, or null. 'daily_ceiling_reached' while today's spend
-- is at daily_ceiling_usd; 'token_budget_reached' while the user's last 24 hours reach
-- tokens_per_user_per_day. Calls already in flight finish, so either can be passed by them.
create function private.spend_limit_reached(p_user_id uuid) returns text
language sql stable security definer set search_path = '' as $$
  select case
    when s.daily_ceiling_usd is not null and private.spent_today() >= s.daily_ceiling_usd then 'daily_ceiling_reached'
    when private.user_tokens_24h(p_user_id) >= s.tokens_per_user_per_day then 'token_budget_reached'
  end
  from private.settings s
$$;
comment on function private.spend_limit_reached(uuid) is 'Why a paid model call for the user may not be made now (daily_ceiling_reached, token_budget_reached), or null.';

-- Records one paid call: a ledger row priced now (private.price_entry, failing closed) and the
-- day's total, in the caller's transaction. A call that reached no paid provider (no response,
-- or the local writer: provider_calls 0) records nothing. An unpriced model raises a warning
-- 'unpriced_model' with the call's ids and models as JSON detail (no text): the Postgres log
-- keeps it, and the functions' connection turns it into their JSON log line.
create function private.record_spend(
  p_kind text, p_user_id uuid, p_job_id bigint, p_requested_model text, p_model text, p_provider_calls int,
  p_prompt_tokens int, p_output_tokens int, p_thoughts_tokens int, p_cached_tokens int, p_total_tokens int,
  p_usage_estimated boolean default false
) returns table (cost_usd numeric, pricing text)
language plpgsql volatile security definer set search_path = '' as $$
declare
  p record;
  v_cost numeric;
begin
  if coalesce(p_provider_calls, 0) < 1 then
    return;
  end if;
  select * into p from private.price_entry((select s.model_prices from private.settings s), p_model, p_requested_model);
  v_cost := private.token_cost(p.price, p_prompt_tokens, p_output_tokens, p_thoughts_tokens, p_cached_tokens);
  insert into private.spend_ledger (user_id, kind, job_id, requested_model, model, provider_calls,
    prompt_tokens, output_tokens, thoughts_tokens, cached_tokens, total_tokens, tokens, cost_usd, pricing, priced_as, usage_estimated)
  values (p_user_id, p_kind, p_job_id, p_requested_model, p_model, p_provider_calls,
    p_prompt_tokens, p_output_tokens, p_thoughts_tokens, p_cached_tokens, p_total_tokens,
    greatest(coalesce(p_total_tokens, coalesce(p_prompt_tokens, 0) + coalesce(p_output_tokens, 0) + coalesce(p_thoughts_tokens, 0)), 0),
    v_cost, p.pricing, p.priced_as, coalesce(p_usage_estimated, false));
  insert into private.daily_spend as d (day, cost_usd) values ((now() at time zone 'UTC')::date, v_cost)
  on conflict (day) do update set cost_usd = d.cost_usd + excluded.cost_usd;
  if p.pricing = 'highest' then
    raise warning 'unpriced_model' using detail = json_build_object('kind', p_kind, 'user_id', p_user_id, 'job_id', p_job_id,
      'model', p_model, 'requested_model', p_requested_model, 'cost_usd', v_cost, 'priced_at', 'highest_listed_price')::text;
  end if;
  return query select v_cost, p.pricing;
end
$$;
comment on function private.record_spend(text, uuid, bigint, text, text, int, int, int, int, int, int, boolean) is 'Records one paid model call in the spend ledger (priced, failing closed) and adds it to today''s spend.';

-- Why the bulk lane is paused, or null: at whichever of the daily budget and the daily ceiling
-- today's spend reaches first ('daily_ceiling_reached' once the ceiling is, else 'daily_budget_spent').
create function private.bulk_pause() returns text
language sql stable security definer set search_path = '' as $$
  select case
    when s.daily_ceiling_usd is not null and private.spent_today() >= s.daily_ceiling_usd then 'daily_ceiling_reached'
    when s.daily_budget_usd is not null and private.spent_today() >= s.daily_budget_usd then 'daily_budget_spent'
  end
  from private.settings s
$$;
comment on function private.bulk_pause() is 'Reason the bulk lane is not dispatched (daily_ceiling_reached, daily_budget_spent), or null.';

-- Adds a count to a running total; an unknown count (null) leaves the total as it is.
create function private.add_count(p_total int, p_add int) returns int
language sql immutable set search_path = '' as $$
  select case when p_add is null then p_total else coalesce(p_total, 0) + p_add end
$$;
comment on function private.add_count(int, int) is 'Running token total over a job''s attempts; null adds nothing.';

-- Adds what one attempt spent at the provider to its job row (complete_job and fail_job, whether
-- or not the attempt still holds its lease: the call was paid either way): the models, responses
-- and token counts add up over attempts, and the attempt's paid call goes into the spend ledger
-- (private.record_spend, above), whose cost adds to estimated_cost_usd. A job
-- already gone (pruned, its user deleted) has nothing to add to and nobody to charge.
create function private.add_usage(
  p_job_id bigint, p_model text, p_requested_model text, p_provider_calls int,
  p_prompt_tokens int, p_output_tokens int, p_thoughts_tokens int, p_cached_tokens int, p_total_tokens int
) returns void
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_user uuid;
  v_cost numeric;
begin
  select j.user_id into v_user from public.narrative_jobs j where j.id = p_job_id;
  if v_user is null then
    return;
  end if;
  select r.cost_usd into v_cost from private.record_spend('narrative', v_user, p_job_id, p_requested_model, p_model,
    p_provider_calls, p_prompt_tokens, p_output_tokens, p_thoughts_tokens, p_cached_tokens, p_total_tokens) r;
  update public.narrative_jobs j set
    model = coalesce(p_model, j.model),
    requested_model = coalesce(p_requested_model, j.requested_model),
    provider_calls = j.provider_calls + coalesce(p_provider_calls, 0),
    prompt_tokens = private.add_count(j.prompt_tokens, p_prompt_tokens),
    output_tokens = private.add_count(j.output_tokens, p_output_tokens),
    thoughts_tokens = private.add_count(j.thoughts_tokens, p_thoughts_tokens),
    cached_tokens = private.add_count(j.cached_tokens, p_cached_tokens),
    total_tokens = private.add_count(j.total_tokens, p_total_tokens),
    estimated_cost_usd = j.estimated_cost_usd + coalesce(v_cost, 0)
  where j.id = p_job_id;
end
$$;
comment on function private.add_usage(bigint, text, text, int, int, int, int, int, int) is 'Adds one attempt''s models, provider calls and tokens to its job, and its paid call to the spend ledger.';

-- Grants: none. These run as postgres only (see 20261125000200).
revoke execute on all functions in schema private from public;
