// `npm start | stop | status | db:reset` for the local stack (what `supabase start` does,
// without Docker). See docs/local-stack.md.
import fs from 'node:fs';
import path from 'node:path';
import { API_URL, DASHBOARD_PORT, DASHBOARD_URL, DB_URL, DENO_RUNTIME, KEYS_FILE, RUN_DIR } from './config.ts';
import { buildDashboard, DASHBOARD_DIST, dashboardUp } from './dashboard.ts';
import { ensureKeys, JWT_MODE_MARKER, jwks, jwtMode, runningJwtMode, type LocalKeys } from './keys.ts';
import { bootstrap, ensureVaultSecrets, migrate, seed } from './migrate.ts';
import { ensureExtensions } from './extensions.ts';
import {
  adminSql, clusterCurrent, clusterExists, ensureSystemPackages, initCluster, isRunning,
  ownerSql, removeCluster, startCluster, stopCluster,
} from './postgres.ts';
import { logFile, pidOf, startService, stopService, waitFor, type Service } from './processes.ts';

const SERVICES = ['runtime', 'dashboard'] as const;

// `start --functions-env FILE` runs the functions with FILE instead of supabase/functions/.env
// (like `supabase functions serve --env-file`); the tests use it to point Gemini at a fake.
// `npm start --functions-env FILE` reaches us as npm config (npm_config_functions_env=true) plus
// FILE as a plain argument; `npm start -- --functions-env FILE` and `tsx local/cli.ts start
// --functions-env FILE` pass the flag itself. All three work.
function functionsEnvArg(): string {
  const flag = process.argv.indexOf('--functions-env');
  if (flag > 0) return process.argv[flag + 1] ?? '';
  const npmConfig = process.env.npm_config_functions_env;
  if (npmConfig === undefined || npmConfig === '') return '';
  return npmConfig === 'true' ? process.argv[3] ?? '' : npmConfig;
}
const functionsEnvArgValue = functionsEnvArg();
const functionsEnvFile = functionsEnvArgValue ? path.resolve(functionsEnvArgValue) : '';
const envFileMarker = path.join(RUN_DIR, 'runtime.functions-env');
const runningEnvFile = () => (fs.existsSync(envFileMarker) ? fs.readFileSync(envFileMarker, 'utf8') : '');
// LOCAL_AUTH_JWT_MODE=es256|hs256: how the Auth stand-in signs user tokens (see local/keys.ts).
const authJwtMode = jwtMode();

function services(keys: LocalKeys): Record<(typeof SERVICES)[number], Service> {
  return {
    runtime: {
      name: 'runtime',
      command: DENO_RUNTIME,
      // LOCAL_RUNTIME_INSPECT, LOCAL_RUNTIME_WALL_CLOCK_MS and LOCAL_RUNTIME_LOG_MAX_BYTES reach it
      // through the environment (local/runtime/workers.ts: the serving workers get the inspectors).
      args: ['run', '-A', '--no-lock', '--unstable-net', '--config', 'deno.json', path.join('local', 'runtime', 'main.ts')],
      env: {
        LOCAL_KEYS_FILE: KEYS_FILE,
        // The supervisor writes the workers' output here, bounded (local/log-file.ts).
        LOCAL_RUNTIME_LOG_FILE: logFile('runtime'),
        LOCAL_FUNCTIONS_ENV_FILE: functionsEnvFile,
        LOCAL_AUTH_JWT_MODE: authJwtMode,
        // A legacy-secret project gives its functions the secret as a function secret.
        ...(authJwtMode === 'hs256' ? { JWT_SECRET: keys.jwtSecret } : {}),
        NARRATIVE_SERVICE_SECRET: keys.narrativeServiceSecret,
        DENO_NO_UPDATE_CHECK: '1',
        SUPABASE_URL: API_URL,
        SUPABASE_DB_URL: DB_URL,
        SUPABASE_ANON_KEY: keys.anonKey,
        SUPABASE_SERVICE_ROLE_KEY: keys.serviceRoleKey,
        SUPABASE_JWKS: JSON.stringify(jwks(keys)),
        SUPABASE_SECRET_KEYS: JSON.stringify({ default: keys.secretKey }),
        SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: keys.publishableKey }),
      },
    },
    dashboard: {
      name: 'dashboard',
      command: process.execPath,
      args: ['--import', 'tsx', path.join('local', 'dashboard-server.ts')],
      env: { DASHBOARD_PORT: String(DASHBOARD_PORT), DASHBOARD_DIR: DASHBOARD_DIST },
    },
  };
}

async function apiUp(): Promise<boolean> {
  const res = await fetch(`${API_URL}/auth/v1/health`, { signal: AbortSignal.timeout(1000) });
  return res.ok;
}

async function stackUp(): Promise<boolean> {
  return clusterExists() && isRunning() && SERVICES.every((s) => pidOf(s) !== null) && (await apiUp().catch(() => false));
}

/** Bootstrap + migrations + seed + Vault on an empty cluster (first start and db:reset). */
async function buildDatabase(keys: LocalKeys): Promise<void> {
  const admin = adminSql();
  try {
    await bootstrap(admin);
  } finally {
    await admin.end();
  }
  // Everything else as postgres, which is not a superuser (as on hosted).
  const owner = ownerSql();
  try {
    // Vault before the seed: jobs the seed queues are dispatched straight away.
    await ensureVaultSecrets(owner, keys);
    const applied = migrate();
    await seed(owner);
    console.log(`Applied ${applied.length} migration(s) with the Supabase CLI, and supabase/seed.sql.`);
  } finally {
    await owner.end();
  }
}

