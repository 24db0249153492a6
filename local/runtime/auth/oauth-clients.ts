// The OAuth 2.1 server's clients, as GoTrue keeps them (internal/api/oauthserver/service.go,
// handlers.go, auth.go, client_auth.go; internal/models/oauth_client.go): registration (dynamic at
// POST /oauth/clients/register when [auth.oauth_server] allow_dynamic_registration is on, manual at
// POST /admin/oauth/clients), the admin list/get/delete, and client authentication at the token
// endpoint (Basic header, or client_id/client_secret in the body; a public client sends no secret).
// Rows in auth.oauth_clients: the id is the public client_id; redirect_uris and grant_types are
// comma-joined; a confidential client's secret is stored as base64url(SHA-256(secret)).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Sql } from 'postgres';
import { AuthError, json, readJson } from './common.ts';

export interface ClientRow {
  id: string;
  client_secret_hash: string | null;
  registration_type: 'dynamic' | 'manual';
  client_type: 'public' | 'confidential';
  token_endpoint_auth_method: 'none' | 'client_secret_basic' | 'client_secret_post';
  redirect_uris: string;
  grant_types: string;
  client_name: string | null;
  client_uri: string | null;
  logo_uri: string | null;
  created_at: Date;
  updated_at: Date;
}

const GRANT_TYPES = ['authorization_code', 'refresh_token'];
const AUTH_METHODS = ['none', 'client_secret_basic', 'client_secret_post'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const invalid = (msg: string) => new AuthError(400, 'validation_failed', msg);
const hashSecret = (secret: string) => createHash('sha256').update(secret).digest('base64url');

/** GoTrue's validateRedirectURI: absolute with a host, no fragment, no dangerous scheme, http only on loopback. */
function checkRedirectUri(uri: unknown): string {
  let u: URL;
  try {
    u = new URL(String(uri));
  } catch {
    throw invalid(`invalid redirect_uri '${uri}': invalid URL format`);
  }
  const scheme = u.protocol.slice(0, -1);
  if (!u.host) throw invalid(`invalid redirect_uri '${uri}': must have scheme and host`);
  if (['javascript', 'data', 'file', 'vbscript', 'about', 'blob'].includes(scheme.toLowerCase())) {
    throw invalid(`invalid redirect_uri '${uri}': scheme '${scheme}' is not allowed for security reasons`);
  }
  if (scheme === 'http' && !['localhost', '127.0.0.1', '[::1]'].includes(u.hostname)) {
    throw invalid(`invalid redirect_uri '${uri}': HTTP scheme only allowed for localhost`);
  }
  if (u.hash) throw invalid(`invalid redirect_uri '${uri}': fragment not allowed in redirect URI`);
  return String(uri);
}

const optionalUri = (name: string, v: unknown): string | null => {
  if (v === undefined || v === '') return null;
  if (typeof v !== 'string' || v.length > 2048 || !URL.canParse(v)) throw invalid(`${name} must be a valid URL`);
  return v;
};

/** GoTrue's OAuthServerClientResponse (omitempty fields left out when empty). */
export function clientJson(c: ClientRow, secret?: string) {
  return {
    client_id: c.id,
    ...(secret ? { client_secret: secret } : {}),
    client_type: c.client_type,
    redirect_uris: c.redirect_uris.split(','),
    token_endpoint_auth_method: c.token_endpoint_auth_method,
    grant_types: c.grant_types.split(','),
    response_types: ['code'],
    ...(c.client_name ? { client_name: c.client_name } : {}),
    ...(c.client_uri ? { client_uri: c.client_uri } : {}),
    ...(c.logo_uri ? { logo_uri: c.logo_uri } : {}),
    registration_type: c.registration_type,
    created_at: c.created_at,
    updated_at: c.updated_at,
  };
}

export function createOAuthClients(sql: Sql, dynamicRegistration: boolean) {
  async function find(id: string): Promise<ClientRow | undefined> {
    if (!UUID.test(id)) return undefined;
    const [c] = await sql<ClientRow[]>`select * from auth.oauth_clients where id = ${id} and deleted_at is null`;
    return c;
  }

  /** registerOAuthServerClient: validate, default, store; the plaintext secret is shown once. */
  async function register(req: Request, registrationType: 'dynamic' | 'manual'): Promise<Response> {
    let p: Record<string, unknown>;
    try {
      p = await readJson(req);
    } catch {
      throw new AuthError(400, 'bad_json', 'Invalid JSON body');
    }
    const uris = p.redirect_uris;
    if (!Array.isArray(uris) || uris.length === 0) throw invalid('redirect_uris is required');
    if (uris.length > 10) throw invalid('redirect_uris cannot exceed 10 items');
    const redirectUris = uris.map(checkRedirectUri);
    const grantTypes = p.grant_types === undefined ? GRANT_TYPES : p.grant_types;
    if (!Array.isArray(grantTypes) || grantTypes.length === 0 || grantTypes.some((g) => !GRANT_TYPES.includes(g))) {
      throw invalid("grant_types must only contain 'authorization_code' and/or 'refresh_token'");
    }
    const name = p.client_name === undefined ? null : String(p.client_name);
    if (name !== null && name.length > 1024) throw invalid('client_name cannot exceed 1024 characters');
    const method = p.token_endpoint_auth_method === undefined ? '' : String(p.token_endpoint_auth_method);
    if (method && !AUTH_METHODS.includes(method)) throw invalid(`token_endpoint_auth_method must be one of: [${AUTH_METHODS.join(' ')}]`);
    const explicitType = p.client_type === undefined ? '' : String(p.client_type);
    if (explicitType && explicitType !== 'public' && explicitType !== 'confidential') {
      throw invalid("client_type must be 'public' or 'confidential'");
    }
    // DetermineClientType: explicit, else inferred from the auth method, else confidential.
    const inferred = method === 'none' ? 'public' : 'confidential';
    if (explicitType && method && explicitType !== inferred) {
      throw invalid(`client_type '${explicitType}' is inconsistent with token_endpoint_auth_method '${method}' (expected client_type '${inferred}')`);
    }
    const clientType = (explicitType || (method ? inferred : 'confidential')) as ClientRow['client_type'];
    const authMethod = method || (clientType === 'public' ? 'none' : 'client_secret_basic');
    const secret = clientType === 'confidential' ? randomSecret() : undefined;
    const [c] = await sql<ClientRow[]>`
      insert into auth.oauth_clients (id, client_secret_hash, registration_type, client_type, token_endpoint_auth_method,
        redirect_uris, grant_types, client_name, client_uri, logo_uri)
      values (${crypto.randomUUID()}, ${secret ? hashSecret(secret) : null}, ${registrationType}, ${clientType}, ${authMethod},
        ${redirectUris.join(',')}, ${(grantTypes as string[]).join(',')}, ${name},
        ${optionalUri('client_uri', p.client_uri)}, ${optionalUri('logo_uri', p.logo_uri)})
      returning *`;
    return json(clientJson(c, secret), 201);
  }

  /** POST /oauth/clients/register (RFC 7591), off unless allow_dynamic_registration. */
  async function dynamicRegister(req: Request): Promise<Response> {
    if (!dynamicRegistration) {
      throw new AuthError(403, 'oauth_dynamic_client_registration_disabled', 'Dynamic client registration is not enabled');
    }
    return await register(req, 'dynamic');
  }

  /** /admin/oauth/clients[/<client_id>]: `rest` is what follows it. The caller checked the admin key. */
  async function admin(req: Request, rest: string): Promise<Response> {
    const id = rest.split('/')[0];
    if (!id) {
      if (req.method === 'POST') return await register(req, 'manual');
      if (req.method === 'GET') {
        const rows = await sql<ClientRow[]>`select * from auth.oauth_clients where deleted_at is null order by created_at desc`;
        return json({ clients: rows.map((c) => clientJson(c)) });
      }
      throw new AuthError(405, 'method_not_allowed', 'Method not allowed');
    }
    if (!UUID.test(id)) throw invalid('invalid client_id format');
    const c = await find(id);
    if (!c) throw new AuthError(404, 'oauth_client_not_found', 'OAuth client not found');
    if (req.method === 'GET') return json(clientJson(c));
    if (req.method === 'DELETE') {
      await sql`update auth.oauth_clients set deleted_at = now(), updated_at = now() where id = ${id}`;
      return new Response(null, { status: 204 });
    }
    throw new AuthError(405, 'method_not_allowed', 'Method not allowed');
  }

  /**
   * requireOAuthClientAuth + ExtractClientCredentials: the client a token request authenticates as
   * (null when it names none), from `Authorization: Basic`, else client_id/client_secret in the body.
   * The method used must be the one registered, and a confidential client's secret must match.
   */
  async function authenticate(req: Request, body: Record<string, string>): Promise<ClientRow | null> {
    const fail = (msg: string) => new AuthError(400, 'invalid_credentials', `Invalid client credentials: ${msg}`);
    let id = body.client_id ?? '';
    let secret = body.client_secret ?? '';
    let method = secret ? 'client_secret_post' : 'none';
    const header = req.headers.get('authorization') ?? '';
    if (header.startsWith('Basic ')) {
      let decoded: string;
      try {
        decoded = atob(header.slice(6));
      } catch {
        throw fail('invalid basic auth encoding');
      }
      const at = decoded.indexOf(':');
      if (at < 0) throw fail('invalid basic auth format');
      [id, secret, method] = [decoded.slice(0, at), decoded.slice(at + 1), 'client_secret_basic'];
    }
    if (!id) return null;
    if (!UUID.test(id)) throw new AuthError(400, 'invalid_credentials', 'Invalid client_id format');
    const c = await find(id);
    if (!c) throw new AuthError(400, 'invalid_credentials', 'Invalid client credentials');
    if (method !== c.token_endpoint_auth_method) {
      throw new AuthError(400, 'invalid_credentials',
        `invalid authentication method: client is registered for '${c.token_endpoint_auth_method}' but '${method}' was used`);
    }
    if (c.client_type === 'public') {
      if (secret) throw new AuthError(400, 'invalid_credentials', 'public clients must not provide client_secret');
    } else {
      const given = new TextEncoder().encode(hashSecret(secret));
      const stored = new TextEncoder().encode(c.client_secret_hash ?? '');
      if (!secret || given.length !== stored.length || !timingSafeEqual(given, stored)) {
        throw new AuthError(400, 'invalid_credentials', 'invalid client credentials');
      }
    }
    return c;
  }

  return { find, dynamicRegister, admin, authenticate };
}

/** GoTrue's generateClientSecret: 32 random bytes, base64url. */
function randomSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replace(/[+/=]/g, (c) => ({ '+': '-', '/': '_', '=': '' })[c]!);
}
