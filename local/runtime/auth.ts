// LOCAL STAND-IN for Supabase Auth (GoTrue): the endpoints supabase-js calls for password
// sign-in, refresh, getUser, sign-out and admin user management, over the same auth.users /
// auth.sessions / auth.refresh_tokens tables, and the OAuth 2.1 server an MCP client signs users
// in through (clients, authorize, consent, token with PKCE), over auth.oauth_*. Tokens are JWTs with
// Supabase's claims: ES256 (JWT signing keys), or HS256 with the legacy JWT secret when one is
// given (a legacy project). Not implemented: email/SMS/MFA flows, sign-in with external OAuth
// providers, rate limits, email confirmation.
//
// The parts: auth/tokens.ts (sign, verify), auth/sessions.ts (grants, current user, sign-out),
// auth/admin.ts (/admin/users, user creation), auth/oauth.ts and auth/oauth-clients.ts (the OAuth
// server); this file is the route table and the error shapes.
import { createAdmin } from './auth/admin.ts';
import { AuthError, type AuthOptions, json, OAuthError, readJson } from './auth/common.ts';
import { createOAuthServer } from './auth/oauth.ts';
import { createSessions } from './auth/sessions.ts';
import { createTokens } from './auth/tokens.ts';
import { log } from '../../supabase/functions/_shared/log.ts';

export type { AuthOptions } from './auth/common.ts';

type Route = (req: Request, url: URL) => Promise<Response>;

export function createAuth(opts: AuthOptions) {
  const tokens = createTokens(opts);
  const sessions = createSessions(opts.sql, tokens);
  const admin = createAdmin(opts, tokens);
  const oauth = createOAuthServer(opts, sessions);

  /** `METHOD /path` → handler; /admin/users/* is admin's own table. */
  const routes: Record<string, Route> = {
    'GET /health': async () => json({ name: 'GoTrue', version: 'local-stand-in', description: 'Local stand-in for Supabase Auth' }),
    'GET /.well-known/jwks.json': async () => json({ keys: [opts.publicJwk] }),
    'GET /settings': async () => json({ external: { email: true }, disable_signup: false, mailer_autoconfirm: true, phone_autoconfirm: false }),
    'POST /token': (req, url) => sessions.grant(req, url),
    'POST /signup': async (req) => {
      const body = await readJson(req);
      await admin.createUser(body, true);
      return await sessions.passwordGrant(new Request(req.url, { method: 'POST', body: JSON.stringify({ email: body.email, password: body.password }) }));
    },
    'GET /user': (req) => sessions.getUser(req),
    'POST /logout': (req, url) => sessions.logout(req, url),
  };

  async function route(req: Request, path: string, url: URL): Promise<Response> {
    if (path.startsWith('/admin/users')) return await admin.handle(req, path.slice('/admin/users'.length).replace(/^\//, ''), url);
    const answered = await oauth.handle(req, path, url, admin.requireAdmin);
    if (answered) return answered;
    const key = `${req.method} ${path}`;
    if (!Object.hasOwn(routes, key)) throw new AuthError(404, 'not_found', 'Not found');
    return await routes[key](req, url);
  }

  return async function handle(req: Request, path: string, url: URL): Promise<Response> {
    try {
      return await route(req, path, url);
    } catch (err) {
      if (err instanceof AuthError) return json({ code: err.status, error_code: err.errorCode, msg: err.message }, err.status);
      if (err instanceof OAuthError) return json({ error: err.error, error_description: err.description }, 400);
      log({ level: 'error', msg: 'auth_error', path, error: String(err) });
      return json({ code: 500, error_code: 'unexpected_failure', msg: 'Unexpected failure' }, 500);
    }
  };
}
