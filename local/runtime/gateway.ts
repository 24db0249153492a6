// LOCAL STAND-IN for the API gateway's `verify_jwt` check (functions with verify_jwt = true in
// supabase/config.toml): a valid JWT of this project in Authorization, or 401 before the function
// runs. Like the platform's check it takes the asymmetric signing key (by kid) and, for a project
// on the legacy JWT secret, HS256; it knows nothing of issuers or users (the functions do).
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JWK } from 'jose';

export type GateResult = 'missing' | 'invalid' | 'ok';

export function createJwtGate(opts: { publicJwk: JWK; jwtSecret: string | null }): (req: Request) => Promise<GateResult> {
  const jwks = createLocalJWKSet({ keys: [opts.publicJwk] });
  const secret = opts.jwtSecret ? new TextEncoder().encode(opts.jwtSecret) : null;
  return async (req) => {
    const h = req.headers.get('authorization');
    if (!h) return 'missing';
    const token = h.replace(/^bearer\s+/i, '');
    try {
      if (decodeProtectedHeader(token).alg === 'HS256') {
        if (!secret) return 'invalid';
        await jwtVerify(token, secret, { algorithms: ['HS256'] });
      } else {
        await jwtVerify(token, jwks, { algorithms: ['ES256', 'RS256'] });
      }
      return 'ok';
    } catch {
      return 'invalid';
    }
  };
}

/** The gateway's answer when the check fails (Supabase's shape: `{code, message}`). */
export const gateMessages: Record<Exclude<GateResult, 'ok'>, string> = {
  missing: 'Missing authorization header',
  invalid: 'Invalid JWT',
};
