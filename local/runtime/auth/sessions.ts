// Sessions: the password and refresh-token grants (rotating refresh tokens with GoTrue's reuse
// interval), the current user, and sign-out by scope.
import type { JWTPayload } from 'jose';
import type { Sql } from 'postgres';
import { AuthError, bearer, json, loadUser, randomToken, readJson, USER_COLUMNS, userJson, type UserRow } from './common.ts';
import type { Tokens } from './tokens.ts';

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
    const sessionId = crypto.randomUUID();
    const refreshToken = randomToken();
    await sql.begin(async (tx) => {
      await tx`insert into auth.sessions (id, user_id) values (${sessionId}, ${user.id})`;
      await tx`insert into auth.refresh_tokens (token, user_id, session_id) values (${refreshToken}, ${user.id}, ${sessionId})`;
      await tx`update auth.users set last_sign_in_at = now() where id = ${user.id}`;
    });
    return json(await tokens.issueSession({ ...user, last_sign_in_at: new Date() }, sessionId, refreshToken));
  }

  async function refreshGrant(req: Request) {
    const body = await readJson(req);
    const token = typeof body.refresh_token === 'string' ? body.refresh_token : '';
    if (!token) throw new AuthError(400, 'validation_failed', 'refresh_token required');
    const next = randomToken();
    const result = await sql.begin(async (tx) => {
      const [rt] = await tx<{ id: string; user_id: string; revoked: boolean; session_id: string; recent: boolean }[]>`
        select id, user_id, revoked, session_id, updated_at > now() - interval '10 seconds' as recent
          from auth.refresh_tokens where token = ${token} for update`;
      if (!rt) throw new AuthError(400, 'refresh_token_not_found', 'Invalid Refresh Token: Refresh Token Not Found');
      if (rt.revoked) {
        // GoTrue's reuse interval: a token rotated moments ago (a second tab) gets the active child.
        const [child] = rt.recent
          ? await tx<{ token: string }[]>`select token from auth.refresh_tokens
              where session_id = ${rt.session_id} and not revoked order by id desc limit 1`
          : [];
        if (!child) throw new AuthError(400, 'refresh_token_already_used', 'Invalid Refresh Token: Already Used');
        return { userId: rt.user_id, sessionId: rt.session_id, token: child.token };
      }
      await tx`update auth.refresh_tokens set revoked = true, updated_at = now() where id = ${rt.id}`;
      await tx`insert into auth.refresh_tokens (token, user_id, session_id, parent)
               values (${next}, ${rt.user_id}, ${rt.session_id}, ${token})`;
      await tx`update auth.sessions set updated_at = now() where id = ${rt.session_id}`;
      return { userId: rt.user_id, sessionId: rt.session_id, token: next };
    });
    const user = await loadUser(sql, result.userId);
    if (!user) throw new AuthError(400, 'user_not_found', 'User from refresh token not found');
    return json(await tokens.issueSession(user, result.sessionId, result.token));
  }

  /** POST /token: the grant named by ?grant_type. */
  async function grant(req: Request, url: URL) {
    const type = url.searchParams.get('grant_type');
    if (type === 'password') return await passwordGrant(req);
    if (type === 'refresh_token') return await refreshGrant(req);
    throw new AuthError(400, 'unsupported_grant_type', `unsupported_grant_type: ${type ?? ''}`);
  }

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
    const claims = await currentClaims(req);
    const user = await loadUser(sql, claims.sub!);
    if (!user) throw new AuthError(403, 'user_not_found', 'User from sub claim in JWT does not exist');
    return json(userJson(user));
  }

  async function logout(req: Request, url: URL) {
    const claims = await currentClaims(req);
    const scope = url.searchParams.get('scope') ?? 'global';
    if (scope === 'global') await sql`delete from auth.sessions where user_id = ${claims.sub!}`;
    else if (scope === 'others') await sql`delete from auth.sessions where user_id = ${claims.sub!} and id <> ${claims.session_id ?? null}`;
    else await sql`delete from auth.sessions where id = ${claims.session_id ?? null}`;
    return new Response(null, { status: 204 });
  }

  return { grant, passwordGrant, getUser, logout };
}
