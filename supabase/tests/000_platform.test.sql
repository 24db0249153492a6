-- The platform pieces every migration relies on: API roles, auth helpers reading
-- request.jwt.claims, Vault, and the pg_net SQL API with pg_net's signatures.
begin;
create extension if not exists pgtap with schema extensions;
\ir helpers.psql
select plan(15);

select has_role('anon', 'anon role exists');
select has_role('authenticated', 'authenticated role exists');
select has_role('service_role', 'service_role role exists');
select ok((select rolbypassrls from pg_roles where rolname = 'service_role'), 'service_role bypasses RLS');

select has_function('auth', 'uid', 'auth.uid() exists');
select tests.authenticate_as('7d9e1e36-6a4b-4a8e-9c59-2b4c4f0a2f11', p_extra => '{"email": "a@example.test"}');
select is(auth.uid(), '7d9e1e36-6a4b-4a8e-9c59-2b4c4f0a2f11'::uuid, 'auth.uid() reads the sub claim');
select is(auth.role(), 'authenticated', 'auth.role() reads the role claim');
select is(auth.jwt() ->> 'email', 'a@example.test', 'auth.jwt() returns the claims');
select tests.clear_authentication();

select has_function('vault', 'create_secret', array['text', 'text', 'text', 'uuid'], 'vault.create_secret');
select isnt(vault.create_secret('s3cret', 'pgtap_probe', 'probe'), null, 'vault.create_secret returns the id');
select is((select decrypted_secret from vault.decrypted_secrets where name = 'pgtap_probe'),
  's3cret', 'a Vault secret reads back through decrypted_secrets');

select has_function('net', 'http_post', array['text', 'jsonb', 'jsonb', 'jsonb', 'integer'], 'net.http_post has pg_net''s signature');
select has_function('net', 'http_get', array['text', 'jsonb', 'jsonb', 'integer'], 'net.http_get has pg_net''s signature');
select has_function('net', 'http_delete', array['text', 'jsonb', 'jsonb', 'integer', 'jsonb'], 'net.http_delete has pg_net''s signature');
select has_table('supabase_migrations', 'schema_migrations', 'migrations are recorded where the CLI looks');

select * from finish();
rollback;
