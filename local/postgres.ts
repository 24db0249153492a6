// Postgres 15 for the local stack: a private cluster under .local/db on port 54322 with
// pg_cron preloaded, run as the `postgres` OS user when we are root (initdb refuses root).
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import crypto from 'node:crypto';
import { ADMIN_DB_URL, DB_PORT, DB_URL, HOST, LOG_DIR, PG_BIN, PGDATA, ROOT, RUN_DIR } from './config.ts';

const isRoot = process.getuid?.() === 0;

// Where the cluster lives. Normally .local/ in the checkout; when the checkout sits under a
// folder the postgres OS user cannot enter (a 0700 temp dir, say), a per-checkout folder in
// postgres' home instead.
const pg = (() => {
  const reachable = !isRoot || spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-x', ROOT]).status === 0;
  if (reachable) return { data: PGDATA, sock: RUN_DIR, log: path.join(LOG_DIR, 'postgres.log') };
  const base = `/var/lib/postgresql/narrative-cache-${crypto.createHash('sha1').update(ROOT).digest('hex').slice(0, 12)}`;
  return { data: path.join(base, 'db'), sock: path.join(base, 'run'), log: path.join(base, 'postgres.log') };
})();

function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}) {
  const [file, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  const res = spawnSync(file, argv, { encoding: 'utf8', ...opts });
  if (res.status !== 0) {
    throw new Error(`${path.basename(cmd)} failed (${res.status}): ${res.stderr || res.stdout}`);
  }
  return res.stdout as string;
}

function which(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
}

/** System packages npm cannot provide. Installs them with apt when root, else says how. */
export function ensureSystemPackages(): void {
  const missing: string[] = [];
  if (!fs.existsSync(path.join(PG_BIN, 'postgres'))) missing.push('postgresql-15');
  if (missing.length === 0) return;
  const cmd = `apt-get update && apt-get install -y ${missing.join(' ')}`;
  if (!isRoot || !which('apt-get')) {
    throw new Error(`Missing system packages: ${missing.join(', ')}. Install them with:\n  sudo ${cmd}`);
  }
  console.log(`Installing ${missing.join(', ')} with apt-get ...`);
  const res = spawnSync('sh', ['-c', cmd], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (res.status !== 0) throw new Error(`apt-get failed; run it yourself:\n  sudo ${cmd}`);
}

function prepareDir(dir: string) {
  fs.mkdirSync(dir, { recursive: true });
  if (isRoot) spawnSync('chown', ['postgres:postgres', dir]);
}

export function clusterExists(): boolean {
  return fs.existsSync(path.join(pg.data, 'PG_VERSION'));
}

export function initCluster(): void {
  prepareDir(path.dirname(pg.data));
  prepareDir(pg.sock);
  prepareDir(path.dirname(pg.log));
  prepareDir(pg.data);
  const pwfile = path.join(pg.sock, 'pwfile');
  fs.writeFileSync(pwfile, 'postgres\n');
  if (isRoot) spawnSync('chown', ['postgres:postgres', pwfile]);
  run(path.join(PG_BIN, 'initdb'), [
    '-D', pg.data, '-U', 'supabase_admin', '--pwfile', pwfile, '-E', 'UTF8', '--locale', 'C.UTF-8',
    '--auth-local', 'trust', '--auth-host', 'scram-sha-256',
  ]);
  fs.rmSync(pwfile);
  // Vault's root key: 64 hex characters read by vault.getkey_script when Postgres starts (on
  // hosted Supabase the platform supplies it). It lives and dies with the cluster.
  const keyFile = path.join(pg.data, 'vault_root.key');
  fs.writeFileSync(keyFile, crypto.randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
  fs.writeFileSync(path.join(pg.data, 'vault_getkey'), `#!/bin/sh\nexec cat '${keyFile}'\n`, { mode: 0o700 });
  if (isRoot) spawnSync('chown', ['postgres:postgres', keyFile, path.join(pg.data, 'vault_getkey')]);
  fs.writeFileSync(path.join(pg.data, FORMAT_FILE), `${CLUSTER_FORMAT}\n`);
  writeConfig();
}

// Bumped when a cluster made by an older npm start cannot be reused (2: real pg_net, pg_cron
// 1.6 and supabase_vault instead of the SQL-only stand-ins; 3: superuser supabase_admin, postgres
// demoted as on hosted, migrations recorded by the Supabase CLI; 4: Auth's OAuth server tables).
const CLUSTER_FORMAT = '4';
const FORMAT_FILE = 'local_stack_format';

/** False for a cluster made by an older version of the local stack (it must be rebuilt). */
export function clusterCurrent(): boolean {
  try {
    return fs.readFileSync(path.join(pg.data, FORMAT_FILE), 'utf8').trim() === CLUSTER_FORMAT;
  } catch {
    return false;
  }
}

const CONFIG_MARKER = '# --- local stack (see local/postgres.ts) ---';

/** (Re)writes the local stack's block at the end of postgresql.conf; applied at the next start. */
function writeConfig(): void {
  const file = path.join(pg.data, 'postgresql.conf');
  const text = fs.readFileSync(file, 'utf8');
  const at = text.indexOf(CONFIG_MARKER);
  fs.writeFileSync(file, `${at >= 0 ? text.slice(0, at) : text}${CONFIG_MARKER}
listen_addresses = '${HOST}'
port = ${DB_PORT}
unix_socket_directories = '${pg.sock}'
max_connections = 300
shared_buffers = 256MB
# As on hosted Supabase: pg_net's and pg_cron's background workers, Vault's root key.
shared_preload_libraries = 'pg_cron,pg_net,supabase_vault'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 32
vault.getkey_script = '${path.join(pg.data, 'vault_getkey')}'
timezone = 'UTC'
log_timezone = 'UTC'
# A throwaway development cluster: survive a Postgres crash, not an OS crash.
fsync = off
full_page_writes = off
`);
}

export function isRunning(): boolean {
  try {
    run(path.join(PG_BIN, 'pg_ctl'), ['status', '-D', pg.data]);
    return true;
  } catch {
    return false;
  }
}

export function startCluster(): void {
  if (isRunning()) return;
  writeConfig();
  prepareDir(pg.sock);
  prepareDir(path.dirname(pg.log));
  run(path.join(PG_BIN, 'pg_ctl'), ['start', '-D', pg.data, '-w', '-t', '60', '-l', pg.log]);
}

export function stopCluster(mode: 'fast' | 'immediate' = 'fast'): void {
  if (!clusterExists() || !isRunning()) return;
  run(path.join(PG_BIN, 'pg_ctl'), ['stop', '-D', pg.data, '-m', mode, '-w', '-t', '60']);
}

export function removeCluster(): void {
  stopCluster();
  fs.rmSync(pg.data, { recursive: true, force: true });
}

/** A short-lived connection as the platform's superuser (supabase_admin): the bootstrap only. */
export function adminSql() {
  return postgres(ADMIN_DB_URL, { max: 1, onnotice: () => {}, connect_timeout: 10 });
}

/** A short-lived connection as `postgres` (not a superuser), what hosted gives a project's owner. */
export function ownerSql() {
  return postgres(DB_URL, { max: 1, onnotice: () => {}, connect_timeout: 10 });
}
