// LOCAL STAND-IN for Supabase Auth (GoTrue): the endpoints supabase-js calls for password
// sign-in, refresh, getUser, sign-out and admin user management, over the same auth.users /
// auth.sessions / auth.refresh_tokens tables. Tokens are JWTs with Supabase's claims: ES256 (JWT
// signing keys), or HS256 with the legacy JWT secret when one is given (a legacy project).
// Not implemented: email/SMS/OAuth/MFA flows, rate limits, email confirmation.
import { type JWK, type JWTPayload, createLocalJWKSet, decodeProtectedHeader, importJWK, jwtVerify, SignJWT } from 'jose';
import type { Sql } from 'postgres';

export interface AuthOptions {
  sql: Sql;
  privateJwk: JWK;
  publicJwk: JWK;
  issuer: string;
  jwtExpiry: number;
  secretKey: string;
  /** Set: user tokens are HS256 with this secret (and HS256 tokens are accepted). */
  legacyJwtSecret: string | null;
}

interface UserRow {
  id: string;
  aud: string;
  role: string;
  email: string;
  phone: string | null;
  email_confirmed_at: Date | null;
  last_sign_in_at: Date | null;
  raw_app_meta_data: Record<string, unknown> | null;
  raw_user_meta_data: Record<string, unknown> | null;
  created_at: Date;
  updated_at: Date;
  banned_until: Date | null;
  is_anonymous: boolean;
}

class AuthError extends Error {
  constructor(readonly status: number, readonly errorCode: string, message: string) {
    super(message);
  }
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

const USER_COLUMNS = `id, aud, role, email, phone, email_confirmed_at, last_sign_in_at, raw_app_meta_data,
  raw_user_meta_data, created_at, updated_at, banned_until, is_anonymous`;

function userJson(u: UserRow) {
  return {
    id: u.id,
    aud: u.aud,
    role: u.role,
    email: u.email,
    email_confirmed_at: u.email_confirmed_at,
    phone: u.phone ?? '',
    confirmed_at: u.email_confirmed_at,
    last_sign_in_at: u.last_sign_in_at,
    app_metadata: u.raw_app_meta_data ?? {},
    user_metadata: u.raw_user_meta_data ?? {},
    identities: [],
    created_at: u.created_at,
    updated_at: u.updated_at,
    is_anonymous: u.is_anonymous,
  };
}

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return btoa(String.fromCharCode(...bytes)).replace(/[+/=]/g, (c) => ({ '+': '-', '/': '_', '=': '' })[c]!);
}

async function readJson(req: Request): Promise<Record<string, unknown>> {
  try {
    const body = await req.json();
    if (body && typeof body === 'object' && !Array.isArray(body)) return body as Record<string, unknown>;
  } catch { /* fall through */ }
  throw new AuthError(400, 'bad_json', 'Could not parse request body as JSON');
}

function bearer(req: Request): string | null {
  const h = req.headers.get('authorization');
  return h?.toLowerCase().startsWith('bearer ') ? h.slice(7).trim() : null;
}

