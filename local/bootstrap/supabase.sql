-- LOCAL STAND-IN ONLY. On a hosted Supabase project the platform has done all of this before
-- the first migration runs; this file recreates the parts this project relies on, the way
-- hosted sets them up today (supabase/postgres migrations/db: init-scripts and migrations, plus
-- the Data API change of 2026: no automatic grants on new public objects), so the same
-- migrations run unchanged on a bare Postgres 15.
-- Applied once, as the cluster's superuser `supabase_admin` (initdb's bootstrap user, as on
-- hosted), right after initdb; the migrations then run as the NON-superuser `postgres`.

-- `postgres`, as hosted demotes it (10000000000000_demote-postgres): not a superuser, but may
-- create databases and roles, replicate and bypass RLS; the predefined roles hosted grants it.
create role postgres login password 'postgres' nosuperuser createdb createrole replication bypassrls;
grant pg_monitor, pg_read_all_data, pg_signal_backend to postgres;
grant all on database postgres to postgres;
alter role postgres set search_path = "$user", public, extensions;

-- API roles, as hosted has them now (created noinherit, then 20230529180330 made them
-- inherit); the functions switch into them per request. authenticator stays noinherit.
create role anon nologin inherit;
create role authenticated nologin inherit;
create role service_role nologin inherit bypassrls;
create role authenticator login noinherit password 'postgres';
grant anon, authenticated, service_role to authenticator;
grant anon, authenticated, service_role to postgres;
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';
alter role authenticator set lock_timeout = '8s';
-- Internal roles hosted has (Auth's owner; pg_net's webhooks role); nothing logs in as them here.
create role supabase_auth_admin nologin noinherit;
create role supabase_functions_admin nologin noinherit;

-- Extensions live in their own schema; postgres may create more there (hosted grants it ALL).
create schema extensions;
grant usage on schema extensions to anon, authenticated, service_role;
grant all on schema extensions to postgres;
create extension pgcrypto with schema extensions;
create extension "uuid-ossp" with schema extensions;
grant all on all tables in schema extensions to postgres with grant option;
grant all on all routines in schema extensions to postgres with grant option;
grant all on all sequences in schema extensions to postgres with grant option;
alter default privileges in schema extensions grant all on tables to postgres with grant option;
alter default privileges in schema extensions grant all on routines to postgres with grant option;
alter default privileges in schema extensions grant all on sequences to postgres with grant option;
alter database postgres set search_path = "$user", public, extensions;

-- public: usable by the API roles, writable by postgres. Hosted's default privileges today:
-- objects supabase_admin (the platform) creates in public are granted to the API roles;
-- objects postgres (every migration) creates get NOTHING beyond Postgres' own defaults (EXECUTE
-- on functions for PUBLIC), since "Default privileges for new entities" went off (new projects
-- from 2026-05-30, all from 2026-10-30). So each migration grants what each role needs.
grant usage on schema public to anon, authenticated, service_role;
grant all on schema public to postgres;
alter default privileges for role supabase_admin in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public grant all on sequences to postgres, anon, authenticated, service_role;

-- The auth schema: Auth's tables with GoTrue's column names (its migrations/ folder), owned by
-- the platform; postgres reads and writes them (the seed, the local Auth stand-in), as on hosted.
create schema auth authorization supabase_auth_admin;
grant usage on schema auth to postgres, anon, authenticated, service_role;

create table auth.users (
  instance_id uuid,
  id uuid primary key default extensions.gen_random_uuid(),
  aud varchar(255) default 'authenticated',
  role varchar(255) default 'authenticated',
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  invited_at timestamptz,
  confirmation_token varchar(255),
  recovery_token varchar(255),
  email_change_token_new varchar(255),
  email_change varchar(255),
  email_change_token_current varchar(255) default '',
  phone_change text default '',
  phone_change_token varchar(255) default '',
  reauthentication_token varchar(255) default '',
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb default '{"provider": "email", "providers": ["email"]}'::jsonb,
  raw_user_meta_data jsonb default '{}'::jsonb,
  is_super_admin boolean,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  phone text,
  phone_confirmed_at timestamptz,
  banned_until timestamptz,
  deleted_at timestamptz,
  is_sso_user boolean not null default false,
  is_anonymous boolean not null default false
);
create unique index users_email_partial_key on auth.users (email) where is_sso_user = false;

