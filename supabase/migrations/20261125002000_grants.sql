-- Functions get EXECUTE for PUBLIC by default, and per-schema default privileges cannot take
-- that away; so, last: nothing in private is executable by the API roles (service_role keeps
-- what 20261125000200 granted by default). A migration adding private functions after this
-- one must end with the same revoke.
revoke all on all functions in schema private from public, anon, authenticated;
