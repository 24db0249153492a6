// Who is calling: a signed-in user (a Supabase Auth access token) or a service (the service_role
// JWT as Bearer, the legacy service_role key by value, or a secret API key `sb_secret_…` in the
// `apikey` header). Tokens are verified here, in code, as Supabase documents for its JWT signing
// keys (the functions run with verify_jwt = false):
//   - ES256/RS256 tokens against the project's JWKS (SUPABASE_JWKS, which the platform provides;
//     else, and for a kid it does not list yet, Auth's /auth/v1/.well-known/jwks.json). The
//     header must name its key (`kid`).
//   - HS256 tokens against the legacy JWT secret (JWT_SECRET) when the project still has one;
//     without it an HS256 token is refused.
//   - `exp` is required; user tokens must come from this project's Auth (`iss`) for the
//     `authenticated` audience.
// Verified tokens are cached until they expire (bounded, least recently used first out), keyed by
// the token's hash, so a hot path pays for the signature check once per token and a cache hit
// costs one hash and no signature or key comparison.
import {
  createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { createHash } from 'node:crypto';
import { env } from './env.ts';
import { bearerToken } from './bearer.ts';
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

/** The `iss` of this project's user tokens. */
export const AUTH_ISSUER = `${env.supabaseUrl.replace(/\/+$/, '')}/auth/v1`;
export const USER_AUDIENCE = 'authenticated';
const ASYMMETRIC_ALGORITHMS = ['ES256', 'RS256'];
// API keys that are JWTs (anon, service_role) carry no audience and the platform's own issuer.
const API_KEY_ROLES = new Set(['anon', 'service_role']);

// SUPABASE_JWKS is {"keys": [...]} or a bare array of keys.
function parseJwks(text: string) {
  const parsed = JSON.parse(text);
  return Array.isArray(parsed) ? { keys: parsed } : parsed;
}
const remoteKeys = createRemoteJWKSet(new URL(`${AUTH_ISSUER}/.well-known/jwks.json`));
const localKeys = env.jwks ? createLocalJWKSet(parseJwks(env.jwks)) : null;
// A kid the env's key set does not know may be a key rotated in since the function started: ask
// Auth (jose rate-limits refetches to one per 30 s).
const keySet: JWTVerifyGetKey = localKeys
  ? async (header, token) => {
    try {
      return await localKeys(header, token);
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey) return await remoteKeys(header, token);
      throw err;
    }
  }
  : remoteKeys;
const legacySecret = env.jwtSecret ? new TextEncoder().encode(env.jwtSecret) : null;

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

// Verified claims by a SHA-256 of the token (raw tokens are never kept; hashing one costs a few
// µs, synchronously, far less than a signature check). Insertion order is recency: a hit moves
// the entry to the end, and the oldest is dropped when full.
const MAX_CACHED = 10_000;
const verified = new Map<string, Claims>();

const cacheKey = (token: string) => createHash('sha256').update(token).digest('base64');

function cachedClaims(key: string): Claims | null {
  const hit = verified.get(key);
  if (!hit) return null;
  verified.delete(key);
  // Past exp the token is verified afresh (and refused by jose's exp check).
  if ((hit.exp as number) <= Date.now() / 1000) return null;
  verified.set(key, hit);
  return hit;
}

function remember(key: string, claims: Claims): void {
  if (verified.size >= MAX_CACHED) verified.delete(verified.keys().next().value as string);
  verified.set(key, claims);
}

async function verifySignature(token: string): Promise<JWTPayload> {
  const { alg, kid } = decodeProtectedHeader(token);
  if (alg === 'HS256') {
    if (!legacySecret) throw new Error('HS256 token but no legacy JWT secret is configured');
    return (await jwtVerify(token, legacySecret, { algorithms: ['HS256'], requiredClaims: ['exp'] })).payload;
  }
  if (!kid) throw new Error('an asymmetric token must name its key (kid)');
  return (await jwtVerify(token, keySet, { algorithms: ASYMMETRIC_ALGORITHMS, requiredClaims: ['exp'] })).payload;
}

/** The claims a token proves; anything else (see the top of this file) is 401. */
function checkedClaims(payload: JWTPayload): Claims {
  if (typeof payload.role !== 'string') throw new Error('no role claim');
  if (!API_KEY_ROLES.has(payload.role)) {
    if (payload.iss !== AUTH_ISSUER) throw new Error('issued by another Auth server');
    const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    if (!aud.includes(USER_AUDIENCE)) throw new Error('not for the authenticated audience');
  }
  return payload as Claims;
}

export async function verifyJwt(token: string): Promise<Claims> {
  const key = cacheKey(token);
  return cachedClaims(key) ?? await verifyAndRemember(token, key);
}

async function verifyAndRemember(token: string, key: string): Promise<Claims> {
  let claims: Claims;
  try {
    claims = checkedClaims(await verifySignature(token));
  } catch {
    throw new HttpError(401, 'invalid_token', 'The access token is invalid or expired');
  }
  remember(key, claims);
  return claims;
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
  // A token verified before answers from the cache, before any comparison with the legacy key.
  const key = cacheKey(token);
  let claims = cachedClaims(key);
  if (!claims) {
    if (legacyServiceKey && await secretsEqual(token, legacyServiceKey)) return { kind: 'service' };
    claims = await verifyAndRemember(token, key);
  }
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
