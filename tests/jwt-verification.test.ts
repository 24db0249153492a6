// Every user-facing function verifies access tokens in code (verify_jwt = false, as Supabase
// documents for JWT signing keys): the project's issuer, audience `authenticated`, an `exp`, a
// key the JWKS names by kid (ES256/RS256) or, only for a project on the legacy secret, HS256.
// `npm test` runs this file twice: with the Auth stand-in issuing ES256 tokens, then HS256.
import { generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { DEMO_MCP_CLIENT } from '../local/fakes/oauth.ts';
import { mcpToken } from './helpers/mcp.ts';
import { API_URL } from '../local/config.ts';
import { authJwtMode, eventually, keys } from './helpers/stack.ts';
import { AUTH_ISSUER, signToken, unsignedToken } from './helpers/tokens.ts';
import { createUser, type TestUser } from './helpers/users.ts';

const mode = authJwtMode();
const mcpInitialize = JSON.stringify({
  jsonrpc: '2.0', id: 1, method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'fetch', version: '1' } },
});

// What each function answers a caller it accepts; an admin user is accepted by all of them.
const FUNCTIONS: { name: string; init: RequestInit; ok: number[] }[] = [
  { name: 'health', init: { method: 'GET' }, ok: [200] },
  { name: 'narrative', init: { method: 'GET' }, ok: [200, 204] },
  { name: 'memories', init: { method: 'GET' }, ok: [200] },
  {
    name: 'orchestrate', ok: [200],
    init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user_message: 'hello', is_new_conversation: true }) },
  },
  { name: 'backfill', init: { method: 'GET' }, ok: [200] },
  {
    name: 'mcp', ok: [200],
    init: { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: mcpInitialize },
  },
];

async function call(fn: (typeof FUNCTIONS)[number], token: string): Promise<Response> {
  return fetch(`${API_URL}/functions/v1/${fn.name}`, {
    ...fn.init, headers: { ...(fn.init.headers as Record<string, string> | undefined), authorization: `Bearer ${token}` },
  });
}

let admin: Promise<TestUser> | undefined;
const adminUser = () => (admin ??= createUser({ appMetadata: { role: 'admin' } }));
// With the demo MCP client's client_id, so that mcp judges these tokens on what is wrong with them
// (mcp also wants a token issued for it; the other functions ignore the claim).
const claimsOf = (u: TestUser) => ({ sub: u.id, email: u.email, app_metadata: { provider: 'email', role: 'admin' }, client_id: DEMO_MCP_CLIENT.id });
/** What the user signs in with for `fn`: the session token, or for mcp the MCP client's OAuth token. */
const signedIn = async (fn: (typeof FUNCTIONS)[number], u: TestUser) => (fn.name === 'mcp' ? await mcpToken(u) : u.accessToken);

// Each token is one thing wrong with an otherwise valid token of the running mode.
const BAD_TOKENS: [string, (u: TestUser) => Promise<string>][] = [
  ['a token from another issuer', (u) => signToken(claimsOf(u), { iss: 'https://other-project.supabase.co/auth/v1' })],
  ['a token without an issuer', (u) => signToken(claimsOf(u), { iss: null })],
  ['a token for another audience', (u) => signToken(claimsOf(u), { aud: 'anon' })],
  ['a token without exp', (u) => signToken(claimsOf(u), { expiresIn: null })],
  ['an expired token', (u) => signToken(claimsOf(u), { expiresIn: -60 })],
  ['an ES256 token whose kid is not in the JWKS', (u) => signToken(claimsOf(u), { alg: 'ES256', kid: crypto.randomUUID() })],
  ['an ES256 token without a kid', (u) => signToken(claimsOf(u), { alg: 'ES256', kid: null })],
  ['an ES256 token signed by another key under the right kid', async (u) => {
    const { privateKey } = await generateKeyPair('ES256');
    return signToken(claimsOf(u), { alg: 'ES256', key: privateKey });
  }],
  ['an alg:none token', async (u) => unsignedToken(claimsOf(u))],
  mode === 'es256'
    // The real legacy secret, but the functions were not given one: no HS256 at all.
    ? ['an HS256 token when no legacy JWT secret is configured', (u) => signToken(claimsOf(u), { alg: 'HS256' })]
    : ['an HS256 token signed with another secret', (u) => signToken(claimsOf(u), { alg: 'HS256', key: new TextEncoder().encode('x'.repeat(40)) })],
];