export function createAuth(opts: AuthOptions) {
  const { sql } = opts;
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

  async function requireAdmin(req: Request): Promise<void> {
    const token = bearer(req) ?? req.headers.get('apikey');
    if (token && token === opts.secretKey) return;
    if (token && token.split('.').length === 3) {
      const claims = await verify(token);
      if (claims.role === 'service_role') return;
    }
    throw new AuthError(403, 'not_admin', 'User not allowed');
  }

  async function issueSession(user: UserRow, sessionId: string, refreshToken: string) {
    const now = Math.floor(Date.now() / 1000);
    const accessToken = await new SignJWT({
      email: user.email,
      phone: user.phone ?? '',
      app_metadata: user.raw_app_meta_data ?? {},
      user_metadata: user.raw_user_meta_data ?? {},
      role: user.role ?? 'authenticated',
      aal: 'aal1',
      amr: [{ method: 'password', timestamp: now }],
      session_id: sessionId,
      is_anonymous: user.is_anonymous,
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

  async function loadUser(id: string): Promise<UserRow | undefined> {
    const [u] = await sql.unsafe<UserRow[]>(`select ${USER_COLUMNS} from auth.users where id = $1 and deleted_at is null`, [id]);
    return u;
  }

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
    return json(await issueSession({ ...user, last_sign_in_at: new Date() }, sessionId, refreshToken));
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
    const user = await loadUser(result.userId);
    if (!user) throw new AuthError(400, 'user_not_found', 'User from refresh token not found');
    return json(await issueSession(user, result.sessionId, result.token));
  }

  async function currentClaims(req: Request): Promise<JWTPayload & { session_id?: string }> {
    const token = bearer(req);
    if (!token) throw new AuthError(401, 'no_authorization', 'This endpoint requires a valid Bearer token');
    const claims = (await verify(token)) as JWTPayload & { session_id?: string };
    if (!claims.sub) throw new AuthError(403, 'bad_jwt', 'invalid claim: missing sub claim');
    if (claims.session_id) {
      const [s] = await sql`select 1 from auth.sessions where id = ${claims.session_id}`;
      if (!s) throw new AuthError(403, 'session_not_found', 'Session from session_id claim in JWT does not exist');
    }
    return claims;
  }

  async function getUser(req: Request) {
    const claims = await currentClaims(req);
    const user = await loadUser(claims.sub!);
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

  async function createUser(body: Record<string, unknown>, confirm: boolean) {
    const email = typeof body.email === 'string' ? body.email.trim().toLowerCase() : '';
    const password = typeof body.password === 'string' ? body.password : null;
    if (!/^[^@\s]+@[^@\s]+$/.test(email)) throw new AuthError(400, 'validation_failed', 'Unable to validate email address: invalid format');
    if (password !== null && password.length < 6) throw new AuthError(422, 'weak_password', 'Password should be at least 6 characters.');
    const appMeta = { provider: 'email', providers: ['email'], ...(body.app_metadata as object ?? {}) };
    const userMeta = (body.user_metadata ?? body.data ?? {}) as object;
    try {
      // As GoTrue stores an email user: the default instance, aud/role 'authenticated', empty
      // (not null) token columns, and its 'email' identity in the same statement.
      const [u] = await sql.unsafe<UserRow[]>(
        `with u as (
           insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
             raw_app_meta_data, raw_user_meta_data, confirmation_token, recovery_token, email_change_token_new, email_change)
           values ('00000000-0000-0000-0000-000000000000', coalesce($1::uuid, extensions.gen_random_uuid()),
                   'authenticated', 'authenticated', $2,
                   case when $3::text is null then null else extensions.crypt($3, extensions.gen_salt('bf', 10)) end,
                   case when $4 then now() end, $5, $6, '', '', '', '')
           returning ${USER_COLUMNS}
         ), i as (
           insert into auth.identities (provider_id, user_id, identity_data, provider, created_at, updated_at)
           select id::text, id, jsonb_build_object('sub', id::text, 'email', email, 'email_verified', $4, 'phone_verified', false),
                  'email', now(), now()
           from u
         )
         select * from u`,
        [typeof body.id === 'string' ? body.id : null, email, password, confirm, appMeta as never, userMeta as never],
      );
      return u;
    } catch (err) {
      if ((err as { code?: string }).code === '23505') {
        throw new AuthError(422, 'email_exists', 'A user with this email address has already been registered');
      }
      throw err;
    }
  }

  async function admin(req: Request, rest: string, url: URL) {
    await requireAdmin(req);
    const id = rest.split('/')[0];
    if (!id) {
      if (req.method === 'POST') {
        const body = await readJson(req);
        return json(userJson(await createUser(body, body.email_confirm === true)));
      }
      if (req.method === 'GET') {
        const perPage = Math.min(Number(url.searchParams.get('per_page') ?? 50) || 50, 1000);
        const page = Math.max(Number(url.searchParams.get('page') ?? 1) || 1, 1);
        const rows = await sql.unsafe<UserRow[]>(
          `select ${USER_COLUMNS} from auth.users where deleted_at is null order by created_at, id limit $1 offset $2`,
          [perPage, (page - 1) * perPage],
        );
        return json({ users: rows.map(userJson), aud: 'authenticated' });
      }
    } else {
      if (!/^[0-9a-f-]{36}$/i.test(id)) throw new AuthError(404, 'user_not_found', 'User not found');
      if (req.method === 'GET') {
        const user = await loadUser(id);
        if (!user) throw new AuthError(404, 'user_not_found', 'User not found');
        return json(userJson(user));
      }
      if (req.method === 'PUT') {
        const body = await readJson(req);
        const [u] = await sql.unsafe<UserRow[]>(
          `update auth.users set
             raw_app_meta_data = case when $2::jsonb is null then raw_app_meta_data else raw_app_meta_data || $2::jsonb end,
             raw_user_meta_data = case when $3::jsonb is null then raw_user_meta_data else raw_user_meta_data || $3::jsonb end,
             encrypted_password = case when $4::text is null then encrypted_password else extensions.crypt($4, extensions.gen_salt('bf', 10)) end,
             updated_at = now()
           where id = $1 and deleted_at is null returning ${USER_COLUMNS}`,
          [id, (body.app_metadata ?? null) as never, (body.user_metadata ?? null) as never,
            typeof body.password === 'string' ? body.password : null],
        );
        if (!u) throw new AuthError(404, 'user_not_found', 'User not found');
        return json(userJson(u));
      }
      if (req.method === 'DELETE') {
        const [u] = await sql.unsafe<UserRow[]>(`delete from auth.users where id = $1 returning ${USER_COLUMNS}`, [id]);
        if (!u) throw new AuthError(404, 'user_not_found', 'User not found');
        return json(userJson(u));
      }
    }
    throw new AuthError(405, 'method_not_allowed', 'Method not allowed');
  }

  async function route(req: Request, path: string, url: URL): Promise<Response> {
    if (path === '/health' && req.method === 'GET') {
      return json({ name: 'GoTrue', version: 'local-stand-in', description: 'Local stand-in for Supabase Auth' });
    }
    if (path === '/.well-known/jwks.json' && req.method === 'GET') return json({ keys: [opts.publicJwk] });
    if (path === '/settings' && req.method === 'GET') {
      return json({ external: { email: true }, disable_signup: false, mailer_autoconfirm: true, phone_autoconfirm: false });
    }
    if (path === '/token' && req.method === 'POST') {
      const grant = url.searchParams.get('grant_type');
      if (grant === 'password') return await passwordGrant(req);
      if (grant === 'refresh_token') return await refreshGrant(req);
      throw new AuthError(400, 'unsupported_grant_type', `unsupported_grant_type: ${grant ?? ''}`);
    }
    if (path === '/signup' && req.method === 'POST') {
      const body = await readJson(req);
      await createUser(body, true);
      return await passwordGrant(new Request(req.url, { method: 'POST', body: JSON.stringify({ email: body.email, password: body.password }) }));
    }
    if (path === '/user' && req.method === 'GET') return await getUser(req);
    if (path === '/logout' && req.method === 'POST') return await logout(req, url);
    if (path.startsWith('/admin/users')) return await admin(req, path.slice('/admin/users'.length).replace(/^\//, ''), url);
    throw new AuthError(404, 'not_found', 'Not found');
  }

  return async function handle(req: Request, path: string, url: URL): Promise<Response> {
    try {
      return await route(req, path, url);
    } catch (err) {
      if (err instanceof AuthError) return json({ code: err.status, error_code: err.errorCode, msg: err.message }, err.status);
      console.error(JSON.stringify({ ts: new Date().toISOString(), level: 'error', msg: 'auth_error', path, error: String(err) }));
      return json({ code: 500, error_code: 'unexpected_failure', msg: 'Unexpected failure' }, 500);
    }
  };
}
