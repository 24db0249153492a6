// Function configuration, read and checked once at start: a missing required variable fails
// the function loudly instead of surfacing later as a confusing runtime error.
function required(name: string): string {
  const value = Deno.env.get(name);
  if (!value) throw new Error(`Missing required environment variable ${name}`);
  return value;
}

export const env = {
  supabaseUrl: required('SUPABASE_URL'),
  dbUrl: required('SUPABASE_DB_URL'),
  /** Public JWKS as JSON; when absent the keys are fetched from Auth's JWKS endpoint. */
  jwks: Deno.env.get('SUPABASE_JWKS') ?? null,
  dbPoolSize: Number(Deno.env.get('DB_POOL_SIZE') ?? 8),
};
