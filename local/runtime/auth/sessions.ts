// Sessions: the password and refresh-token grants (rotating refresh tokens with GoTrue's reuse
// interval), the current user, and sign-out by scope. Sessions an OAuth client started (auth/oauth.ts)
// are rotated here too, and only by that client, as GoTrue's RefreshTokenGrant checks.
import type { JWTPayload } from 'jose';
import type { Sql } from 'postgres';
import {
  AuthError, bearer, json, loadUser, OAuthError, randomToken, readJson, USER_COLUMNS, userJson, type UserRow,
} from './common.ts';
import type { OAuthSession, Tokens } from './tokens.ts';

/** A rotated refresh token: whose session it is, and the OAuth client that session belongs to. */
interface Rotated {
  user: UserRow;
  sessionId: string;
  token: string;
  oauth: OAuthSession | null;
}

export function createSessions(sql: Sql, tokens: Tokens) {
  async function passwordGrant(req: Request) {
    const body = await readJson(req);
    const email = typeof body.email === 'string' ? body.email.trim().toLowerCase() : '';
    const password = typeof body.password === 'string' ? body.password : '';
    if (!email || !password) throw new AuthError(400, 'validation_failed', 'missing email or phone');
    const [user] = await sql.unsafe<UserRow[]>(
      `select ${USER_COLUMNS} from auth.users
        where lower(email) = $1 and deleted_at is null
          and encrypted_password = extensions.crypt($2, encrypted_password)`,
      [email, password],
    );
    if (!user) throw new AuthError(400, 'invalid_credentials', 'Invalid login credentials');
    if (user.banned_until && user.banned_until > new Date()) throw new AuthError(400, 'user_banned', 'User is banned');
    return json(await startSession(user));
  }

  /** A new session (and its first refresh token) for `user`, started by an OAuth client when given. */
  async function startSession(user: UserRow, oauth: OAuthSession | null = null) {
    const sessionId = crypto.randomUUID();
    const refreshToken = randomToken();
    await sql.begin(async (tx) => {
      await tx`insert into auth.sessions (id, user_id, oauth_client_id, scopes)
               values (${sessionId}, ${user.id}, ${oauth?.clientId ?? null}, ${oauth?.scope ?? null})`;
      await tx`insert into auth.refresh_tokens (token, user_id, session_id) values (${refreshToken}, ${user.id}, ${sessionId})`;
      await tx`update auth.users set last_sign_in_at = now() where id = ${user.id}`;
    });
    return await tokens.issueSession({ ...user, last_sign_in_at: new Date() }, sessionId, refreshToken, oauth);
  }

  async function refreshGrant(req: Request) {
    const body = await readJson(req);
    const token = typeof body.refresh_token === 'string' ? body.refresh_token : '';
    if (!token) throw new AuthError(400, 'validation_failed', 'refresh_token required');
    return json(await refresh(token, null));
  }

  /** A refresh token exchanged for a new session answer (rotate, then a fresh access token). */
  async function refresh(token: string, clientId: string | null) {
    const r = await rotate(token, clientId);
    return await tokens.issueSession(r.user, r.sessionId, r.token, r.oauth);
  }

  /**
   * Rotates a refresh token (GoTrue's RefreshTokenGrant): revoked and replaced by a child, or, when
   * it was rotated within the reuse interval, answered with the active child. `clientId` is the
   * OAuth client that authenticated (null on /token): a session an OAuth client started is
   * refreshed only by that client, and any other session never by a client.
   */
  async function rotate(token: string, clientId: string | null): Promise<Rotated> {
    const next = randomToken();
    const result = await sql.begin(async (tx) => {
      const [rt] = await tx<{ id: string; user_id: string; revoked: boolean; session_id: string; recent: boolean; client: string | null; scopes: string | null }[]>`
        select t.id, t.user_id, t.revoked, t.session_id, t.updated_at > now() - interval '10 seconds' as recent,
               s.oauth_client_id::text as client, s.scopes
          from auth.refresh_tokens t join auth.sessions s on s.id = t.session_id
         where t.token = ${token} for update of t`;
      if (!rt) throw new AuthError(400, 'refresh_token_not_found', 'Invalid Refresh Token: Refresh Token Not Found');
      if (rt.client !== null && clientId === null) throw new OAuthError('invalid_client', 'Client authentication required for OAuth session');
      if (rt.client !== null && rt.client !== clientId) throw new OAuthError('invalid_client', 'Client does not match the session\'s OAuth client');
      if (rt.client === null && clientId !== null) throw new OAuthError('invalid_client', 'Client authentication not allowed for non-OAuth session');
      const oauth = rt.client === null ? null : { clientId: rt.client, scope: rt.scopes };
      if (rt.revoked) {
        // GoTrue's reuse interval: a token rotated moments ago (a second tab) gets the active child.
        const [child] = rt.recent
          ? await tx<{ token: string }[]>`select token from auth.refresh_tokens
              where session_id = ${rt.session_id} and not revoked order by id desc limit 1`
          : [];
        if (!child) throw new AuthError(400, 'refresh_token_already_used', 'Invalid Refresh Token: Already Used');
        return { userId: rt.user_id, sessionId: rt.session_id, token: child.token, oauth };
      }
      await tx`update auth.refresh_tokens set revoked = true, updated_at = now() where id = ${rt.id}`;
      await tx`insert into auth.refresh_tokens (token, user_id, session_id, parent)
               values (${next}, ${rt.user_id}, ${rt.session_id}, ${token})`;
      await tx`update auth.sessions set updated_at = now() where id = ${rt.session_id}`;
      return { userId: rt.user_id, sessionId: rt.session_id, token: next, oauth };
    });
    const user = await loadUser(sql, result.userId);
    if (!user) throw new AuthError(400, 'user_not_found', 'User from refresh token not found');
    return { user, sessionId: result.sessionId, token: result.token, oauth: result.oauth };
  }

  /** POST /token: the grant named by ?grant_type. */
  async function grant(req: Request, url: URL) {
    const type = url.searchParams.get('grant_type');
    if (type === 'password') return await passwordGrant(req);
    if (type === 'refresh_token') return await refreshGrant(req);
    throw new AuthError(400, 'unsupported_grant_type', `unsupported_grant_type: ${type ?? ''}`);
  }

  /** The verified claims of the request's access token, whose session must still exist. */
  async function currentClaims(req: Request): Promise<JWTPayload & { session_id?: string }> {
    const token = bearer(req);
    if (!token) throw new AuthError(401, 'no_authorization', 'This endpoint requires a valid Bearer token');
    const claims = (await tokens.verify(token)) as JWTPayload & { session_id?: string };
    if (!claims.sub) throw new AuthError(403, 'bad_jwt', 'invalid claim: missing sub claim');
    if (claims.session_id) {
      const [s] = await sql`select 1 from auth.sessions where id = ${claims.session_id}`;
      if (!s) throw new AuthError(403, 'session_not_found', 'Session from session_id claim in JWT does not exist');
    }
    return claims;
  }

  async function getUser(req: Request) {
    return json(userJson(await currentUser(req)));
  }

  async function logout(req: Request, url: URL) {
    const claims = await currentClaims(req);
    const scope = url.searchParams.get('scope') ?? 'global';
    if (scope === 'global') await sql`delete from auth.sessions where user_id = ${claims.sub!}`;
    else if (scope === 'others') await sql`delete from auth.sessions where user_id = ${claims.sub!} and id <> ${claims.session_id ?? null}`;
    else await sql`delete from auth.sessions where id = ${claims.session_id ?? null}`;
    return new Response(null, { status: 204 });
  }

  /** The signed-in user of the request (GoTrue's requireAuthentication). */
  async function currentUser(req: Request): Promise<UserRow> {
    const claims = await currentClaims(req);
    const user = await loadUser(sql, claims.sub!);
    if (!user) throw new AuthError(403, 'user_not_found', 'User from sub claim in JWT does not exist');
    return user;
  }

  return { grant, passwordGrant, getUser, logout, startSession, refresh, currentUser };
}
