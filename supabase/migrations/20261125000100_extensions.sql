-- Extensions this project needs. On Supabase pg_cron and pg_net are available to enable;
-- pgcrypto already lives in the extensions schema.
create extension if not exists pg_net;
create extension if not exists pg_cron;
create extension if not exists pgcrypto with schema extensions;
