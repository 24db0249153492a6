// The Auth stand-in and the functions gateway, through supabase-js and plain fetch:
// sign-in -> token -> function call as that user; the gateway's verify_jwt check (for functions
// that set it) refuses bad tokens, and functions with verify_jwt = false get every request.
import fs from 'node:fs';
import { SignJWT, generateKeyPair, importJWK } from 'jose';
import { parse as parseToml } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { createJwtGate } from '../local/runtime/gateway.ts';
import { API_URL, DASHBOARD_URL } from '../local/config.ts';
import { authJwtMode, keys } from './helpers/stack.ts';
import { anonClient, createUser, serviceClient } from './helpers/users.ts';

const healthUrl = `${API_URL}/functions/v1/health`;

async function userToken(claims: Record<string, unknown>, opts: { expiresIn?: number; key?: CryptoKey; kid?: string } = {}) {
  const k = keys();
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ role: 'authenticated', aud: 'authenticated', ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: opts.kid ?? k.privateJwk.kid, typ: 'JWT' })
    .setIssuedAt(now - 120)
    .setExpirationTime(now + (opts.expiresIn ?? 3600))
    .sign(opts.key ?? (await importJWK(k.privateJwk, 'ES256')) as CryptoKey);
}

describe('sign-in and a function call as the user', () => {
  it('signInWithPassword gives a token with Supabase claims that functions.invoke accepts', async () => {
    const user = await createUser({ appMetadata: { plan: 'pro' } });
    const [header, payload] = user.accessToken.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()));
    const es256 = authJwtMode() === 'es256';
    expect(header.alg, 'asymmetric tokens, or HS256 in legacy mode').toBe(es256 ? 'ES256' : 'HS256');
    expect(header.kid, 'asymmetric tokens name their key').toBe(es256 ? keys().publicJwk.kid : undefined);
    expect(payload.iss, 'issued by the local Auth').toBe(`${API_URL}/auth/v1`);
    expect(payload, 'Supabase claims').toMatchObject({
      sub: user.id, role: 'authenticated', aud: 'authenticated', email: user.email,
      app_metadata: { plan: 'pro', provider: 'email' }, user_metadata: {},
    });
    expect(typeof payload.session_id, 'session_id claim').toBe('string');
    expect(payload.exp - payload.iat, 'jwt_expiry from config.toml').toBe(3600);

    const { data, error } = await user.client.functions.invoke('health', { method: 'GET' });
    expect(error, 'health call succeeds').toBeNull();
    expect(data, 'the function ran as the user, under RLS role authenticated').toMatchObject({
      status: 'ok', user_id: user.id, db_role: 'authenticated',
    });
  });

  it('getUser, refreshSession and signOut behave like Supabase Auth', async () => {
    const user = await createUser();
    const got = await user.client.auth.getUser();
    expect(got.error, 'getUser works').toBeNull();
    expect(got.data.user?.id, 'getUser returns the signed-in user').toBe(user.id);

    const before = (await user.client.auth.getSession()).data.session!;
    const refreshed = await user.client.auth.refreshSession();
    expect(refreshed.error, 'refresh works').toBeNull();
    expect(refreshed.data.session?.refresh_token, 'refresh tokens rotate').not.toBe(before.refresh_token);

    const reuse = await anonClient().auth.refreshSession({ refresh_token: 'not-a-token' });
    expect(reuse.error?.status, 'an unknown refresh token is refused').toBe(400);

    const out = await user.client.auth.signOut();
    expect(out.error, 'signOut works').toBeNull();
    const after = await fetch(`${API_URL}/auth/v1/user`, {
      headers: { authorization: `Bearer ${refreshed.data.session!.access_token}`, apikey: keys().anonKey },
    });
    expect(after.status, 'a token of a signed-out session no longer gets the user').toBe(403);
  });

  it('wrong password is refused with invalid_credentials', async () => {
    const user = await createUser();
    const res = await anonClient().auth.signInWithPassword({ email: user.email, password: 'nope-nope' });
    expect(res.error?.status, 'status').toBe(400);
    expect(res.error?.code, 'GoTrue error code').toBe('invalid_credentials');
  });

  it('the admin API needs the service role', async () => {
    const user = await createUser();
    const asUser = await fetch(`${API_URL}/auth/v1/admin/users`, {
      method: 'POST', headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'x@example.test', password: 'password1' }),
    });
    expect(asUser.status, 'a user token cannot create users').toBe(403);
    const { data, error } = await serviceClient().auth.admin.getUserById(user.id);
    expect(error, 'service role can read users').toBeNull();
    expect(data.user?.email, 'the right user').toBe(user.email);
  });

  it('serves the JWKS with the public key only', async () => {
    const res = await fetch(`${API_URL}/auth/v1/.well-known/jwks.json`);
    expect(res.status, 'JWKS endpoint').toBe(200);
    const body = await res.json();
    expect(body.keys, 'one key').toHaveLength(1);
    expect(body.keys[0], 'public EC P-256 key').toMatchObject({ kty: 'EC', crv: 'P-256', kid: keys().publicJwk.kid });
    expect(body.keys[0].d, 'never the private part').toBeUndefined();
  });
});

