// Verifies Supabase access tokens (asymmetric ES256 keys, checked against the project's JWKS)
// and returns their claims; functions use the claims to run queries as the user.
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { env } from './env.ts';
import { HttpError } from './http.ts';

export interface Claims extends JWTPayload {
  role: string;
  email?: string;
  session_id?: string;
  app_metadata?: Record<string, unknown>;
  user_metadata?: Record<string, unknown>;
}

const keySet = env.jwks
  ? createLocalJWKSet(JSON.parse(env.jwks))
  : createRemoteJWKSet(new URL('/auth/v1/.well-known/jwks.json', env.supabaseUrl));

export function bearerToken(req: Request): string | null {
  const header = req.headers.get('authorization');
  if (!header || !/^bearer\s+/i.test(header)) return null;
  return header.replace(/^bearer\s+/i, '').trim() || null;
}

export async function verifyJwt(token: string): Promise<Claims> {
  try {
    const { payload } = await jwtVerify(token, keySet);
    if (typeof payload.role !== 'string') throw new Error('no role claim');
    return payload as Claims;
  } catch {
    throw new HttpError(401, 'invalid_token', 'The access token is invalid or expired');
  }
}

/** The signed-in user's claims; anon and service keys are not users. */
export async function requireUser(req: Request): Promise<Claims & { sub: string }> {
  const token = bearerToken(req);
  if (!token) throw new HttpError(401, 'missing_token', 'An Authorization: Bearer <user access token> header is required');
  const claims = await verifyJwt(token);
  if (claims.role !== 'authenticated' || !claims.sub) {
    throw new HttpError(401, 'user_token_required', 'This endpoint needs a signed-in user\'s access token');
  }
  return claims as Claims & { sub: string };
}
