// Access tokens: signed with Supabase's claims (ES256 by the signing key, or HS256 with the
// legacy JWT secret), and verified the same two ways.
import { createLocalJWKSet, decodeProtectedHeader, importJWK, jwtVerify, type JWTPayload, SignJWT } from 'jose';
import { AuthError, type AuthOptions, userJson, type UserRow } from './common.ts';

/** What an OAuth client's session adds to its access tokens (GoTrue: sessions.oauth_client_id and
 *  sessions.scopes become the `client_id` and `scope` claims). */
export interface OAuthSession {
  clientId: string;
  scope: string | null;
}

export interface Tokens {
  verify(token: string): Promise<JWTPayload>;
  /** A session answer (access token, refresh token, user) as GoTrue gives it. */
  issueSession(user: UserRow, sessionId: string, refreshToken: string, oauth?: OAuthSession | null): Promise<Record<string, unknown>>;
}

export function createTokens(opts: AuthOptions): Tokens {
  const jwks = createLocalJWKSet({ keys: [opts.publicJwk] });
  const signingKey = importJWK(opts.privateJwk, 'ES256');
  const legacySecret = opts.legacyJwtSecret ? new TextEncoder().encode(opts.legacyJwtSecret) : null;

  async function verify(token: string): Promise<JWTPayload> {
    try {
      if (legacySecret && decodeProtectedHeader(token).alg === 'HS256') {
        return (await jwtVerify(token, legacySecret, { algorithms: ['HS256'] })).payload;
      }
      return (await jwtVerify(token, jwks, { algorithms: ['ES256'] })).payload;
    } catch {
      throw new AuthError(403, 'bad_jwt', 'invalid JWT: unable to parse or verify signature, token is expired or invalid');
    }
  }

  async function issueSession(user: UserRow, sessionId: string, refreshToken: string, oauth: OAuthSession | null = null) {
    const now = Math.floor(Date.now() / 1000);
    // GoTrue's AccessTokenClaims: client_id and scope are omitted (omitempty) outside OAuth sessions;
    // the audience stays the user's (`authenticated`): Auth has no RFC 8707 resource indicators.
    const oauthClaims = oauth ? { client_id: oauth.clientId, ...(oauth.scope ? { scope: oauth.scope } : {}) } : {};
    const accessToken = await new SignJWT({
      email: user.email,
      phone: user.phone ?? '',
      app_metadata: user.raw_app_meta_data ?? {},
      user_metadata: user.raw_user_meta_data ?? {},
      role: user.role ?? 'authenticated',
      aal: 'aal1',
      amr: [{ method: oauth ? 'oauth_provider/authorization_code' : 'password', timestamp: now }],
      session_id: sessionId,
      is_anonymous: user.is_anonymous,
      ...oauthClaims,
    })
      // Legacy-secret tokens name no key, as GoTrue's do.
      .setProtectedHeader(legacySecret ? { alg: 'HS256', typ: 'JWT' } : { alg: 'ES256', kid: opts.privateJwk.kid, typ: 'JWT' })
      .setIssuer(opts.issuer)
      .setSubject(user.id)
      .setAudience(user.aud ?? 'authenticated')
      .setIssuedAt(now)
      .setExpirationTime(now + opts.jwtExpiry)
      .sign(legacySecret ?? await signingKey);
    return {
      access_token: accessToken,
      token_type: 'bearer',
      expires_in: opts.jwtExpiry,
      expires_at: now + opts.jwtExpiry,
      refresh_token: refreshToken,
      user: userJson(user),
    };
  }

  return { verify, issueSession };
}
