// Function configuration, read and checked once at start: a missing required variable fails
// the function loudly instead of surfacing later as a confusing runtime error.
export function requiredEnv(name: string): string {
  const value = Deno.env.get(name);
  if (!value) throw new Error(`Missing required environment variable ${name}`);
  return value;
}

function intEnv<F extends number | null>(name: string, fallback: F): number | F {
  const raw = Deno.env.get(name);
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return value;
}

export const env = {
  supabaseUrl: requiredEnv('SUPABASE_URL'),
  dbUrl: requiredEnv('SUPABASE_DB_URL'),
  /** Supavisor's transaction-mode URL (a function secret), used instead of SUPABASE_DB_URL when
   *  set: see _shared/db-plan.ts and docs/deploy.md "Database connections". */
  dbPoolerUrl: Deno.env.get('NARRATIVE_DB_POOLER_URL') || null,
  /** Public JWKS as JSON (the platform provides it); when absent the keys are fetched from
   *  Auth's JWKS endpoint. */
  jwks: Deno.env.get('SUPABASE_JWKS') || null,
  /** The project's legacy JWT secret, for projects whose Auth still signs HS256 tokens. A
   *  function secret (`supabase secrets set JWT_SECRET=…`: names starting with SUPABASE_ are
   *  reserved), the name self-hosted Supabase gives its functions. Unset: HS256 tokens are 401. */
  jwtSecret: Deno.env.get('JWT_SECRET') || null,
  /** Connections per isolate; unset: by connection kind (db-plan.ts DEFAULT_POOL_SIZE). */
  dbPoolSize: intEnv('DB_POOL_SIZE', null),
  /** Largest request body any function accepts. */
  maxBodyBytes: intEnv('MAX_BODY_BYTES', 64 * 1024),
  /** OAuth clients (Supabase Auth's OAuth server) whose access tokens the mcp function accepts, by
   *  client_id, comma-separated. Empty or unset: none — only tokens whose `aud` names the MCP URL
   *  (docs/mcp.md). */
  mcpAllowedClientIds: (Deno.env.get('MCP_ALLOWED_CLIENT_IDS') ?? '').split(',').map((id) => id.trim()).filter(Boolean),
};

/** Current models (2026-12: gemini-2.5-pro and gemini-2.5-flash are shut down). Only defaults:
 *  GEMINI_MODEL_INTERACTIVE / GEMINI_MODEL_BULK override them. */
export const DEFAULT_GEMINI_MODELS = { interactive: 'gemini-3.8-flash', bulk: 'gemini-3.5-flash-lite' } as const;

/** Provider settings: Gemini when GEMINI_API_KEY is set, else the offline local writer. */
export function providerEnv() {
  const apiKey = Deno.env.get('GEMINI_API_KEY') || null;
  // NARRATIVE_MODEL (one model for everything) is still honoured for both lanes, under the
  // lane-specific names, so an existing deployment keeps the model it chose.
  const legacy = Deno.env.get('NARRATIVE_MODEL') || undefined;
  const maxOutputTokens = intEnv('NARRATIVE_MAX_OUTPUT_TOKENS', 8192);
  const retryMaxOutputTokens = intEnv('NARRATIVE_RETRY_MAX_OUTPUT_TOKENS', Math.min(65_536, maxOutputTokens * 2));
  if (retryMaxOutputTokens <= maxOutputTokens) {
    throw new Error('NARRATIVE_RETRY_MAX_OUTPUT_TOKENS must be larger than NARRATIVE_MAX_OUTPUT_TOKENS');
  }
  return {
    apiKey,
    models: {
      interactive: Deno.env.get('GEMINI_MODEL_INTERACTIVE') || legacy || DEFAULT_GEMINI_MODELS.interactive,
      bulk: Deno.env.get('GEMINI_MODEL_BULK') || legacy || DEFAULT_GEMINI_MODELS.bulk,
    },
    /** MINIMAL | LOW | MEDIUM | HIGH, checked by the provider at start. */
    thinkingLevel: Deno.env.get('GEMINI_THINKING_LEVEL') || 'LOW',
    baseUrl: Deno.env.get('GEMINI_BASE_URL') || undefined,
    apiVersion: Deno.env.get('GEMINI_API_VERSION') || undefined,
    timeoutMs: intEnv('NARRATIVE_LLM_TIMEOUT_MS', 60_000),
    maxOutputTokens,
    retryMaxOutputTokens,
  };
}
