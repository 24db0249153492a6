// LOCAL STAND-IN for the Supabase API gateway + Edge Runtime on :54321: a supervisor and one
// serving Deno process per core (workers.ts), each loading everything:
//   /auth/v1/*           -> the Auth stand-in (auth.ts)
//   /functions/v1/<name> -> supabase/functions/<name>/index.ts, loaded unchanged: its
//                           Deno.serve(handler) call is captured instead of opening a port,
//                           and verify_jwt from supabase/config.toml is enforced first.
import postgres from 'postgres';
import type { JWK } from 'jose';
import { parse as parseToml } from 'npm:smol-toml';
import { createAuth } from './auth.ts';
import { createJwtGate, gateMessages } from './gateway.ts';
import { exitWithSupervisor, runWallClock, superviseWorkers, wallClockMs, workerCount, workerIndex } from './workers.ts';

type Handler = (req: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>;

const root = new URL('../../', import.meta.url);
const functionsDir = new URL('supabase/functions/', root);
const port = Number(Deno.env.get('API_PORT') ?? 54321);
const hostname = '127.0.0.1';

const log = (fields: Record<string, unknown>) =>
  console.log(JSON.stringify({ ts: new Date().toISOString(), ...fields }));

// The supervisor starts the serving workers with this env (before anything below takes its
// settings out of it) and serves nothing itself.
const workers = workerCount();
if (workerIndex() === 0) await superviseWorkers(new URL(import.meta.url), workers, log);
exitWithSupervisor();
const worker = workerIndex();
const wallClock = wallClockMs();
for (const name of ['LOCAL_RUNTIME_WORKERS', 'LOCAL_RUNTIME_WORKER_INDEX', 'LOCAL_RUNTIME_INSPECT', 'LOCAL_RUNTIME_WALL_CLOCK_MS', 'LOCAL_RUNTIME_LOG_FILE', 'LOCAL_RUNTIME_LOG_MAX_BYTES']) {
  Deno.env.delete(name);
}

// The signing key is for the Auth stand-in only: read it, then drop the path from the env the
// functions will see.
const keysFile = Deno.env.get('LOCAL_KEYS_FILE');
if (!keysFile) throw new Error('LOCAL_KEYS_FILE is not set (start the stack with npm start)');
Deno.env.delete('LOCAL_KEYS_FILE');
const keys = JSON.parse(await Deno.readTextFile(keysFile)) as {
  privateJwk: JWK; publicJwk: JWK; secretKey: string; jwtSecret: string;
};
// es256: user tokens signed with the asymmetric key (JWT signing keys); hs256: with the legacy
// JWT secret, which `npm start` then also gives the functions as JWT_SECRET, as a legacy project
// sets it with `supabase secrets set`.
const jwtMode = Deno.env.get('LOCAL_AUTH_JWT_MODE') === 'hs256' ? 'hs256' : 'es256';
Deno.env.delete('LOCAL_AUTH_JWT_MODE');

const config = parseToml(await Deno.readTextFile(new URL('supabase/config.toml', root))) as {
  auth?: {
    jwt_expiry?: number; site_url?: string; additional_redirect_urls?: string[];
    oauth_server?: { enabled?: boolean; authorization_url_path?: string; allow_dynamic_registration?: boolean };
  };
  functions?: Record<string, { verify_jwt?: boolean; enabled?: boolean }>;
};

const dbUrl = Deno.env.get('SUPABASE_DB_URL');
if (!dbUrl) throw new Error('SUPABASE_DB_URL is not set');
const auth = createAuth({
  sql: postgres(dbUrl, { max: 4, prepare: false, onnotice: () => {}, connection: { application_name: 'local auth' } }),
  privateJwk: keys.privateJwk,
  publicJwk: keys.publicJwk,
  issuer: `http://${hostname}:${port}/auth/v1`,
  jwtExpiry: config.auth?.jwt_expiry ?? 3600,
  secretKey: keys.secretKey,
  legacyJwtSecret: jwtMode === 'hs256' ? keys.jwtSecret : null,
  siteUrl: config.auth?.site_url ?? 'http://127.0.0.1:3000',
  redirectUrls: config.auth?.additional_redirect_urls ?? [],
  oauthServer: {
    enabled: config.auth?.oauth_server?.enabled ?? false,
    authorizationPath: config.auth?.oauth_server?.authorization_url_path ?? '/oauth/consent',
    allowDynamicRegistration: config.auth?.oauth_server?.allow_dynamic_registration ?? false,
  },
});

// supabase/functions/.env (or the file given with `start --functions-env`), as
// `supabase functions serve` reads it; SUPABASE_* names are reserved and skipped.
const envFile = Deno.env.get('LOCAL_FUNCTIONS_ENV_FILE') || new URL('.env', functionsDir);
Deno.env.delete('LOCAL_FUNCTIONS_ENV_FILE');
try {
  const text = await Deno.readTextFile(envFile);
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m || line.trimStart().startsWith('#')) continue;
    if (m[1].startsWith('SUPABASE_')) continue;
    Deno.env.set(m[1], m[2].replace(/^(['"])(.*)\1$/, '$2'));
  }
} catch (err) {
  if (!(err instanceof Deno.errors.NotFound)) throw err;
}

// The edge runtime's global for work that outlives a response (EdgeRuntime.waitUntil). Hosted
// Supabase keeps the worker alive until the promise settles (within the wall-clock limit);
// a worker process here lives on anyway, so the promise just runs. A rejection is logged, as the
// platform logs it.
// Counted: a retired worker with none pending (and no request in flight) is dropped early.
let pendingTasks = 0;
// deno-lint-ignore no-explicit-any
(globalThis as any).EdgeRuntime = {
  waitUntil(promise: Promise<unknown>) {
    pendingTasks++;
    Promise.resolve(promise)
      .catch((err) => log({ level: 'error', msg: 'background_task_failed', error: String(err) }))
      .finally(() => pendingTasks--);
  },
};

// Load every function, capturing the handler its index.ts passes to Deno.serve.
const handlers = new Map<string, Handler>();
const broken = new Map<string, string>();
let loading: string | null = null;
const fakeServer = {
  finished: new Promise<void>(() => {}),
  addr: { transport: 'tcp', hostname, port },
  ref() {}, unref() {}, shutdown: () => Promise.resolve(),
  [Symbol.asyncDispose]: () => Promise.resolve(),
};
const realServe = Deno.serve;
// deno-lint-ignore no-explicit-any
(Deno as any).serve = (a: unknown, b?: unknown) => {
  const handler = (typeof a === 'function' ? a : typeof b === 'function' ? b : (a as { handler: Handler }).handler) as Handler;
  if (!loading || typeof handler !== 'function') throw new Error('Deno.serve called outside of function loading');
  handlers.set(loading, handler);
  return fakeServer;
};
for await (const entry of Deno.readDir(functionsDir)) {
  if (!entry.isDirectory || entry.name.startsWith('_') || entry.name.startsWith('.')) continue;
  if (config.functions?.[entry.name]?.enabled === false) continue;
  const index = new URL(`${entry.name}/index.ts`, functionsDir);
  try {
    await Deno.stat(index);
  } catch {
    continue;
  }
  loading = entry.name;
  try {
    await import(index.href);
    if (!handlers.has(entry.name)) throw new Error('index.ts did not call Deno.serve');
  } catch (err) {
    broken.set(entry.name, String(err));
    log({ level: 'error', msg: 'function_load_failed', function: entry.name, error: String(err) });
  }
}
loading = null;

const validJwt = createJwtGate({ publicJwk: keys.publicJwk, jwtSecret: jwtMode === 'hs256' ? keys.jwtSecret : null });

// Supabase's API gateway answers CORS for Auth (browsers sign in from other origins); functions
// answer their own preflights, but gateway errors carry the headers so a browser can read them.
const gatewayCors = {
  'access-control-allow-origin': '*',
  'access-control-allow-headers': 'authorization, x-client-info, apikey, content-type, x-supabase-api-version',
  'access-control-allow-methods': 'GET, POST, PUT, PATCH, DELETE, OPTIONS',
  'access-control-max-age': '3600',
};

const relay = (status: number, message: string) =>
  new Response(JSON.stringify({ code: status, message }), { status, headers: { ...gatewayCors, 'content-type': 'application/json' } });

async function authWithCors(req: Request, url: URL): Promise<Response> {
  if (req.method === 'OPTIONS') return new Response(null, { status: 204, headers: gatewayCors });
  const res = await auth(req, url.pathname.slice('/auth/v1'.length), url);
  for (const [k, v] of Object.entries(gatewayCors)) res.headers.set(k, v);
  return res;
}

// Supabase's API gateway takes a request body in whole before the function answers, and refuses
// one past its size limit. Without that, Deno's server (2.1, the edge runtime's) closes the
// connection when a function answers (405, 413, 401 …) before reading an upload, and the client
// sees a reset instead of the answer.
const GATEWAY_MAX_BODY_BYTES = 20 * 1024 * 1024;

async function bufferedBody(req: Request): Promise<Uint8Array | null | 'too_large'> {
  if (!req.body) return null;
  // A declared length within the limit: one read of the whole body (cheaper than a stream walk).
  const declared = Number(req.headers.get('content-length') ?? NaN);
  if (declared <= GATEWAY_MAX_BODY_BYTES) return new Uint8Array(await req.arrayBuffer());
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req.body) {
    size += chunk.byteLength;
    if (size > GATEWAY_MAX_BODY_BYTES) return 'too_large';
    chunks.push(chunk);
  }
  const body = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    body.set(c, at);
    at += c.byteLength;
  }
  return body;
}

async function functions(req: Request, url: URL, info: Deno.ServeHandlerInfo): Promise<Response> {
  const [, name, ...rest] = url.pathname.slice('/functions/v1'.length).split('/');
  const handler = name ? handlers.get(name) : undefined;
  if (!handler) {
    if (name && broken.has(name)) return relay(503, `Function failed to start (please check logs)`);
    return relay(404, 'Requested function was not found');
  }
  if ((config.functions?.[name]?.verify_jwt ?? true) && req.method !== 'OPTIONS') {
    const v = await validJwt(req);
    if (v !== 'ok') return relay(401, gateMessages[v]);
  }
  // The function sees its own name as the first path segment, as on the platform.
  const target = new URL(`/${[name, ...rest].join('/')}${url.search}`, url.origin);
  const body = await bufferedBody(req);
  if (body === 'too_large') return relay(413, 'Payload too large');
  try {
    // Fetch's Request cannot carry a body on GET or HEAD; such a body is read and dropped.
    const forwarded = new Request(target, { method: req.method, headers: req.headers, body: req.method === 'GET' || req.method === 'HEAD' ? null : body });
    // The client's signal (it aborts when the client goes away), handed over only when the function
    // reads it: Deno makes a request's signal on first use and then aborts it, with a DOMException
    // and its stack, when the response closes — on every request, finished or not (5-8 % of a
    // worker's thread under the bench's cache hits when it was always made).
    Object.defineProperty(forwarded, 'signal', { get: () => req.signal });
    return await handler(forwarded, info);
  } catch (err) {
    log({ level: 'error', msg: 'function_crashed', function: name, error: String(err) });
    return relay(500, 'Function exited due to an error (please check logs)');
  }
}

let inFlight = 0;
const server = realServe({
  // Always shared: a worker's replacement listens before the worker retires (wall clock).
  port, hostname, reusePort: true,
  onListen: () => log({ level: 'info', msg: 'listening', port, worker, workers, pid: Deno.pid, functions: [...handlers.keys()] }),
},
  async (req, info) => {
    inFlight++;
    try {
      const url = new URL(req.url);
      if (url.pathname.startsWith('/auth/v1/')) return await authWithCors(req, url);
      if (url.pathname.startsWith('/functions/v1/')) return await functions(req, url, info);
      return relay(404, 'no Route matched with those values');
    } finally {
      inFlight--;
    }
  });

if (wallClock !== null) {
  runWallClock(wallClock, { retire: () => server.shutdown(), idle: () => inFlight === 0 && pendingTasks === 0 }, log);
}
