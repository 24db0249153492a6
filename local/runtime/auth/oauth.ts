// LOCAL STAND-IN for Supabase Auth's OAuth 2.1 server (GoTrue internal/api/oauthserver/authorize.go
// and handlers.go), the authorization-code flow with PKCE an MCP client runs:
//   GET  /oauth/authorize?client_id&redirect_uri&response_type=code&scope&state&code_challenge
//        &code_challenge_method[&resource] -> 302 to <site_url><authorization_url_path>?authorization_id=…
//   GET  /oauth/authorizations/<id>          (the signed-in user's session token) -> the request's details,
//        or {redirect_url} at once when the user already consented to these scopes for this client
//   POST /oauth/authorizations/<id>/consent  {"action": "approve"|"deny"} -> {redirect_url} (?code=…&state=…)
//   POST /oauth/token  grant_type=authorization_code (code, redirect_uri, code_verifier) or
//        refresh_token, with client authentication -> {access_token, token_type, expires_in, refresh_token}
// plus RFC 8414 metadata. Access tokens are the user's ordinary tokens of a new session started by
// the client, with `client_id` (and `scope`) added — the audience stays `authenticated`: like
// Supabase Auth, no RFC 8707 audience; `resource` is only checked between authorize and token.
// Not implemented: ID tokens (openid), /oauth/userinfo, the user's grant list, client updates.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { TransactionSql } from 'postgres';
import { AuthError, type AuthOptions, json, loadUser, OAuthError, readJson } from './common.ts';
import { createOAuthClients } from './oauth-clients.ts';
import type { createSessions } from './sessions.ts';

type Sessions = ReturnType<typeof createSessions>;

/** GoTrue's SupportedOAuthScopes, its default scope and authorization TTL (config defaults). */
const SCOPES = ['openid', 'profile', 'email', 'phone', 'offline_access'];
const DEFAULT_SCOPE = 'email';
const AUTHORIZATION_TTL_SECONDS = 600;

interface AuthorizationRow {
  id: string;
  authorization_id: string;
  client_id: string;
  user_id: string | null;
  redirect_uri: string;
  scope: string;
  state: string | null;
  resource: string | null;
  code_challenge: string | null;
  code_challenge_method: 's256' | 'plain' | null;
  status: 'pending' | 'approved' | 'denied' | 'expired';
  authorization_code: string | null;
  expired: boolean;
}

const scopesOf = (s: string) => s.split(' ').map((x) => x.trim()).filter(Boolean);

function withQuery(uri: string, params: Record<string, string | null | undefined>): string {
  const u = new URL(uri);
  for (const [k, v] of Object.entries(params)) if (v) u.searchParams.set(k, v);
  return u.toString();
}

const redirect = (location: string) => new Response(null, { status: 302, headers: { location } });

/** Everything authorize checks once client and redirect_uri are trusted (errors go to the redirect). */
function checkAuthorizeParams(q: URLSearchParams): { scope: string; challenge: string; method: 's256' | 'plain' } {
  if ((q.get('response_type') || 'code') !== 'code') throw new Error('only response_type=code is supported');
  const scope = q.get('scope') || DEFAULT_SCOPE;
  const unsupported = scopesOf(scope).find((s) => !SCOPES.includes(s));
  if (unsupported) throw new Error(`unsupported scope: ${unsupported}`);
  const resource = q.get('resource');
  if (resource) {
    if (!URL.canParse(resource)) throw new Error('resource must be an absolute URI');
    const r = new URL(resource);
    if (r.hash) throw new Error('resource must not include a fragment component');
    if (r.search) throw new Error('resource must not include a query component');
  }
  // PKCE is mandatory (OAuth 2.1).
  const challenge = q.get('code_challenge') ?? '';
  const method = (q.get('code_challenge_method') ?? '').toLowerCase();
  if (!challenge || !method) throw new Error('PKCE flow requires both code_challenge and code_challenge_method');
  if (method !== 's256' && method !== 'plain') throw new Error("code_challenge_method must be 'S256' or 'plain'");
  if (challenge.length < 43 || challenge.length > 128) throw new Error('code_challenge must be between 43 and 128 characters');
  return { scope, challenge, method };
}

