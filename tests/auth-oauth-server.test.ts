// The Auth stand-in's OAuth 2.1 server, held to Supabase Auth's (GoTrue internal/api/oauthserver):
// the paths, parameters and answers an MCP client meets — client registration (admin; dynamic is
// off in config.toml), authorize with PKCE, the consent screen's calls, the token endpoint's two
// grants — and the refusals on the way: a wrong verifier, a code used twice, another client's code,
// another user's authorization, a deny.
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DEMO_MCP_CLIENT, oauthSignIn } from '../local/fakes/oauth.ts';
import { API_URL } from '../local/config.ts';
import { keys } from './helpers/stack.ts';
import { createUser, type TestUser } from './helpers/users.ts';

const AUTH = `${API_URL}/auth/v1`;
const asAdmin = () => ({ apikey: keys().secretKey, authorization: `Bearer ${keys().serviceRoleKey}`, 'content-type': 'application/json' });
const asUser = (u: TestUser) => ({ apikey: keys().anonKey, authorization: `Bearer ${u.accessToken}`, 'content-type': 'application/json' });

/** authorize -> the authorization_id the consent page gets, with the PKCE verifier kept. */
async function startAuthorization(client: { id: string; redirectUri: string } = DEMO_MCP_CLIENT, extra: Record<string, string> = {}) {
  const verifier = randomBytes(32).toString('base64url');
  const url = new URL(`${AUTH}/oauth/authorize`);
  const params = {
    client_id: client.id, redirect_uri: client.redirectUri, response_type: 'code', state: 'st4te',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256', ...extra,
  };
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  const res = await fetch(url, { redirect: 'manual' });
  await res.body?.cancel();
  return { res, verifier, location: res.headers.get('location') ?? '' };
}

const idOf = (location: string) => new URL(location).searchParams.get('authorization_id')!;

async function approvedCode(user: TestUser) {
  const { verifier, location } = await startAuthorization();
  const id = idOf(location);
  const details = await fetch(`${AUTH}/oauth/authorizations/${id}`, { headers: asUser(user) });
  const body = await details.json();
  const decided = body.redirect_url ? body : await (await fetch(`${AUTH}/oauth/authorizations/${id}/consent`, {
    method: 'POST', headers: asUser(user), body: JSON.stringify({ action: 'approve' }),
  })).json();
  return { verifier, code: new URL(decided.redirect_url).searchParams.get('code')! };
}

const token = (params: Record<string, string>) => fetch(`${AUTH}/oauth/token`, {
  method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params),
});