function statusLines(keys: LocalKeys): string {
  return [
    `API_URL=${API_URL}`,
    `DB_URL=${DB_URL}`,
    `ANON_KEY=${keys.anonKey}`,
    `SERVICE_ROLE_KEY=${keys.serviceRoleKey}`,
    `PUBLISHABLE_KEY=${keys.publishableKey}`,
    `SECRET_KEY=${keys.secretKey}`,
    `NARRATIVE_SERVICE_SECRET=${keys.narrativeServiceSecret}`,
    `JWKS=${JSON.stringify(jwks(keys))}`,
    `DASHBOARD_URL=${DASHBOARD_URL}`,
  ].join('\n');
}

const dashboardLine = `Dashboard: ${DASHBOARD_URL}  (demo login: demo@example.com / password123)`;

async function startRuntime(keys: LocalKeys): Promise<void> {
  if (functionsEnvFile && !fs.existsSync(functionsEnvFile)) throw new Error(`No such env file: ${functionsEnvFile}`);
  // A runtime still up from a partly running stack may have another env file: not that one.
  if (runningEnvFile() !== functionsEnvFile || runningJwtMode() !== authJwtMode) await stopService('runtime');
  startService(services(keys).runtime);
  fs.writeFileSync(envFileMarker, functionsEnvFile);
  fs.writeFileSync(JWT_MODE_MARKER, authJwtMode);
  await waitFor(`API (see ${logFile('runtime')})`, apiUp, 60_000);
}

/** Builds the dashboard when its sources changed, then serves it (static files: no restart needed). */
async function startDashboard(keys: LocalKeys): Promise<void> {
  buildDashboard(keys.anonKey);
  startService(services(keys).dashboard);
  await waitFor(`dashboard (see ${logFile('dashboard')})`, dashboardUp, 15_000);
}

async function start(): Promise<void> {
  if (await stackUp()) {
    const keys = await ensureKeys();
    if (runningEnvFile() !== functionsEnvFile || runningJwtMode() !== authJwtMode) {
      await stopService('runtime');
      await startRuntime(keys);
      console.log(`Functions restarted with ${functionsEnvFile || 'supabase/functions/.env'}, ${authJwtMode} user tokens.`);
    }
    // Edited dashboard sources are rebuilt; the server reads files from disk, so it keeps running.
    buildDashboard(keys.anonKey);
    console.log('The local stack is already running.');
    console.log(statusLines(keys));
    console.log(dashboardLine);
    return;
  }
  const t0 = Date.now();
  ensureSystemPackages();
  await ensureExtensions();
  const keys = await ensureKeys();
  if (clusterExists() && !clusterCurrent()) {
    console.log('The local database was made by an older npm start (superuser postgres, stand-in extensions or no OAuth server tables); rebuilding it.');
    removeCluster();
  }
  const fresh = !clusterExists();
  if (fresh) initCluster();
  startCluster();
  // The functions before the seed: pg_net delivers the jobs the seed queues as soon as it
  // commits, so the runtime must already answer.
  await startRuntime(keys);
  if (fresh) {
    await buildDatabase(keys);
  } else {
    const applied = migrate();
    if (applied.length) console.log(`Applied pending migration(s): ${applied.join(', ')}`);
    const owner = ownerSql();
    try {
      await ensureVaultSecrets(owner, keys);
    } finally {
      await owner.end();
    }
  }
  await startDashboard(keys);
  console.log(`Local stack is up in ${((Date.now() - t0) / 1000).toFixed(1)} s.`);
  console.log(statusLines(keys));
  console.log(dashboardLine);
}

async function stop(): Promise<void> {
  for (const s of SERVICES) await stopService(s);
  stopCluster();
  console.log('Local stack stopped.');
}

async function status(): Promise<void> {
  const up = await stackUp();
  const keys = await ensureKeys();
  if (!up) {
    const parts = [
      `postgres ${clusterExists() && isRunning() ? 'up' : 'down'}`,
      ...SERVICES.map((s) => `${s} ${pidOf(s) ? 'up' : 'down'}`),
    ];
    console.error(`The local stack is not (fully) running: ${parts.join(', ')}. Run npm start.`);
    process.exitCode = 1;
    return;
  }
  console.log(statusLines(keys));
}

async function dbReset(): Promise<void> {
  const t0 = Date.now();
  ensureSystemPackages();
  await ensureExtensions();
  const keys = await ensureKeys();
  removeCluster();
  initCluster();
  startCluster();
  await buildDatabase(keys);
  console.log(`Database rebuilt from scratch in ${((Date.now() - t0) / 1000).toFixed(1)} s.`);
}

/** Like `supabase migration up`: apply pending migrations to the running local database. */
async function migrateUp(): Promise<void> {
  if (!clusterExists() || !isRunning()) throw new Error('The local database is not running. Run npm start.');
  const applied = migrate();
  console.log(applied.length ? `Applied: ${applied.join(', ')}` : 'No pending migrations.');
}

const commands: Record<string, () => Promise<void>> = { start, stop, status, 'db-reset': dbReset, migrate: migrateUp };
const cmd = process.argv[2] ?? '';
if (!commands[cmd]) {
  console.error(`usage: tsx local/cli.ts ${Object.keys(commands).join('|')}`);
  process.exit(2);
}
commands[cmd]().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
