// Admin user management (/admin/users), for the secret key or a service_role JWT (the check
// /admin/oauth/clients shares), and the user creation that sign-up shares: users stored as GoTrue
// stores an email user.
import { AuthError, type AuthOptions, bearer, json, loadUser, readJson, USER_COLUMNS, userJson, type UserRow } from './common.ts';
import type { Tokens } from './tokens.ts';

type AdminHandler = (req: Request, url: URL, id: string) => Promise<Response>;

export function createAdmin(opts: AuthOptions, tokens: Tokens) {
  const { sql } = opts;

  async function requireAdmin(req: Request): Promise<void> {
    const token = bearer(req) ?? req.headers.get('apikey');
    if (token && token === opts.secretKey) return;
    if (token && token.split('.').length === 3) {
      const claims = await tokens.verify(token);
      if (claims.role === 'service_role') return;
    }
    throw new AuthError(403, 'not_admin', 'User not allowed');
  }

  async function createUser(body: Record<string, unknown>, confirm: boolean): Promise<UserRow> {
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

  const found = (u: UserRow | undefined) => {
    if (!u) throw new AuthError(404, 'user_not_found', 'User not found');
    return json(userJson(u));
  };

  /** /admin/users, by method. */
  const collection: Record<string, AdminHandler> = {
    async POST(req) {
      const body = await readJson(req);
      return json(userJson(await createUser(body, body.email_confirm === true)));
    },
    async GET(_req, url) {
      const perPage = Math.min(Number(url.searchParams.get('per_page') ?? 50) || 50, 1000);
      const page = Math.max(Number(url.searchParams.get('page') ?? 1) || 1, 1);
      const rows = await sql.unsafe<UserRow[]>(
        `select ${USER_COLUMNS} from auth.users where deleted_at is null order by created_at, id limit $1 offset $2`,
        [perPage, (page - 1) * perPage],
      );
      return json({ users: rows.map(userJson), aud: 'authenticated' });
    },
  };

  /** /admin/users/<id>, by method. */
  const member: Record<string, AdminHandler> = {
    async GET(_req, _url, id) {
      return found(await loadUser(sql, id));
    },
    async PUT(req, _url, id) {
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
      return found(u);
    },
    async DELETE(_req, _url, id) {
      const [u] = await sql.unsafe<UserRow[]>(`delete from auth.users where id = $1 returning ${USER_COLUMNS}`, [id]);
      return found(u);
    },
  };

  /** Everything under /admin/users; `rest` is what follows it ('' or '<id>[/…]'). */
  async function handle(req: Request, rest: string, url: URL): Promise<Response> {
    await requireAdmin(req);
    const id = rest.split('/')[0];
    if (id && !/^[0-9a-f-]{36}$/i.test(id)) throw new AuthError(404, 'user_not_found', 'User not found');
    const handler = Object.hasOwn(id ? member : collection, req.method) ? (id ? member : collection)[req.method] : undefined;
    if (!handler) throw new AuthError(405, 'method_not_allowed', 'Method not allowed');
    return await handler(req, url, id);
  }

  return { handle, createUser, requireAdmin };
}