-- One row per way a user signs in (GoTrue's auth.identities after 20231117164230): an email
-- user has provider 'email', provider_id = the user id, identity_data {sub, email}.
create table auth.identities (
  provider_id text not null,
  user_id uuid not null references auth.users (id) on delete cascade,
  identity_data jsonb not null,
  provider text not null,
  last_sign_in_at timestamptz,
  created_at timestamptz,
  updated_at timestamptz,
  email text generated always as (lower(identity_data ->> 'email')) stored,
  id uuid primary key default extensions.gen_random_uuid(),
  constraint identities_provider_id_provider_unique unique (provider_id, provider)
);
create index identities_user_id_idx on auth.identities (user_id);
create index identities_email_idx on auth.identities (email text_pattern_ops);

-- Auth's OAuth 2.1 server (GoTrue's migrations 20250731150234 to 20260121000000): registered
-- clients (the id is the public client_id), authorization requests waiting for the user's consent
-- or holding an issued code, and the consents a user gave (a later request for the same scopes is
-- approved without asking).
create type auth.oauth_registration_type as enum ('dynamic', 'manual');
create type auth.oauth_client_type as enum ('public', 'confidential');
create type auth.oauth_authorization_status as enum ('pending', 'approved', 'denied', 'expired');
create type auth.oauth_response_type as enum ('code');
create type auth.code_challenge_method as enum ('s256', 'plain');
create table auth.oauth_clients (
  id uuid not null primary key,
  client_secret_hash text null,
  registration_type auth.oauth_registration_type not null,
  redirect_uris text not null,
  grant_types text not null,
  client_name text null,
  client_uri text null,
  logo_uri text null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz null,
  client_type auth.oauth_client_type not null default 'confidential',
  token_endpoint_auth_method text not null check (token_endpoint_auth_method in ('client_secret_basic', 'client_secret_post', 'none')),
  constraint oauth_clients_client_name_length check (char_length(client_name) <= 1024),
  constraint oauth_clients_client_uri_length check (char_length(client_uri) <= 2048),
  constraint oauth_clients_logo_uri_length check (char_length(logo_uri) <= 2048)
);
create index oauth_clients_deleted_at_idx on auth.oauth_clients (deleted_at);
create table auth.oauth_authorizations (
  id uuid not null primary key,
  authorization_id text not null unique,
  client_id uuid not null references auth.oauth_clients (id) on delete cascade,
  user_id uuid null references auth.users (id) on delete cascade,
  redirect_uri text not null,
  scope text not null,
  state text null,
  resource text null,
  code_challenge text null,
  code_challenge_method auth.code_challenge_method null,
  response_type auth.oauth_response_type not null default 'code',
  status auth.oauth_authorization_status not null default 'pending',
  authorization_code text null unique,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null default (now() + interval '3 minutes'),
  approved_at timestamptz null,
  nonce text null,
  constraint oauth_authorizations_expires_at_future check (expires_at > created_at)
);
create index oauth_auth_pending_exp_idx on auth.oauth_authorizations (expires_at) where status = 'pending';
create table auth.oauth_consents (
  id uuid not null primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  client_id uuid not null references auth.oauth_clients (id) on delete cascade,
  scopes text not null,
  granted_at timestamptz not null default now(),
  revoked_at timestamptz null,
  constraint oauth_consents_user_client_unique unique (user_id, client_id),
  constraint oauth_consents_scopes_not_empty check (char_length(trim(scopes)) > 0)
);

-- Sessions and rotating refresh tokens, as GoTrue stores them; a session an OAuth client started
-- names the client and the scopes granted (its refresh tokens only work for that client).
create table auth.sessions (
  id uuid primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  aal text default 'aal1',
  not_after timestamptz,
  oauth_client_id uuid references auth.oauth_clients (id) on delete cascade,
  scopes text check (char_length(scopes) <= 4096)
);
create index sessions_user_id_idx on auth.sessions (user_id);
create index sessions_oauth_client_id_idx on auth.sessions (oauth_client_id);

create table auth.refresh_tokens (
  instance_id uuid,
  id bigserial primary key,
  token varchar(255) unique,
  user_id varchar(255),
  revoked boolean default false,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  parent varchar(255),
  session_id uuid references auth.sessions (id) on delete cascade
);
create index refresh_tokens_session_id_revoked_idx on auth.refresh_tokens (session_id, revoked);

-- The request helpers exactly as Supabase defines them: they read the claims PostgREST (or
-- our functions) put in request.jwt.claims for the current transaction.
create function auth.uid() returns uuid language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create function auth.role() returns text language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create function auth.email() returns text language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;

create function auth.jwt() returns jsonb language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
  to anon, authenticated, service_role;
grant select on auth.users to service_role;

grant all on all tables in schema auth to postgres;
grant all on all sequences in schema auth to postgres;
grant all on all routines in schema auth to postgres;
do $$
declare t record;
begin
  for t in select tablename from pg_tables where schemaname = 'auth' loop
    execute format('alter table auth.%I owner to supabase_auth_admin', t.tablename);
  end loop;
end $$;

-- Vault: the real supabase_vault extension (secrets encrypted with the root key
-- vault.getkey_script returns; see local/postgres.ts), with the grants hosted gives postgres
-- (20221207154255_create_vault). The API roles get nothing.
create schema vault;
create extension supabase_vault with schema vault;
grant usage on schema vault to postgres with grant option;
grant select, delete on vault.secrets, vault.decrypted_secrets to postgres with grant option;
grant execute on function vault.create_secret, vault.update_secret, vault._crypto_aead_det_decrypt to postgres with grant option;

-- pg_net and pg_cron need a superuser to create. On hosted, postgres's `create extension` goes
-- through supautils, which creates them as the platform and then runs the grants below
-- (extensions.grant_pg_net_access, extensions.grant_pg_cron_access as of 20260730000000). Here
-- the platform creates them up front; the migration's `create extension if not exists` is then
-- a no-op, as it is on a project that already has them.
create extension pg_net;
grant usage on schema net to supabase_functions_admin, postgres, anon, authenticated, service_role;
create extension pg_cron;
grant usage on schema cron to postgres with grant option;
grant all on all functions in schema cron to postgres with grant option;
alter default privileges in schema cron grant all on tables to postgres with grant option;
alter default privileges in schema cron grant all on functions to postgres with grant option;
alter default privileges in schema cron grant all on sequences to postgres with grant option;
grant all privileges on all tables in schema cron to postgres with grant option;
revoke all on table cron.job from postgres;
grant select on table cron.job to postgres with grant option;
revoke trigger on cron.job_run_details from postgres;

-- supabase_migrations is left to the Supabase CLI: `supabase migration up` creates its
-- schema_migrations table (as postgres) on first use, as it does on a hosted project.