describe('the OAuth 2.1 server (as Supabase Auth)', () => {
  it('publishes RFC 8414 metadata: PKCE, both grants, no registration endpoint while dynamic registration is off', async () => {
    const res = await fetch(`${AUTH}/.well-known/oauth-authorization-server`);
    expect(res.status, 'served while the OAuth server is enabled').toBe(200);
    const doc = await res.json();
    expect(doc, 'the endpoints under /auth/v1').toMatchObject({
      issuer: AUTH, authorization_endpoint: `${AUTH}/oauth/authorize`, token_endpoint: `${AUTH}/oauth/token`,
      jwks_uri: `${AUTH}/.well-known/jwks.json`, grant_types_supported: ['authorization_code', 'refresh_token'],
      code_challenge_methods_supported: ['S256', 'plain'], response_types_supported: ['code'],
    });
    expect(doc.registration_endpoint, 'allow_dynamic_registration = false').toBeUndefined();
    const dynamic = await fetch(`${AUTH}/oauth/clients/register`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: ['https://x.example/cb'] }),
    });
    expect(dynamic.status, 'dynamic registration refused').toBe(403);
    expect((await dynamic.json()).error_code, 'GoTrue\'s code').toBe('oauth_dynamic_client_registration_disabled');
  });

  it('registers clients through the admin API only, with GoTrue\'s defaults and validation', async () => {
    const anon = await fetch(`${AUTH}/admin/oauth/clients`, {
      method: 'POST', headers: { apikey: keys().anonKey, 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: ['https://a.example/cb'] }),
    });
    expect(anon.status, 'not for the anon key').toBe(403);
    const confidential = await fetch(`${AUTH}/admin/oauth/clients`, {
      method: 'POST', headers: asAdmin(), body: JSON.stringify({ client_name: 'server app', redirect_uris: ['https://a.example/cb'] }),
    });
    expect(confidential.status, 'registered').toBe(201);
    const c = await confidential.json();
    expect(c, 'confidential by default, secret shown once, client_secret_basic').toMatchObject({
      client_type: 'confidential', token_endpoint_auth_method: 'client_secret_basic', registration_type: 'manual',
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], redirect_uris: ['https://a.example/cb'],
    });
    expect(c.client_secret, 'a secret').toMatch(/^[A-Za-z0-9_-]{43}$/);
    const got = await (await fetch(`${AUTH}/admin/oauth/clients/${c.client_id}`, { headers: asAdmin() })).json();
    expect(got.client_secret, 'never shown again').toBeUndefined();
    for (const [what, body] of [
      ['no redirect_uris', {}], ['plain http off loopback', { redirect_uris: ['http://a.example/cb'] }],
      ['a fragment', { redirect_uris: ['https://a.example/cb#x'] }], ['a public client with a secret method', { client_type: 'public', token_endpoint_auth_method: 'client_secret_post', redirect_uris: ['https://a.example/cb'] }],
    ] as const) {
      const res = await fetch(`${AUTH}/admin/oauth/clients`, { method: 'POST', headers: asAdmin(), body: JSON.stringify(body) });
      expect(res.status, `${what}: 400`).toBe(400);
      expect((await res.json()).error_code, `${what}: validation_failed`).toBe('validation_failed');
    }
    const gone = await fetch(`${AUTH}/admin/oauth/clients/${c.client_id}`, { method: 'DELETE', headers: asAdmin() });
    expect(gone.status, 'deleted').toBe(204);
    expect((await fetch(`${AUTH}/admin/oauth/clients/${c.client_id}`, { headers: asAdmin() })).status, 'then not found').toBe(404);
  });

  it('authorize: bad client or redirect_uri answered as JSON, other errors sent back to the redirect_uri, PKCE required', async () => {
    expect((await startAuthorization({ id: crypto.randomUUID(), redirectUri: DEMO_MCP_CLIENT.redirectUri })).res.status, 'unknown client').toBe(400);
    expect((await startAuthorization({ ...DEMO_MCP_CLIENT, redirectUri: 'http://localhost:9/evil' })).res.status, 'unregistered redirect_uri').toBe(400);
    const noPkce = await startAuthorization(DEMO_MCP_CLIENT, { code_challenge: '' });
    expect(noPkce.res.status, 'redirected back').toBe(302);
    const back = new URL(noPkce.location);
    expect(`${back.origin}${back.pathname}`, 'to the client').toBe(DEMO_MCP_CLIENT.redirectUri);
    expect(Object.fromEntries(back.searchParams), 'with the error and the state').toEqual({
      error: 'invalid_request', error_description: 'PKCE flow requires both code_challenge and code_challenge_method', state: 'st4te',
    });
    const badScope = new URL((await startAuthorization(DEMO_MCP_CLIENT, { scope: 'admin' })).location);
    expect(badScope.searchParams.get('error_description'), 'scopes are GoTrue\'s').toBe('unsupported scope: admin');
    const ok = await startAuthorization();
    expect(ok.location, 'to the consent page: site_url + authorization_url_path').toMatch(/^http:\/\/127\.0\.0\.1:3000\/oauth\/consent\?authorization_id=[A-Za-z0-9]{32}$/);
  });

  it('consent: the details as the user, approve gives a code once; another user, a deny and a reused id are refused', async () => {
    const user = await createUser();
    const other = await createUser();
    const { location, verifier } = await startAuthorization();
    const id = idOf(location);
    const unauthenticated = await fetch(`${AUTH}/oauth/authorizations/${id}`, { headers: { apikey: keys().anonKey } });
    expect(unauthenticated.status, 'the consent screen needs the signed-in user').toBe(401);
    const details = await (await fetch(`${AUTH}/oauth/authorizations/${id}`, { headers: asUser(user) })).json();
    expect(details, 'what the consent screen shows').toMatchObject({
      authorization_id: id, redirect_uri: DEMO_MCP_CLIENT.redirectUri, scope: 'email',
      client: { id: DEMO_MCP_CLIENT.id, name: 'Narrative cache MCP (demo)' }, user: { id: user.id, email: user.email },
    });
    const stolen = await fetch(`${AUTH}/oauth/authorizations/${id}/consent`, { method: 'POST', headers: asUser(other), body: JSON.stringify({ action: 'approve' }) });
    expect(stolen.status, 'another user cannot approve it').toBe(404);
    const approved = await (await fetch(`${AUTH}/oauth/authorizations/${id}/consent`, {
      method: 'POST', headers: asUser(user), body: JSON.stringify({ action: 'approve' }),
    })).json();
    const back = new URL(approved.redirect_url);
    expect(back.searchParams.get('state'), 'the state comes back').toBe('st4te');
    const code = back.searchParams.get('code')!;
    const again = await fetch(`${AUTH}/oauth/authorizations/${id}/consent`, { method: 'POST', headers: asUser(user), body: JSON.stringify({ action: 'approve' }) });
    expect(again.status, 'approved once').toBe(400);

    const wrongVerifier = await token({ grant_type: 'authorization_code', code, client_id: DEMO_MCP_CLIENT.id, redirect_uri: DEMO_MCP_CLIENT.redirectUri, code_verifier: 'x'.repeat(43) });
    expect(await wrongVerifier.json(), 'PKCE checked').toMatchObject({ error: 'invalid_grant', error_description: expect.stringMatching(/^PKCE verification failed/) });
    const exchange = { grant_type: 'authorization_code', code, client_id: DEMO_MCP_CLIENT.id, redirect_uri: DEMO_MCP_CLIENT.redirectUri, code_verifier: verifier };
    const tokens = await token(exchange);
    expect(tokens.status, 'the code and its verifier').toBe(200);
    expect(Object.keys(await tokens.json()).sort(), 'the OAuth answer, without the user').toEqual(['access_token', 'expires_in', 'refresh_token', 'token_type']);
    const reused = await token(exchange);
    expect(await reused.json(), 'a code is single use').toEqual({ error: 'invalid_grant', error_description: 'Invalid authorization code' });
  });

  it('a later sign-in with the same scopes is approved at once; a deny sends access_denied; a public client sends no secret', async () => {
    const user = await createUser();
    await oauthSignIn(user.accessToken, keys().anonKey);
    const { location } = await startAuthorization();
    const remembered = await (await fetch(`${AUTH}/oauth/authorizations/${idOf(location)}`, { headers: asUser(user) })).json();
    expect(new URL(remembered.redirect_url).searchParams.get('code'), 'the consent is remembered: a code at once').toMatch(/^[0-9a-f-]{36}$/);

    const fresh = await createUser();
    const second = await startAuthorization();
    await (await fetch(`${AUTH}/oauth/authorizations/${idOf(second.location)}`, { headers: asUser(fresh) })).body?.cancel();
    const denied = await (await fetch(`${AUTH}/oauth/authorizations/${idOf(second.location)}/consent`, {
      method: 'POST', headers: asUser(fresh), body: JSON.stringify({ action: 'deny' }),
    })).json();
    expect(Object.fromEntries(new URL(denied.redirect_url).searchParams), 'the client learns of the deny').toEqual({
      error: 'access_denied', error_description: 'User denied the request', state: 'st4te',
    });

    const { code, verifier } = await approvedCode(await createUser());
    const withSecret = await token({ grant_type: 'authorization_code', code, client_id: DEMO_MCP_CLIENT.id, client_secret: 'x', code_verifier: verifier });
    expect(withSecret.status, 'the registered method (none) must be used').toBe(400);
    expect((await withSecret.json()).error_code, 'invalid_credentials').toBe('invalid_credentials');
    const anonymous = await token({ grant_type: 'authorization_code', code, code_verifier: verifier });
    expect(await anonymous.json(), 'no client at all').toEqual({ error: 'invalid_client', error_description: 'Client authentication required' });
  });

  it('twelve users sign in through the flow at once (the stand-in holds no pooled connection across statements)', async () => {
    // Its pool has four connections; a code exchange that asked for a second one inside its
    // transaction deadlocked as soon as four ran at once (the soak's twenty MCP users hung).
    const users = await Promise.all(Array.from({ length: 12 }, () => createUser()));
    const tokens = await Promise.all(users.map((u) => oauthSignIn(u.accessToken, keys().anonKey)));
    expect(tokens.map((t) => JSON.parse(Buffer.from(t.access_token.split('.')[1], 'base64url').toString()).sub), 'each user got their own token')
      .toEqual(users.map((u) => u.id));
  });
});
