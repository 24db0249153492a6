// Who is calling: a signed-in user (Supabase access token, ES256, checked against the project's
// JWKS) or a service (the service_role JWT as Bearer, or a secret API key `sb_secret_…` in the
// `apikey` header). Verified tokens are cached until they expire, so a hot path pays for the
// signature check once per token.
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { env } from './env.ts';
import { HttpError, secretsEqual } from './http.ts';

export interface Claims extends JWTPayload {
  role: string;
  email?: string;
  session_id?: string;
  app_metadata?: Record<string, unknown>;
  user_metadata?: Record<string, unknown>;
}
export type UserClaims = Claims & { sub: string };
export type Caller = { kind: 'user'; claims: UserClaims } | { kind: 'service' };

// SUPABASE_JWKS is {"keys": [...]} or a bare array of keys.
const keySet = env.jwks
  ? createLocalJWKSet((() => { const j = JSON.parse(env.jwks); return Array.isArray(j) ? { keys: j } : j; })())
  : createRemoteJWKSet(new URL('/auth/v1/.well-known/jwks.json', env.supabaseUrl));

// A project's legacy service_role key is signed with the legacy JWT secret (HS256), which the
// JWKS does not publish: recognise it by value.
const legacyServiceKey = Deno.env.get('SUPABASE_SERVICE_ROLE_KEY') ?? null;

// SUPABASE_SECRET_KEYS is a JSON object of named secret keys (platform); SUPABASE_SECRET_KEY a
// single one (self-hosted).
const secretKeys: string[] = (() => {
  const many = Deno.env.get('SUPABASE_SECRET_KEYS');
  const keys = many ? Object.values(JSON.parse(many) as Record<string, string>) : [];
  const one = Deno.env.get('SUPABASE_SECRET_KEY');
  return one ? [...keys, one] : keys;
})();

const verified = new Map<string, Claims>();
const MAX_CACHED = 10_000;

export function bearerToken(req: Request): string | null {
  const header = req.headers.get('authorization');
  if (!header || !/^bearer\s+/i.test(header)) return null;
  return header.replace(/^bearer\s+/i, '').trim() || null;
}

export async function verifyJwt(token: string): Promise<Claims> {
  const hit = verified.get(token);
  if (hit && (hit.exp ?? 0) > Date.now() / 1000) return hit;
  try {
    const { payload } = await jwtVerify(token, keySet);
    if (typeof payload.role !== 'string') throw new Error('no role claim');
    if (verified.size >= MAX_CACHED) verified.clear();
    verified.set(token, payload as Claims);
    return payload as Claims;
  } catch {
    verified.delete(token);
    throw new HttpError(401, 'invalid_token', 'The access token is invalid or expired');
  }
}

async function isSecretKey(key: string | null): Promise<boolean> {
  if (!key || !key.startsWith('sb_secret_')) return false;
  for (const k of secretKeys) if (await secretsEqual(key, k)) return true;
  return false;
}

/** A user or a service; anything else is 401. */
export async function authenticate(req: Request): Promise<Caller> {
  const apikey = req.headers.get('apikey');
  if (await isSecretKey(apikey)) return { kind: 'service' };
  const token = bearerToken(req);
  if (!token) {
    if (apikey?.startsWith('sb_secret_')) throw new HttpError(401, 'invalid_api_key', 'The secret API key is not valid');
    throw new HttpError(401, 'missing_token', 'An Authorization: Bearer <token> header is required');
  }
  if (legacyServiceKey && await secretsEqual(token, legacyServiceKey)) return { kind: 'service' };
  const claims = await verifyJwt(token);
  if (claims.role === 'service_role') return { kind: 'service' };
  if (claims.role === 'authenticated' && claims.sub) return { kind: 'user', claims: claims as UserClaims };
  throw new HttpError(401, 'user_token_required', 'A signed-in user\'s access token (or a service key) is required');
}

/** The signed-in user's claims; anon and service keys are not users. */
export async function requireUser(req: Request): Promise<UserClaims> {
  const token = bearerToken(req);
  if (!token) throw new HttpError(401, 'missing_token', 'An Authorization: Bearer <user access token> header is required');
  const claims = await verifyJwt(token);
  if (claims.role !== 'authenticated' || !claims.sub) {
    throw new HttpError(401, 'user_token_required', 'This endpoint needs a signed-in user\'s access token');
  }
  return claims as UserClaims;
}

/** Admins: a service caller, or a user whose app_metadata.role is "admin" (set by the server,
 *  unlike user_metadata which users can edit and which never grants anything). */
export async function requireAdmin(req: Request): Promise<Caller> {
  const caller = await authenticate(req);
  if (caller.kind === 'service' || caller.claims.app_metadata?.role === 'admin') return caller;
  throw new HttpError(403, 'admin_required', 'Only admins (app_metadata.role = "admin") or service keys may do this');
}

/** Claims to run queries as `userId` on a service caller's behalf, under the same RLS. */
export function actAs(userId: string): UserClaims {
  return { sub: userId, role: 'authenticated', aud: 'authenticated' };
}
