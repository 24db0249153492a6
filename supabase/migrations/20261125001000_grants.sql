-- Who may call the internals. The functions' service connection (postgres) owns them; the API
-- roles get nothing from private, so a user can only reach the queue through our functions.
revoke all on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
grant select on all tables in schema private to service_role;
