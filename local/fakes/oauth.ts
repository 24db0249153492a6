// An MCP client's sign-in through Auth's OAuth 2.1 server, for tests and scripts: the
// authorization-code flow with PKCE as a real MCP client runs it against Supabase Auth (the local
// stand-in speaks the same paths): authorize -> the consent screen's two calls as the signed-in
// user (GET /oauth/authorizations/<id>, POST …/consent approve) -> the code exchanged at
// /oauth/token. What comes back is an access token with the client's `client_id`, the kind the mcp
// function accepts when that client is in MCP_ALLOWED_CLIENT_IDS.
import { createHash, randomBytes } from 'node:crypto';
import { API_URL } from '../config.ts';

/** The demo MCP client supabase/seed.sql registers (public, PKCE) and the env files allow. */
export const DEMO_MCP_CLIENT = {
  id: '00000000-0000-4000-8000-0000000000c1',
  redirectUri: 'http://localhost:6274/oauth/callback',
} as const;

export interface OAuthClientRef {
  id: string;
  redirectUri: string;
  /** A confidential client's secret (sent as client_secret_post); none for a public client. */
  secret?: string;
}

export interface OAuthTokens {
  access_token: string;
  token_type: string;
  expires_in: number;
  refresh_token: string;
}

async function answer(res: Response, what: string): Promise<Record<string, unknown>> {
  const text = await res.text();
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as Record<string, unknown>;
}

async function exchange(params: Record<string, string>, client: OAuthClientRef, apiUrl: string): Promise<OAuthTokens> {
  const body = new URLSearchParams({ ...params, client_id: client.id, ...(client.secret ? { client_secret: client.secret } : {}) });
  const res = await fetch(`${apiUrl}/auth/v1/oauth/token`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body,
  });
  const tokens = await answer(res, `POST /auth/v1/oauth/token (${params.grant_type})`);
  if (typeof tokens.access_token !== 'string' || typeof tokens.refresh_token !== 'string') throw new Error('oauth token: unexpected answer');
  return tokens as unknown as OAuthTokens;
}

/**
 * Tokens for `client`, approved by the user whose session token (password sign-in) is given.
 * `anonKey` goes in `apikey`, as the consent screen's supabase-js sends it.
 */
export async function oauthSignIn(
  sessionToken: string, anonKey: string,
  opts: { client?: OAuthClientRef; scope?: string; resource?: string; apiUrl?: string } = {},
): Promise<OAuthTokens> {
  const client = opts.client ?? DEMO_MCP_CLIENT;
  const apiUrl = opts.apiUrl ?? API_URL;
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(8).toString('hex');
  const authorize = new URL(`${apiUrl}/auth/v1/oauth/authorize`);
  for (const [k, v] of Object.entries({
    client_id: client.id, redirect_uri: client.redirectUri, response_type: 'code', scope: opts.scope ?? 'email', state,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
    ...(opts.resource ? { resource: opts.resource } : {}),
  })) authorize.searchParams.set(k, v);
  const started = await fetch(authorize, { redirect: 'manual' });
  const consentPage = started.headers.get('location');
  await started.body?.cancel();
  const authorizationId = consentPage ? new URL(consentPage).searchParams.get('authorization_id') : null;
  if (started.status !== 302 || !authorizationId) throw new Error(`GET /oauth/authorize: HTTP ${started.status} to ${consentPage}`);

  const asUser = { authorization: `Bearer ${sessionToken}`, apikey: anonKey };
  const path = `${apiUrl}/auth/v1/oauth/authorizations/${authorizationId}`;
  let decided = await answer(await fetch(path, { headers: asUser }), 'GET /oauth/authorizations/<id>');
  // A consent given before for these scopes is approved at once (redirect_url); else approve now.
  if (typeof decided.redirect_url !== 'string') {
    decided = await answer(await fetch(`${path}/consent`, {
      method: 'POST', headers: { ...asUser, 'content-type': 'application/json' }, body: JSON.stringify({ action: 'approve' }),
    }), 'POST /oauth/authorizations/<id>/consent');
  }
  const back = new URL(String(decided.redirect_url));
  const code = back.searchParams.get('code');
  if (!code || back.searchParams.get('state') !== state) throw new Error(`consent: unexpected redirect ${back.origin}${back.pathname}`);
  return await exchange({ grant_type: 'authorization_code', code, redirect_uri: client.redirectUri, code_verifier: verifier }, client, apiUrl);
}

/** The refresh_token grant of the client that holds the session. */
export async function oauthRefresh(refreshToken: string, client: OAuthClientRef = DEMO_MCP_CLIENT, apiUrl = API_URL): Promise<OAuthTokens> {
  return await exchange({ grant_type: 'refresh_token', refresh_token: refreshToken }, client, apiUrl);
}

const signedIn = new WeakMap<object, Promise<string>>();

/** The demo MCP client's access token for `user` (signed in once per user object, then reused). */
export function mcpToken(user: { accessToken: string }, anonKey: string, apiUrl = API_URL): Promise<string> {
  let token = signedIn.get(user);
  if (!token) {
    token = oauthSignIn(user.accessToken, anonKey, { apiUrl }).then((t) => t.access_token);
    signedIn.set(user, token);
  }
  return token;
}
