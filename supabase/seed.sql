-- Demo data for the local stack (applied after migrations on first start and db:reset).
-- Login on the dashboard: demo@example.com / password123.

-- Users as Supabase Auth stores them, so this same file lets the demo users log in on a hosted
-- project too: the default instance_id, aud/role 'authenticated', a confirmed email, and the
-- 'email' identity GoTrue looks a password sign-in up by.
insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
  raw_app_meta_data, raw_user_meta_data, created_at, updated_at,
  confirmation_token, recovery_token, email_change_token_new, email_change)
select '00000000-0000-0000-0000-000000000000', u.id::uuid, 'authenticated', 'authenticated', u.email,
  extensions.crypt('password123', extensions.gen_salt('bf')), now(), u.app::jsonb, u.meta::jsonb, now(), now(),
  '', '', '', ''
from (values
  ('00000000-0000-4000-8000-000000000001', 'demo@example.com', '{"provider": "email", "providers": ["email"]}', '{"name": "Ada Demo"}'),
  ('00000000-0000-4000-8000-000000000002', 'sam@example.com', '{"provider": "email", "providers": ["email"]}', '{"name": "Sam Seed"}'),
  ('00000000-0000-4000-8000-000000000003', 'new@example.com', '{"provider": "email", "providers": ["email"]}', '{"name": "Nia New"}'),
  ('00000000-0000-4000-8000-000000000004', 'admin@example.com', '{"provider": "email", "providers": ["email"], "role": "admin"}', '{"name": "Ops Admin"}')
) as u(id, email, app, meta);

insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at)
select u.id::text, u.id, jsonb_build_object('sub', u.id::text, 'email', u.email, 'email_verified', true, 'phone_verified', false),
  'email', now(), now(), now()
from auth.users u where u.id::text like '00000000-0000-4000-8000-00000000000_';

-- The demo MCP client, registered with Auth's OAuth server as an admin registers one (POST
-- /auth/v1/admin/oauth/clients stores this row): public (PKCE, no secret), its id fixed so
-- supabase/functions/.env and tests/functions.env can allow it (MCP_ALLOWED_CLIENT_IDS). The
-- redirect URI is the MCP Inspector's.
insert into auth.oauth_clients (id, client_secret_hash, registration_type, client_type, token_endpoint_auth_method,
  redirect_uris, grant_types, client_name, created_at, updated_at)
values ('00000000-0000-4000-8000-0000000000c1', null, 'manual', 'public', 'none',
  'http://localhost:6274/oauth/callback', 'authorization_code,refresh_token', 'Narrative cache MCP (demo)', now(), now());

insert into public.memories (user_id, content, metadata, created_at)
select '00000000-0000-4000-8000-000000000001'::uuid, m.content, m.metadata::jsonb, now() - (m.days_ago || ' days')::interval
from (values
  ('I am a backend engineer at a small climate-tech startup, mostly writing TypeScript and SQL.', '{"importance": 0.9}', 120),
  ('I prefer short, direct answers with code first and the explanation after.', '{"importance": 0.8}', 90),
  ('Currently migrating our job queue from Redis to Postgres with SKIP LOCKED.', '{"importance": 0.7}', 6),
  ('I am learning Rust in the evenings; working through a toy database storage engine.', '{}', 30),
  ('Please don''t suggest ORMs; I like writing plain SQL and reading query plans.', '{"importance": 0.6}', 60),
  ('Planning a talk about Supabase Edge Functions and pg_net for a local meetup in March.', '{}', 3),
  ('I always want tests that run against a real database, not mocks.', '{"importance": 0.7}', 45),
  ('Weekend hobby: restoring an old road bike and riding long gravel routes.', '{}', 20),
  ('Our team uses pg_cron for nightly rollups of sensor data.', '{}', 10)
) as m(content, metadata, days_ago);

insert into public.memories (user_id, content, created_at)
select '00000000-0000-4000-8000-000000000002'::uuid, m.content, now() - (m.days_ago || ' days')::interval
from (values
  ('I teach high school physics and run the robotics club.', 200),
  ('I like step-by-step explanations with a worked example.', 150),
  ('Building a line-following robot with the students this term.', 12),
  ('Trying to learn Python properly so I can teach it next year.', 25),
  ('I get overwhelmed by long answers; bullet points help.', 80),
  ('Organising a regional robotics competition in spring.', 5)
) as m(content, days_ago);

-- Below the eligibility threshold (5 active memories): no narrative until they add more.
insert into public.memories (user_id, content)
values
  ('00000000-0000-4000-8000-000000000003', 'Just signed up; I write fantasy short stories.'),
  ('00000000-0000-4000-8000-000000000003', 'I prefer a warm, encouraging tone.');

-- Fill the cache for the eligible demo users, exactly as an admin backfill would.
select private.enqueue_job(u.id, 'backfill')
from auth.users u
where private.is_eligible(u.id);