describe('the gateway\'s verify_jwt check (local/runtime/gateway.ts)', () => {
  const config = parseToml(fs.readFileSync('supabase/config.toml', 'utf8')) as { functions: Record<string, { verify_jwt?: boolean }> };

  it('every function checks its caller in code: verify_jwt = false in config.toml', () => {
    const names = fs.readdirSync('supabase/functions', { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith('_')).map((e) => e.name);
    expect(names.length, 'functions found').toBeGreaterThan(4);
    for (const name of names) expect(config.functions[name]?.verify_jwt, `${name}: verify_jwt`).toBe(false);
  });

  const gate = (jwtSecret: string | null = null) => createJwtGate({ publicJwk: keys().publicJwk, jwtSecret });
  const req = (token?: string) => new Request('http://x/functions/v1/f', token ? { headers: { authorization: `Bearer ${token}` } } : {});
  const hs256 = (secret: string) => new SignJWT({ role: 'authenticated' }).setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime('1h').sign(new TextEncoder().encode(secret));
  const cases: [string, () => Promise<string | undefined>][] = [
    ['no Authorization header', async () => undefined],
    ['a malformed token', async () => 'not.a.jwt'],
    ['an expired token', () => userToken({ sub: crypto.randomUUID() }, { expiresIn: -60 })],
    ['a token signed by another key', async () => {
      const { privateKey } = await generateKeyPair('ES256');
      return userToken({ sub: crypto.randomUUID() }, { key: privateKey });
    }],
    ['an alg:none token', async () => {
      const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const now = Math.floor(Date.now() / 1000);
      return `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ sub: crypto.randomUUID(), role: 'service_role', exp: now + 600 })}.`;
    }],
    ['an HS256 token without a legacy secret', () => hs256(keys().jwtSecret)],
  ];
  for (const [name, token] of cases) {
    it(`refuses ${name}`, async () => {
      expect(await gate()(req(await token())), `${name} is refused`).not.toBe('ok');
    });
  }

  it('lets valid tokens through: the signing key, and HS256 only with the legacy secret', async () => {
    expect(await gate()(req(await userToken({ sub: crypto.randomUUID() }))), 'ES256 of the JWKS key').toBe('ok');
    expect(await gate()(req(keys().anonKey)), 'the anon key is a valid JWT').toBe('ok');
    expect(await gate(keys().jwtSecret)(req(await hs256(keys().jwtSecret))), 'HS256 with the secret').toBe('ok');
    expect(await gate(keys().jwtSecret)(req(await hs256('y'.repeat(40)))), 'HS256 with another secret').toBe('invalid');
  });

  it('a valid token reaches the function; the anon key is a valid JWT but not a user', async () => {
    const res = await fetch(healthUrl, { headers: { authorization: `Bearer ${keys().anonKey}` } });
    expect(res.status, 'the gateway lets the anon key through, the function refuses it').toBe(401);
    expect((await res.json()).error.code, 'function error shape').toBe('user_token_required');
  });

  it('unknown functions are 404', async () => {
    const res = await fetch(`${API_URL}/functions/v1/no-such-function`, { headers: { authorization: `Bearer ${keys().anonKey}` } });
    expect(res.status, 'no such function').toBe(404);
  });

  it('CORS preflight is answered without a token', async () => {
    const res = await fetch(healthUrl, { method: 'OPTIONS', headers: { origin: DASHBOARD_URL, 'access-control-request-method': 'GET' } });
    expect(res.status, 'preflight passes the gateway').toBe(204);
    expect(res.headers.get('access-control-allow-origin'), 'CORS header').toBe('*');
  });
});