function pkceMatches(a: AuthorizationRow, verifier: string): boolean {
  const expected = a.code_challenge_method === 's256' ? createHash('sha256').update(verifier).digest('base64url') : verifier;
  const x = new TextEncoder().encode(expected);
  const y = new TextEncoder().encode(a.code_challenge ?? '');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** A token request's parameters: JSON when the content type says so, else form-encoded. */
async function tokenParams(req: Request): Promise<Record<string, string>> {
  const type = req.headers.get('content-type') ?? '';
  if (type.includes('application/json')) {
    try {
      const body = await readJson(req);
      return Object.fromEntries(Object.entries(body).filter((e): e is [string, string] => typeof e[1] === 'string'));
    } catch {
      throw new OAuthError('invalid_request', 'Invalid JSON body');
    }
  }
  return Object.fromEntries(new URLSearchParams(await req.text()));
}

export function createOAuthServer(opts: AuthOptions, sessions: Sessions) {
  const { sql } = opts;
  const clients = createOAuthClients(sql, opts.oauthServer.allowDynamicRegistration);
  const issuer = opts.issuer.replace(/\/+$/, '');

  function requireEnabled(): void {
    if (!opts.oauthServer.enabled) throw new AuthError(404, 'feature_disabled', 'OAuth server is disabled');
  }

  /** validateRequestOrigin: a browser's Origin must be an allowed redirect URL's origin. */
  function checkOrigin(req: Request): void {
    const origin = req.headers.get('origin');
    if (!origin) return;
    const allowed = [opts.siteUrl, ...opts.redirectUrls].flatMap((u) => (URL.canParse(u) ? [new URL(u).origin] : []));
    if (!allowed.includes(origin)) throw new AuthError(400, 'validation_failed', 'unauthorized request origin');
  }

  async function authorize(_req: Request, url: URL): Promise<Response> {
    const q = url.searchParams;
    const clientId = q.get('client_id') ?? '';
    const redirectUri = q.get('redirect_uri') ?? '';
    if (!clientId) throw new AuthError(400, 'validation_failed', 'client_id is required');
    if (!redirectUri) throw new AuthError(400, 'validation_failed', 'redirect_uri is required');
    const client = await clients.find(clientId);
    if (!client) throw new AuthError(400, 'oauth_client_not_found', 'invalid client_id');
    if (!client.redirect_uris.split(',').includes(redirectUri)) throw new AuthError(400, 'validation_failed', 'invalid redirect_uri');
    const state = q.get('state');
    let checked;
    try {
      checked = checkAuthorizeParams(q);
    } catch (err) {
      return redirect(withQuery(redirectUri, { error: 'invalid_request', error_description: (err as Error).message, state }));
    }
    const authorizationId = alphanumeric(32);
    await sql`insert into auth.oauth_authorizations (id, authorization_id, client_id, redirect_uri, scope, state, resource,
        code_challenge, code_challenge_method, nonce, expires_at)
      values (${crypto.randomUUID()}, ${authorizationId}, ${client.id}, ${redirectUri}, ${checked.scope}, ${state || null},
        ${q.get('resource') || null}, ${checked.challenge}, ${checked.method}, ${q.get('nonce') || null},
        now() + make_interval(secs => ${AUTHORIZATION_TTL_SECONDS}))`;
    const path = opts.oauthServer.authorizationPath.startsWith('/') ? opts.oauthServer.authorizationPath : `/${opts.oauthServer.authorizationPath}`;
    return redirect(`${opts.siteUrl.replace(/\/+$/, '')}${path}?authorization_id=${authorizationId}`);
  }

  /** The pending request `id` of the signed-in user, locked; expired ones are marked and not found. */
  async function pending(tx: TransactionSql, id: string, notPending: string): Promise<AuthorizationRow> {
    const [a] = await tx<AuthorizationRow[]>`select *, expires_at < now() as expired from auth.oauth_authorizations
      where authorization_id = ${id} for update skip locked`;
    const notFound = new AuthError(404, 'oauth_authorization_not_found', 'authorization not found');
    if (!a) throw notFound;
    if (a.expired) {
      if (a.status === 'pending') await tx`update auth.oauth_authorizations set status = 'expired' where id = ${a.id}`;
      throw notFound;
    }
    if (a.status !== 'pending') throw new AuthError(400, 'validation_failed', notPending);
    return a;
  }

  async function approve(tx: TransactionSql, a: AuthorizationRow): Promise<string> {
    const code = crypto.randomUUID();
    await tx`update auth.oauth_authorizations set status = 'approved', approved_at = now(), authorization_code = ${code}
      where id = ${a.id}`;
    return withQuery(a.redirect_uri, { code, state: a.state });
  }

  /** GET /oauth/authorizations/<id>: binds the request to the user, auto-approving a covered consent. */
  async function details(req: Request, id: string): Promise<Response> {
    checkOrigin(req);
    const user = await sessions.currentUser(req);
    return await sql.begin(async (tx) => {
      const a = await pending(tx, id, 'authorization request cannot be processed');
      if (a.user_id === null) {
        await tx`update auth.oauth_authorizations set user_id = ${user.id} where id = ${a.id}`;
        const [consent] = await tx<{ scopes: string }[]>`select scopes from auth.oauth_consents
          where user_id = ${user.id} and client_id = ${a.client_id} and revoked_at is null`;
        if (consent && scopesOf(a.scope).every((s) => scopesOf(consent.scopes).includes(s))) {
          return json({ redirect_url: await approve(tx, a) });
        }
      } else if (a.user_id !== user.id) {
        throw new AuthError(404, 'oauth_authorization_not_found', 'authorization not found');
      }
      const [c] = await tx<{ client_name: string | null; client_uri: string | null; logo_uri: string | null }[]>`
        select client_name, client_uri, logo_uri from auth.oauth_clients where id = ${a.client_id}`;
      return json({
        authorization_id: a.authorization_id, redirect_uri: a.redirect_uri,
        client: { id: a.client_id, ...(c?.client_name ? { name: c.client_name } : {}), ...(c?.client_uri ? { uri: c.client_uri } : {}),
          ...(c?.logo_uri ? { logo_uri: c.logo_uri } : {}) },
        user: { id: user.id, email: user.email }, scope: a.scope,
      });
    });
  }

  /** POST /oauth/authorizations/<id>/consent: approve (a code, the consent remembered) or deny. */
  async function consent(req: Request, id: string): Promise<Response> {
    checkOrigin(req);
    const user = await sessions.currentUser(req);
    let action: unknown;
    try {
      action = (await readJson(req)).action;
    } catch {
      throw new AuthError(400, 'bad_json', 'invalid JSON body');
    }
    if (action !== 'approve' && action !== 'deny') throw new AuthError(400, 'validation_failed', "action must be 'approve' or 'deny'");
    return await sql.begin(async (tx) => {
      const a = await pending(tx, id, 'authorization request is no longer pending');
      if (a.user_id !== user.id) throw new AuthError(404, 'oauth_authorization_not_found', 'authorization not found');
      if (action === 'deny') {
        await tx`update auth.oauth_authorizations set status = 'denied' where id = ${a.id}`;
        return json({ redirect_url: withQuery(a.redirect_uri, { error: 'access_denied', error_description: 'User denied the request', state: a.state }) });
      }
      const redirectUrl = await approve(tx, a);
      await tx`insert into auth.oauth_consents (id, user_id, client_id, scopes)
        values (${crypto.randomUUID()}, ${user.id}, ${a.client_id}, ${scopesOf(a.scope).join(' ')})
        on conflict (user_id, client_id) do update set scopes = excluded.scopes, granted_at = now(), revoked_at = null`;
      return json({ redirect_url: redirectUrl });
    });
  }

  /** POST /oauth/token: the authorization_code (PKCE) and refresh_token grants of an authenticated client. */
  async function token(req: Request): Promise<Response> {
    const p = await tokenParams(req);
    const client = await clients.authenticate(req, p);
    if (!p.grant_type) throw new OAuthError('invalid_request', 'grant_type is required');
    if (!client) throw new OAuthError('invalid_client', 'Client authentication required');
    if (!client.grant_types.split(',').includes(p.grant_type)) {
      throw new OAuthError('unsupported_grant_type', `Client is not allowed to use grant type: ${p.grant_type}`);
    }
    let session: Record<string, unknown>;
    if (p.grant_type === 'authorization_code') {
      if (!p.code) throw new OAuthError('invalid_request', 'code is required for authorization_code grant');
      session = await sql.begin(async (tx) => {
        const [a] = await tx<AuthorizationRow[]>`select *, expires_at < now() as expired from auth.oauth_authorizations
          where authorization_code = ${p.code} and status = 'approved' for update`;
        if (!a) throw new OAuthError('invalid_grant', 'Invalid authorization code');
        if (a.expired) throw new OAuthError('invalid_grant', 'Authorization code has expired');
        if (a.client_id !== client.id) throw new OAuthError('invalid_grant', 'Authorization code was not issued for this client');
        if (p.resource && p.resource !== a.resource) {
          throw new OAuthError('invalid_grant', 'Authorization code resource does not match the resource parameter');
        }
        if (p.redirect_uri && p.redirect_uri !== a.redirect_uri) throw new OAuthError('invalid_grant', 'Invalid redirect_uri');
        if (a.code_challenge && !p.code_verifier) {
          throw new OAuthError('invalid_grant', 'PKCE verification failed: code_verifier is required when PKCE challenge is present');
        }
        if (a.code_challenge && !pkceMatches(a, p.code_verifier)) throw new OAuthError('invalid_grant', 'PKCE verification failed: code challenge does not match previously saved code verifier');
        if (!a.user_id) throw new OAuthError('invalid_grant', 'Authorization code has no associated user');
        // Codes are single use.
        await tx`delete from auth.oauth_authorizations where id = ${a.id}`;
        return { userId: a.user_id, scope: a.scope };
      }).then(async ({ userId, scope }) => {
        // Read after the transaction: inside it a second connection per exchange would exhaust
        // the pool under concurrent sign-ins.
        const user = await loadUser(sql, userId);
        if (!user) throw new OAuthError('invalid_grant', 'User not found for authorization code');
        if (user.banned_until && user.banned_until > new Date()) throw new OAuthError('access_denied', 'User is banned');
        return await sessions.startSession(user, { clientId: client.id, scope });
      });
    } else if (p.grant_type === 'refresh_token') {
      if (!p.refresh_token) throw new OAuthError('invalid_request', 'refresh_token is required for refresh_token grant');
      session = await sessions.refresh(p.refresh_token, client.id);
    } else {
      throw new OAuthError('unsupported_grant_type', `Unsupported grant type: ${p.grant_type}`);
    }
    // OAuth clients get the token fields only (GoTrue leaves the user out).
    const { access_token, token_type, expires_in, refresh_token } = session;
    return json({ access_token, token_type, expires_in, refresh_token });
  }

  /** RFC 8414 metadata (also served as OIDC discovery). */
  function metadata(): Response {
    return json({
      issuer, authorization_endpoint: `${issuer}/oauth/authorize`, token_endpoint: `${issuer}/oauth/token`,
      jwks_uri: `${issuer}/.well-known/jwks.json`, userinfo_endpoint: `${issuer}/oauth/userinfo`,
      ...(opts.oauthServer.enabled && opts.oauthServer.allowDynamicRegistration ? { registration_endpoint: `${issuer}/oauth/clients/register` } : {}),
      scopes_supported: SCOPES, response_types_supported: ['code'], response_modes_supported: ['query'],
      grant_types_supported: ['authorization_code', 'refresh_token'], subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256', 'HS256', 'ES256'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
      code_challenge_methods_supported: ['S256', 'plain'],
    });
  }

  /** Routes under /oauth and /admin/oauth, and the metadata; null for any other path. */
  async function handle(req: Request, path: string, url: URL, requireAdmin: (req: Request) => Promise<void>): Promise<Response | null> {
    const key = `${req.method} ${path}`;
    if (key === 'GET /.well-known/openid-configuration') return metadata();
    if (key === 'GET /.well-known/oauth-authorization-server') return (requireEnabled(), metadata());
    const inAdmin = path.startsWith('/admin/oauth/clients');
    if (!inAdmin && !path.startsWith('/oauth/')) return null;
    requireEnabled();
    if (inAdmin) {
      await requireAdmin(req);
      return await clients.admin(req, path.slice('/admin/oauth/clients'.length).replace(/^\//, ''));
    }
    if (key === 'POST /oauth/clients/register') return await clients.dynamicRegister(req);
    if (key === 'GET /oauth/authorize') return await authorize(req, url);
    if (key === 'POST /oauth/token') return await token(req);
    const m = /^\/oauth\/authorizations\/([^/]+)(\/consent)?$/.exec(path);
    if (m && !m[2] && req.method === 'GET') return await details(req, decodeURIComponent(m[1]));
    if (m && m[2] && req.method === 'POST') return await consent(req, decodeURIComponent(m[1]));
    throw new AuthError(404, 'not_found', 'Not found');
  }

  return { handle };
}

/** GoTrue's crypto.SecureAlphanumeric: random letters and digits. */
function alphanumeric(n: number): string {
  const chars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  const bytes = crypto.getRandomValues(new Uint8Array(n));
  return Array.from(bytes, (b) => chars[b % chars.length]).join('');
}
