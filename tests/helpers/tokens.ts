// Hand-made access tokens for auth tests: by default exactly what the local Auth issues for the
// running mode (ES256 with the signing key and its kid, or HS256 with the legacy JWT secret);
// each option breaks one thing.
import { SignJWT, importJWK, type JWTPayload } from 'jose';
import { API_URL } from '../../local/config.ts';
import { authJwtMode, keys } from './stack.ts';

export const AUTH_ISSUER = `${API_URL}/auth/v1`;

export interface TokenOptions {
  alg?: 'ES256' | 'HS256';
  /** Signing key (ES256) or secret (HS256); default the stack's own. */
  key?: CryptoKey | Uint8Array;
  /** Header kid; null for none. Default: the signing key's kid for ES256, none for HS256. */
  kid?: string | null;
  iss?: string | null;
  /** Default `authenticated`; a list for a token bound to more audiences. */
  aud?: string | string[] | null;
  /** Seconds from now; null for no exp claim. */
  expiresIn?: number | null;
}

export async function signToken(claims: JWTPayload, opts: TokenOptions = {}): Promise<string> {
  const k = keys();
  const alg = opts.alg ?? (authJwtMode() === 'hs256' ? 'HS256' : 'ES256');
  const kid = opts.kid === undefined ? (alg === 'ES256' ? k.privateJwk.kid : undefined) : (opts.kid ?? undefined);
  const now = Math.floor(Date.now() / 1000);
  const payload: JWTPayload = { role: 'authenticated', ...claims, iat: now - 60 };
  if (opts.iss !== null) payload.iss = opts.iss ?? AUTH_ISSUER;
  if (opts.aud !== null) payload.aud = opts.aud ?? 'authenticated';
  if (opts.expiresIn !== null) payload.exp = now + (opts.expiresIn ?? 600);
  const key = opts.key ?? (alg === 'HS256' ? new TextEncoder().encode(k.jwtSecret) : await importJWK(k.privateJwk, 'ES256'));
  return new SignJWT(payload).setProtectedHeader({ alg, typ: 'JWT', ...(kid ? { kid } : {}) }).sign(key);
}

/** An unsigned `alg: none` token (jose will not make one). */
export function unsignedToken(claims: JWTPayload): string {
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ iss: AUTH_ISSUER, aud: 'authenticated', role: 'authenticated', exp: now + 600, ...claims })}.`;
}
