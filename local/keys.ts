// Local signing keys and API keys, made once per checkout and kept in .local/keys.json.
// Supabase's asymmetric JWT signing: an ES256 key pair whose public half is served as JWKS; and
// a legacy JWT secret (HS256) for the Auth stand-in's legacy mode (LOCAL_AUTH_JWT_MODE=hs256).
import crypto from 'node:crypto';
import fs from 'node:fs';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import path from 'node:path';
import { KEYS_FILE, RUN_DIR, STATE_DIR } from './config.ts';

export interface LocalKeys {
  privateJwk: JWK;
  publicJwk: JWK;
  anonKey: string;
  serviceRoleKey: string;
  secretKey: string;
  publishableKey: string;
  narrativeServiceSecret: string;
  /** The legacy JWT secret: signs user tokens in hs256 mode, given to the functions as JWT_SECRET. */
  jwtSecret: string;
}

/** How the local Auth signs user access tokens: `es256` (JWT signing keys, the default) or
 *  `hs256` (a project still on the legacy JWT secret). */
export type JwtMode = 'es256' | 'hs256';

export function jwtMode(value = process.env.LOCAL_AUTH_JWT_MODE): JwtMode {
  const mode = (value || 'es256').toLowerCase();
  if (mode !== 'es256' && mode !== 'hs256') throw new Error(`LOCAL_AUTH_JWT_MODE must be es256 or hs256, got "${value}"`);
  return mode;
}

/** The mode the running functions runtime was started in (written by `npm start`). */
export const JWT_MODE_MARKER = path.join(RUN_DIR, 'runtime.jwt-mode');
export function runningJwtMode(): JwtMode | null {
  return fs.existsSync(JWT_MODE_MARKER) ? jwtMode(fs.readFileSync(JWT_MODE_MARKER, 'utf8').trim()) : null;
}

const newSecret = () => crypto.randomBytes(32).toString('base64url');

const TEN_YEARS = 10 * 365 * 24 * 3600;

async function apiKey(privateJwk: JWK, role: 'anon' | 'service_role'): Promise<string> {
  const key = await importJWK(privateJwk, 'ES256');
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ role })
    .setProtectedHeader({ alg: 'ES256', kid: privateJwk.kid, typ: 'JWT' })
    .setIssuer('supabase-demo')
    .setIssuedAt(now)
    .setExpirationTime(now + TEN_YEARS)
    .sign(key);
}

export async function ensureKeys(): Promise<LocalKeys> {
  if (fs.existsSync(KEYS_FILE)) {
    const keys = JSON.parse(fs.readFileSync(KEYS_FILE, 'utf8')) as LocalKeys;
    if (keys.publishableKey && keys.jwtSecret) return keys;
    keys.publishableKey ||= `sb_publishable_${crypto.randomBytes(18).toString('base64url')}`;
    keys.jwtSecret ||= newSecret();
    fs.writeFileSync(KEYS_FILE, JSON.stringify(keys, null, 2), { mode: 0o600 });
    return keys;
  }
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = crypto.randomUUID();
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' };
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig', key_ops: ['verify'] };
  const keys: LocalKeys = {
    privateJwk,
    publicJwk,
    anonKey: await apiKey(privateJwk, 'anon'),
    serviceRoleKey: await apiKey(privateJwk, 'service_role'),
    secretKey: `sb_secret_${crypto.randomBytes(24).toString('base64url')}`,
    publishableKey: `sb_publishable_${crypto.randomBytes(18).toString('base64url')}`,
    narrativeServiceSecret: newSecret(),
    jwtSecret: newSecret(),
  };
  fs.mkdirSync(STATE_DIR, { recursive: true });
  fs.writeFileSync(KEYS_FILE, JSON.stringify(keys, null, 2), { mode: 0o600 });
  return keys;
}

export function jwks(keys: LocalKeys): { keys: JWK[] } {
  return { keys: [keys.publicJwk] };
}
