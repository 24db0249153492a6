// LOCAL STAND-IN for Supabase Auth (GoTrue): the endpoints supabase-js calls for password
// sign-in, refresh, getUser, sign-out and admin user management, over the same auth.users /
// auth.sessions / auth.refresh_tokens tables. Tokens are JWTs with Supabase's claims: ES256 (JWT
// signing keys), or HS256 with the legacy JWT secret when one is given (a legacy project).
// Not implemented: email/SMS/OAuth/MFA flows, rate limits, email confirmation.
//
// The parts: auth/tokens.ts (sign, verify), auth/sessions.ts (grants, current user, sign-out),
// auth/admin.ts (/admin/users, user creation); this file is the route table and the error shape.
import { createAdmin } from './auth/admin.ts';
import { AuthError, type AuthOptions, json, readJson } from './auth/common.ts';
import { createSessions } from './auth/sessions.ts';
import { createTokens } from './auth/tokens.ts';
import { log } from '../../supabase/functions/_shared/log.ts';

export type { AuthOptions } from './auth/common.ts';

type Route = (req: Request, url: URL) => Promise<Response>;

export function createAuth(opts: AuthOptions) {
  const tokens = createTokens(opts);
  const sessions = createSessions(opts.sql, tokens);
  const admin = createAdmin(opts, tokens);

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
    const key = `${req.method} ${path}`;
    if (!Object.hasOwn(routes, key)) throw new AuthError(404, 'not_found', 'Not found');
    return await routes[key](req, url);
  }

  return async function handle(req: Request, path: string, url: URL): Promise<Response> {
    try {
      return await route(req, path, url);
    } catch (err) {
      if (err instanceof AuthError) return json({ code: err.status, error_code: err.errorCode, msg: err.message }, err.status);
      log({ level: 'error', msg: 'auth_error', path, error: String(err) });
      return json({ code: 500, error_code: 'unexpected_failure', msg: 'Unexpected failure' }, 500);
    }
  };
}
