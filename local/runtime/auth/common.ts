// What every part of the Auth stand-in shares: its options, the user row and its JSON shape,
// GoTrue's error shape, and small request helpers.
import type { JWK } from 'jose';
import type { Sql } from 'postgres';
import { bearerToken } from '../../../supabase/functions/_shared/bearer.ts';

export interface AuthOptions {
  sql: Sql;
  privateJwk: JWK;
  publicJwk: JWK;
  issuer: string;
  jwtExpiry: number;
  secretKey: string;
  /** Set: user tokens are HS256 with this secret (and HS256 tokens are accepted). */
  legacyJwtSecret: string | null;
  /** [auth] site_url and additional_redirect_urls of supabase/config.toml. */
  siteUrl: string;
  redirectUrls: string[];
  /** [auth.oauth_server] of supabase/config.toml. */
  oauthServer: { enabled: boolean; authorizationPath: string; allowDynamicRegistration: boolean };
}

export interface UserRow {
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

/** Answered as GoTrue answers errors: `{code, error_code, msg}`. */
export class AuthError extends Error {
  constructor(readonly status: number, readonly errorCode: string, message: string) {
    super(message);
  }
}

/** Answered as GoTrue answers the OAuth server's protocol errors (RFC 6749 §5.2): 400
 *  `{error, error_description}`. */
export class OAuthError extends Error {
  constructor(readonly error: string, readonly description: string) {
    super(`${error}: ${description}`);
  }
}

export const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

export const USER_COLUMNS = `id, aud, role, email, phone, email_confirmed_at, last_sign_in_at, raw_app_meta_data,
  raw_user_meta_data, created_at, updated_at, banned_until, is_anonymous`;

export function userJson(u: UserRow) {
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

export function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return btoa(String.fromCharCode(...bytes)).replace(/[+/=]/g, (c) => ({ '+': '-', '/': '_', '=': '' })[c]!);
}

export async function readJson(req: Request): Promise<Record<string, unknown>> {
  try {
    const body = await req.json();
    if (body && typeof body === 'object' && !Array.isArray(body)) return body as Record<string, unknown>;
  } catch { /* fall through */ }
  throw new AuthError(400, 'bad_json', 'Could not parse request body as JSON');
}

export const bearer = bearerToken;

export async function loadUser(sql: Sql, id: string): Promise<UserRow | undefined> {
  const [u] = await sql.unsafe<UserRow[]>(`select ${USER_COLUMNS} from auth.users where id = $1 and deleted_at is null`, [id]);
  return u;
}
