// Function configuration, read and checked once at start: a missing required variable fails
// the function loudly instead of surfacing later as a confusing runtime error.
export function requiredEnv(name: string): string {
  const value = Deno.env.get(name);
  if (!value) throw new Error(`Missing required environment variable ${name}`);
  return value;
}

function intEnv(name: string, fallback: number): number {
  const raw = Deno.env.get(name);
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return value;
}

export const env = {
  supabaseUrl: requiredEnv('SUPABASE_URL'),
  dbUrl: requiredEnv('SUPABASE_DB_URL'),
  /** Public JWKS as JSON (the platform provides it); when absent the keys are fetched from
   *  Auth's JWKS endpoint. */
  jwks: Deno.env.get('SUPABASE_JWKS') || null,
  /** The project's legacy JWT secret, for projects whose Auth still signs HS256 tokens. A
   *  function secret (`supabase secrets set JWT_SECRET=…`: names starting with SUPABASE_ are
   *  reserved), the name self-hosted Supabase gives its functions. Unset: HS256 tokens are 401. */
  jwtSecret: Deno.env.get('JWT_SECRET') || null,
  dbPoolSize: intEnv('DB_POOL_SIZE', 8),
  /** Largest request body any function accepts. */
  maxBodyBytes: intEnv('MAX_BODY_BYTES', 64 * 1024),
};

/** Provider settings: Gemini when GEMINI_API_KEY is set, else the offline local writer. */
export function providerEnv() {
  const apiKey = Deno.env.get('GEMINI_API_KEY') || null;
  return {
    apiKey,
    // Model names come from configuration only (models get retired); required with a key.
    model: apiKey ? requiredEnv('NARRATIVE_MODEL') : (Deno.env.get('NARRATIVE_MODEL') ?? null),
    baseUrl: Deno.env.get('GEMINI_BASE_URL') || undefined,
    apiVersion: Deno.env.get('GEMINI_API_VERSION') || undefined,
    timeoutMs: intEnv('NARRATIVE_LLM_TIMEOUT_MS', 60_000),
    maxOutputTokens: intEnv('NARRATIVE_MAX_OUTPUT_TOKENS', 2048),
  };
}
