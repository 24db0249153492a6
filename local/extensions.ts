// The Postgres extensions hosted Supabase runs and Debian does not package at these versions:
// pg_net 0.19.5, pg_cron 1.6.7 and supabase_vault 0.3.1, built from their unmodified upstream
// source with PGXS and installed into this machine's Postgres 15. Sources come from
// ../shared/vendor/ when present, else from the upstream repository at the same tag; either
// way the unpacked tree must match the pinned content digest before anything is built.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PG_BIN, ROOT, STATE_DIR } from './config.ts';

interface Extension {
  name: string;
  /** `default_version` of the control file it installs (how an installed build is recognised). */
  controlVersion: string;
  /** Upstream tag, archive name in ../shared/vendor and the download URL. */
  tag: string;
  archive: string;
  url: string;
  /** sha256 over the sorted (path, sha256 of content) list of the unpacked tree. */
  treeDigest: string;
  /** Debian packages its build needs beyond the server headers and a compiler. */
  buildPackages: string[];
}

export const EXTENSIONS: Extension[] = [
  {
    name: 'pg_net', controlVersion: '0.19.5', tag: 'v0.19.5', archive: 'pg_net-0.19.5.tar.gz',
    url: 'https://github.com/supabase/pg_net/archive/refs/tags/v0.19.5.tar.gz',
    treeDigest: 'f178d182aef4be90f9f9dc62ee861d8fe0cad67b5ee35f503dafa9b0e1a5052b',
    buildPackages: ['libcurl4-openssl-dev'],
  },
  {
    name: 'pg_cron', controlVersion: '1.6', tag: 'v1.6.7', archive: 'pg_cron-1.6.7.tar.gz',
    url: 'https://github.com/citusdata/pg_cron/archive/refs/tags/v1.6.7.tar.gz',
    treeDigest: 'e2546402d0d61260e9188165a66ee8111a15309b6a7b5d0ce91da457524fff10',
    buildPackages: [],
  },
  {
    name: 'supabase_vault', controlVersion: '0.3.1', tag: 'v0.3.1', archive: 'vault-0.3.1.tar.gz',
    url: 'https://github.com/supabase/vault/archive/refs/tags/v0.3.1.tar.gz',
    treeDigest: '3a4d7b39d22f363228a03108a199d911898b943c321a72a1b55d35e3b1337e97',
    buildPackages: ['libsodium-dev'],
  },
];

const BASE_BUILD_PACKAGES = ['postgresql-server-dev-15', 'build-essential'];
const VENDOR_DIR = path.resolve(ROOT, '..', 'shared', 'vendor');
const BUILD_DIR = path.join(STATE_DIR, 'build');
const PG_CONFIG = path.join(PG_BIN, 'pg_config');

const pgConfigCache = new Map<string, string>();
function pgConfig(flag: string): string {
  if (!pgConfigCache.has(flag)) {
    const res = spawnSync(PG_CONFIG, [flag], { encoding: 'utf8' });
    pgConfigCache.set(flag, res.status === 0 ? res.stdout.trim() : '');
  }
  return pgConfigCache.get(flag)!;
}

function installed(ext: Extension): boolean {
  const control = path.join(pgConfig('--sharedir'), 'extension', `${ext.name}.control`);
  const lib = path.join(pgConfig('--pkglibdir'), `${ext.name}.so`);
  if (!fs.existsSync(control) || !fs.existsSync(lib)) return false;
  const version = /default_version\s*=\s*'([^']+)'/.exec(fs.readFileSync(control, 'utf8'))?.[1];
  return version === ext.controlVersion;
}

function treeDigest(dir: string): string {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else files.push(path.relative(dir, p));
    }
  };
  walk(dir);
  const h = crypto.createHash('sha256');
  for (const f of files.sort()) {
    h.update(`${f}\0${crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, f))).digest('hex')}\n`);
  }
  return h.digest('hex');
}

function sh(cmd: string, args: string[], cwd?: string): void {
  const res = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${res.status}):\n${(res.stderr || res.stdout).slice(-2000)}`);
}

/** Unpacks the extension's source into a fresh folder and checks it against the pinned digest. */
async function unpackSource(ext: Extension): Promise<string> {
  const dir = path.join(BUILD_DIR, `${ext.name}-${ext.tag}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const vendored = path.join(VENDOR_DIR, ext.archive);
  if (fs.existsSync(vendored)) {
    // `git archive` without a prefix: the files sit at the top of the archive.
    sh('tar', ['xzf', vendored, '-C', dir]);
  } else {
    console.log(`Downloading ${ext.name} ${ext.tag} from ${ext.url} ...`);
    const res = await fetch(ext.url, { signal: AbortSignal.timeout(120_000) });
    if (!res.ok) throw new Error(`Downloading ${ext.url} failed: HTTP ${res.status}`);
    const file = path.join(BUILD_DIR, ext.archive);
    fs.writeFileSync(file, Buffer.from(await res.arrayBuffer()));
    // GitHub's archives put everything under <repo>-<version>/.
    sh('tar', ['xzf', file, '-C', dir, '--strip-components=1']);
  }
  const digest = treeDigest(dir);
  if (digest !== ext.treeDigest) {
    throw new Error(`${ext.name} ${ext.tag} source does not match its pinned digest (got ${digest}, want ${ext.treeDigest})`);
  }
  return dir;
}

function missingPackages(pkgs: string[]): string[] {
  return pkgs.filter((p) => spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' }).stdout !== 'install ok installed');
}

/**
 * Builds and installs every extension whose installed version is not the pinned one. As root
 * it installs the build packages with apt and writes into Postgres' directories; otherwise it
 * prints the exact commands and fails.
 */
export async function ensureExtensions(): Promise<void> {
  const todo = EXTENSIONS.filter((e) => !installed(e));
  if (todo.length === 0) return;
  const isRoot = process.getuid?.() === 0;
  const pkgs = missingPackages([...BASE_BUILD_PACKAGES, ...todo.flatMap((e) => e.buildPackages)]);
  if (!isRoot) {
    const steps = [
      ...(pkgs.length ? [`sudo apt-get install -y ${pkgs.join(' ')}`] : []),
      ...todo.map((e) => `make -C <${e.name} ${e.tag} source> PG_CONFIG=${PG_CONFIG} && sudo make -C <same> install PG_CONFIG=${PG_CONFIG}`),
    ];
    throw new Error(`Postgres extensions missing: ${todo.map((e) => `${e.name} ${e.tag}`).join(', ')}. As root, npm start builds them; or run:\n  ${steps.join('\n  ')}`);
  }
  if (pkgs.length) {
    console.log(`Installing build packages: ${pkgs.join(' ')} ...`);
    sh('sh', ['-c', `apt-get update -qq && apt-get install -y -qq ${pkgs.join(' ')}`]);
  }
  for (const ext of todo) {
    const t0 = Date.now();
    const dir = await unpackSource(ext);
    sh('make', ['-s', `PG_CONFIG=${PG_CONFIG}`], dir);
    sh('make', ['-s', 'install', `PG_CONFIG=${PG_CONFIG}`], dir);
    if (!installed(ext)) throw new Error(`${ext.name} ${ext.tag} was built but is not installed where ${PG_CONFIG} looks`);
    console.log(`Built and installed ${ext.name} ${ext.tag} in ${((Date.now() - t0) / 1000).toFixed(1)} s.`);
  }
}