describe(`user-facing functions refuse bad tokens with 401 (${mode} mode)`, () => {
  for (const [what, make] of BAD_TOKENS) {
    it(what, async () => {
      const user = await adminUser();
      const token = await make(user);
      for (const fn of FUNCTIONS) {
        const res = await call(fn, token);
        expect(res.status, `${fn.name}: ${what} -> 401`).toBe(401);
        const body = await res.json();
        // The function's own error shape: the gateway let the request through (verify_jwt = false).
        expect(body.error?.code, `${fn.name}: error code`).toBe('invalid_token');
        expect(typeof body.error?.message, `${fn.name}: error message`).toBe('string');
      }
    });
  }
});

describe(`user-facing functions accept valid tokens (${mode} mode)`, () => {
  it(`the Auth stand-in issues ${mode === 'es256' ? 'ES256 tokens naming the signing key' : 'HS256 tokens (legacy JWT secret)'}`, async () => {
    const user = await adminUser();
    const header = JSON.parse(Buffer.from(user.accessToken.split('.')[0], 'base64url').toString());
    const payload = JSON.parse(Buffer.from(user.accessToken.split('.')[1], 'base64url').toString());
    expect(header.alg, 'the mode\'s algorithm').toBe(mode === 'es256' ? 'ES256' : 'HS256');
    expect(header.kid, 'kid only for the asymmetric key').toBe(mode === 'es256' ? keys().publicJwk.kid : undefined);
    expect(payload, 'issuer and audience the functions check').toMatchObject({ iss: AUTH_ISSUER, aud: 'authenticated' });
  });

  it('a signed-in user\'s token and a hand-signed token of the same kind', async () => {
    const user = await adminUser();
    const handMade = await signToken(claimsOf(user));
    for (const fn of FUNCTIONS) {
      for (const [what, token] of [['signed-in', await signedIn(fn, user)], ['hand-signed', handMade]] as const) {
        const res = await call(fn, token);
        expect(fn.ok, `${fn.name}: a valid ${what} token is accepted (got ${res.status})`).toContain(res.status);
        await res.body?.cancel();
      }
    }
  });

  it('ES256 tokens of the published key verify in both modes (a standby signing key)', async () => {
    const user = await adminUser();
    const res = await call(FUNCTIONS[0], await signToken(claimsOf(user), { alg: 'ES256' }));
    expect(res.status, 'ES256 with the JWKS key').toBe(200);
    expect((await res.json()).user_id, 'as that user').toBe(user.id);
  });

  it('service callers keep working: sb_secret_ apikey, the service_role JWT, and in legacy mode an HS256 service_role key', async () => {
    const backfill = (headers: Record<string, string>) => fetch(`${API_URL}/functions/v1/backfill`, { headers });
    const secretKey = await backfill({ apikey: keys().secretKey });
    expect(secretKey.status, 'sb_secret_ key in apikey').toBe(200);
    const serviceJwt = await backfill({ authorization: `Bearer ${keys().serviceRoleKey}` });
    expect(serviceJwt.status, 'service_role JWT as Bearer').toBe(200);
    // A legacy project's service_role key: HS256 with the JWT secret, no user issuer or audience.
    const legacy = await signToken({ role: 'service_role' }, { alg: 'HS256', iss: 'supabase', aud: null, expiresIn: 3600 });
    const legacyRes = await backfill({ authorization: `Bearer ${legacy}` });
    expect(legacyRes.status, 'HS256 service_role key: accepted only with the legacy secret').toBe(mode === 'hs256' ? 200 : 401);
    await Promise.all([secretKey, serviceJwt, legacyRes].map((r) => r.body?.cancel()));
  });

  it('a cached token is refused once it expires', async () => {
    const user = await adminUser();
    const token = await signToken(claimsOf(user), { expiresIn: 2 });
    const first = await call(FUNCTIONS[0], token);
    expect(first.status, 'valid while exp is ahead (and now cached)').toBe(200);
    await first.body?.cancel();
    const refused = await eventually('the token to be refused after exp', async () => {
      const res = await call(FUNCTIONS[0], token);
      return res.status === 401 ? res.json() : (await res.body?.cancel(), null);
    }, 10_000, 200);
    expect(refused.error.code, 'the cache never outlives exp').toBe('invalid_token');
  });
});
