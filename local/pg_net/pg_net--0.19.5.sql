-- LOCAL STAND-IN for pg_net 0.19.x. The SQL surface (schema net, http_get/http_post/
-- http_delete with pg_net's signatures and defaults, net.http_request_queue,
-- net._http_response) matches the real extension, so migrations that use it run unchanged on
-- Supabase. Real pg_net delivers from a background worker inside Postgres; here an external
-- worker process (local/pg_net/worker.ts) does the same job: it takes committed rows from the
-- queue, sends them, and records the outcome in net._http_response.

create schema if not exists net;

create domain net.http_method as text
  check (value ilike 'get' or value ilike 'post' or value ilike 'delete');

-- Pending requests; only committed rows are visible to the worker, so a rolled-back
-- transaction never sends anything.
create unlogged table net.http_request_queue (
  id bigserial,
  method net.http_method not null,
  url text not null,
  headers jsonb not null,
  body bytea,
  timeout_milliseconds integer not null
);

-- One row per finished request (success, HTTP error, timeout or transport error).
create unlogged table net._http_response (
  id bigint,
  status_code integer,
  content_type text,
  headers jsonb,
  content text,
  timed_out boolean,
  error_msg text,
  created timestamptz not null default now()
);
create index on net._http_response (created);

-- Wakes the worker. pg_notify is delivered at commit, which keeps "send after commit".
create function net.wake() returns void language sql as $$
  select pg_notify('pg_net_wake', '')
$$;

create function net._wake_on_enqueue() returns trigger language plpgsql as $$
begin
  perform net.wake();
  return null;
end
$$;

create trigger wake_worker after insert on net.http_request_queue
  for each statement execute function net._wake_on_enqueue();

create function net._urlencode_string(string varchar) returns text
  language plpgsql immutable strict as $$
declare
  result text := '';
  ch text;
  b bytea;
  i int;
begin
  foreach ch in array regexp_split_to_array(string, '') loop
    if ch ~ '^[A-Za-z0-9_.~-]$' then
      result := result || ch;
    else
      b := convert_to(ch, 'UTF8');
      for i in 0 .. length(b) - 1 loop
        result := result || '%' || upper(lpad(to_hex(get_byte(b, i)), 2, '0'));
      end loop;
    end if;
  end loop;
  return result;
end
$$;

create function net._encode_url_with_params_array(url text, params_array text[]) returns text
  language sql immutable strict as $$
  select case
    when cardinality(params_array) = 0 then url
    when position('?' in url) > 0 then url || '&' || array_to_string(params_array, '&')
    else url || '?' || array_to_string(params_array, '&')
  end
$$;

create function net.http_get(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds integer default 5000
) returns bigint language plpgsql parallel safe strict as $$
declare
  request_id bigint;
  params_array text[];
begin
  select coalesce(array_agg(net._urlencode_string(key) || '=' || net._urlencode_string(value)), '{}')
    into params_array from jsonb_each_text(params);
  insert into net.http_request_queue (method, url, headers, timeout_milliseconds)
  values ('GET', net._encode_url_with_params_array(url, params_array), headers, timeout_milliseconds)
  returning id into request_id;
  return request_id;
end
$$;

create function net.http_post(
  url text,
  body jsonb default '{}'::jsonb,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
  timeout_milliseconds integer default 5000
) returns bigint language plpgsql parallel safe as $$
declare
  request_id bigint;
  params_array text[];
  content_type text;
begin
  select header_value into content_type
    from jsonb_each_text(coalesce(headers, '{}'::jsonb)) r(header_name, header_value)
    where lower(header_name) = 'content-type'
    limit 1;
  if content_type is null then
    headers := coalesce(headers, '{}'::jsonb) || '{"Content-Type": "application/json"}'::jsonb;
  end if;
  if content_type <> 'application/json' then
    raise exception 'Content-Type header must be "application/json"';
  end if;
  select coalesce(array_agg(net._urlencode_string(key) || '=' || net._urlencode_string(value)), '{}')
    into params_array from jsonb_each_text(params);
  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values ('POST', net._encode_url_with_params_array(url, params_array), headers,
          convert_to(body::text, 'UTF8'), timeout_milliseconds)
  returning id into request_id;
  return request_id;
end
$$;

create function net.http_delete(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds integer default 5000,
  body jsonb default null::jsonb
) returns bigint language plpgsql parallel safe as $$
declare
  request_id bigint;
  params_array text[];
begin
  select coalesce(array_agg(net._urlencode_string(key) || '=' || net._urlencode_string(value)), '{}')
    into params_array from jsonb_each_text(params);
  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values ('DELETE', net._encode_url_with_params_array(url, params_array), headers,
          convert_to(body::text, 'UTF8'), timeout_milliseconds)
  returning id into request_id;
  return request_id;
end
$$;

create type net.request_status as enum ('PENDING', 'SUCCESS', 'ERROR');
create type net.http_response as (status_code integer, headers jsonb, body text);
create type net.http_response_result as (
  status net.request_status,
  message text,
  response net.http_response
);

create function net._http_collect_response(request_id bigint, async boolean default true)
  returns net.http_response_result language plpgsql parallel safe strict as $$
declare
  rec net._http_response;
begin
  if not async then
    loop
      select * into rec from net._http_response where id = request_id;
      exit when rec.id is not null;
      perform pg_sleep(0.05);
    end loop;
  end if;
  select * into rec from net._http_response where id = request_id;
  if rec.id is null then
    return ('PENDING', 'request is pending processing', null)::net.http_response_result;
  end if;
  if rec.error_msg is not null then
    return ('ERROR', rec.error_msg, null)::net.http_response_result;
  end if;
  return ('SUCCESS', 'ok', (rec.status_code, rec.headers, rec.content)::net.http_response)
    ::net.http_response_result;
end
$$;

create function net.http_collect_response(request_id bigint, async boolean default true)
  returns net.http_response_result language sql parallel safe strict as $$
  select net._http_collect_response(request_id, async)
$$;

-- The local worker connects with application_name 'pg_net worker'.
create function net.check_worker_is_up() returns void language plpgsql as $$
begin
  if not exists (select 1 from pg_stat_activity where application_name = 'pg_net worker') then
    raise exception 'the pg_net background worker is not up';
  end if;
end
$$;

revoke all on schema net from public;
revoke all on all functions in schema net from public;
grant usage on schema net to postgres, anon, authenticated, service_role;
grant execute on function
  net.http_get(text, jsonb, jsonb, integer),
  net.http_post(text, jsonb, jsonb, jsonb, integer),
  net.http_delete(text, jsonb, jsonb, integer, jsonb),
  net.http_collect_response(bigint, boolean)
  to postgres, service_role;
grant all on all tables in schema net to postgres, service_role;
grant all on all sequences in schema net to postgres, service_role;
