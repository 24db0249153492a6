-- Costs and budgets: every job carries an estimated cost from its token counts and a per-model
-- price table; a global daily budget pauses the bulk lane (never the interactive one) once
-- today's spend (UTC) reaches it. Bulk jobs stay queued; dispatch resumes at the next UTC day.

-- Prices in USD per million tokens. The defaults are estimates for the two configured models
-- (README "Costs and budgets"); set real prices per deployment. A model missing here costs null.
alter table private.settings
  add column model_prices jsonb not null default '{
    "gemini-3.8-flash": {"input_per_mtok": 0.50, "output_per_mtok": 3.00, "cached_input_per_mtok": 0.05},
    "gemini-3.5-flash-lite": {"input_per_mtok": 0.10, "output_per_mtok": 0.40, "cached_input_per_mtok": 0.01}
  }'::jsonb check (jsonb_typeof(model_prices) = 'object'),
  add column daily_budget_usd numeric check (daily_budget_usd >= 0);
comment on column private.settings.model_prices is 'USD per million tokens by model: {model: {input_per_mtok, output_per_mtok, cached_input_per_mtok}} (defaults are estimates).';
comment on column private.settings.daily_budget_usd is 'Global spend per UTC day after which bulk jobs are not dispatched; null = unlimited.';

alter table public.narrative_jobs add column estimated_cost_usd numeric;
comment on column public.narrative_jobs.estimated_cost_usd is 'Estimated USD for the job''s tokens (private.token_cost); null while no tokens or for a model without a price.';

-- Cost of token counts at a price entry. Gemini's prompt count includes the cached tokens (billed
-- at the cached rate); thinking tokens bill as output. Null when the model has no price.
create function private.token_cost(p_prices jsonb, p_model text, p_prompt int, p_output int, p_thoughts int, p_cached int)
returns numeric
language sql immutable set search_path = '' as $$
  select round((
      greatest(coalesce(p_prompt, 0) - coalesce(p_cached, 0), 0) * (p -> 'input_per_mtok')::numeric
       + coalesce(p_cached, 0) * coalesce((p -> 'cached_input_per_mtok')::numeric, (p -> 'input_per_mtok')::numeric)
       + (coalesce(p_output, 0) + coalesce(p_thoughts, 0)) * (p -> 'output_per_mtok')::numeric
      ) / 1000000, 8)
  from (select p_prices -> p_model as p) x
  where p is not null and coalesce(p_prompt, p_output, p_thoughts) is not null
$$;
comment on function private.token_cost(jsonb, text, int, int, int, int) is 'USD for token counts at a model''s prices (thinking bills as output); null for an unpriced model.';

-- What was spent per UTC day, kept as a running total so the dispatch hot path reads one row
-- instead of summing today's jobs.
create table private.daily_spend (
  day date primary key,
  cost_usd numeric not null default 0
);
comment on table private.daily_spend is 'Estimated spend per UTC day (sum of job cost changes that day), read by the bulk budget check.';

-- Keeps estimated_cost_usd and the day's total in step with the token counts, whoever writes
-- them (private.add_usage today): one place, no change to the writers.
create function private.price_job() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  new.estimated_cost_usd := private.token_cost((select s.model_prices from private.settings s),
    coalesce(new.model, new.requested_model), new.prompt_tokens, new.output_tokens, new.thoughts_tokens, new.cached_tokens);
  if coalesce(new.estimated_cost_usd, 0) <> coalesce(old.estimated_cost_usd, 0) then
    insert into private.daily_spend as d (day, cost_usd)
    values ((now() at time zone 'UTC')::date, coalesce(new.estimated_cost_usd, 0) - coalesce(old.estimated_cost_usd, 0))
    on conflict (day) do update set cost_usd = d.cost_usd + excluded.cost_usd;
  end if;
  return new;
end
$$;
comment on function private.price_job() is 'Before-update trigger: prices a job''s tokens and adds the change to today''s spend.';

create trigger price_job before update of model, requested_model, prompt_tokens, output_tokens, thoughts_tokens, cached_tokens
  on public.narrative_jobs for each row execute function private.price_job();

-- Why the bulk lane is paused, or null: 'daily_budget_spent' once today's spend reaches the budget.
create function private.bulk_pause() returns text
language sql stable security definer set search_path = '' as $$
  select 'daily_budget_spent'
  from private.settings s
  where s.daily_budget_usd is not null
    and coalesce((select d.cost_usd from private.daily_spend d where d.day = (now() at time zone 'UTC')::date), 0) >= s.daily_budget_usd
$$;
comment on function private.bulk_pause() is 'Reason the bulk lane is not dispatched (daily_budget_spent), or null.';

-- Grants: none. These run as postgres only (see 20261125000200).
revoke execute on all functions in schema private from public;
