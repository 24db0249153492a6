// npm run bundle-size [-- --json FILE]: how big each function is when deployed, measured the way
// the deploy bundler builds it, against Supabase's limits (20 MB bundled by the CLI with Docker,
// 5 MB bundled server-side: `functions deploy --use-api`, or any machine without Docker).
//
// What deploy ships is an eszip: the function's own modules plus, for npm dependencies, every
// file of every package in the resolved npm snapshot (supabase/edge-runtime,
// crates/deno_facade/eszip/vfs.rs, build_npm_vfs: add_dir_recursive of each package folder),
// which the CLI uploads brotli-compressed (supabase/cli, pkg/function/bundle.go, Compress; its
// "script size" is that body). So: resolve the import map fresh, as deploy does (no node_modules,
// the edge runtime's Deno, a Deno cache of our own under .local/), take each function's module
// graph (`deno info --json`), add up its local modules and its npm packages' folders, and
// compress the lot at the CLI's brotli level (andybalholm/brotli's default, quality 6).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { machineInfo, type MachineInfo } from './machine.ts';

export const LIMIT_CLI_BYTES = 20 * 1024 * 1024;
export const LIMIT_SERVER_BYTES = 5 * 1024 * 1024;

export interface BundleSize {
  name: string;
  localBytes: number;
  npmPackages: number;
  npmBytes: number;
  compressedBytes: number;
  /** The biggest npm packages of its snapshot (name@version, bytes as shipped), largest first. */
  largestPackages: { name: string; bytes: number }[];
}

const root = path.resolve(import.meta.dirname, '..');
const deno = ['node_modules/deno-edge/deno', 'node_modules/deno/deno'].map((p) => path.join(root, p)).find((p) => fs.existsSync(p));

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** Names of the deployable functions: supabase/functions/<name>/index.ts, not _shared. */
export function functionNames(): string[] {
  const dir = path.join(root, 'supabase/functions');
  return fs.readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('_') && fs.existsSync(path.join(dir, e.name, 'index.ts')))
    .map((e) => e.name).sort();
}

interface DenoInfo {
  modules: { specifier: string; size?: number; local?: string }[];
  npmPackages?: Record<string, unknown>;
}

/** Each function's deployed size. Deno downloads the npm packages once into `cacheDir`. */
export function measureBundles(cacheDir = path.join(root, '.local/deploy-bundle')): BundleSize[] {
  if (!deno) throw new Error('no Deno binary in node_modules (npm ci installs one)');
  fs.mkdirSync(cacheDir, { recursive: true });
  const config = path.join(cacheDir, 'deno.json');
  fs.writeFileSync(config, JSON.stringify({ importMap: path.join(root, 'supabase/functions/import_map.json'), lock: false }));
  const denoDir = path.join(cacheDir, 'deno');
  const registry = path.join(denoDir, 'npm/registry.npmjs.org');
  return functionNames().map((name) => {
    const info = JSON.parse(execFileSync(deno, ['info', '--json', '--config', config, path.join(root, 'supabase/functions', name, 'index.ts')], {
      cwd: cacheDir, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DENO_DIR: denoDir, DENO_NO_UPDATE_CHECK: '1', DENO_CERT: process.env.DENO_CERT ?? '/etc/ssl/certs/ca-certificates.crt', NO_COLOR: '1' },
    })) as DenoInfo;
    const contents: Buffer[] = [];
    let localBytes = 0;
    for (const m of info.modules) {
      if (!m.specifier.startsWith('file:') || m.size === undefined) continue;
      localBytes += m.size;
      contents.push(fs.readFileSync(new URL(m.specifier)));
    }
    let npmBytes = 0;
    const ids = Object.keys(info.npmPackages ?? {});
    const packages: { name: string; bytes: number }[] = [];
    for (const id of ids) {
      const at = id.lastIndexOf('@');
      const version = id.slice(at + 1).split('_')[0];
      const folder = path.join(registry, id.slice(0, at), version);
      let bytesOf = 0;
      for (const f of filesUnder(folder)) {
        const bytes = fs.readFileSync(f);
        bytesOf += bytes.byteLength;
        contents.push(bytes);
      }
      npmBytes += bytesOf;
      packages.push({ name: `${id.slice(0, at)}@${version}`, bytes: bytesOf });
    }
    const compressed = zlib.brotliCompressSync(Buffer.concat(contents), {
      params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 6, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: localBytes + npmBytes },
    });
    const largestPackages = packages.sort((a, b) => b.bytes - a.bytes).slice(0, 6);
    return { name, localBytes, npmPackages: ids.length, npmBytes, compressedBytes: compressed.byteLength, largestPackages };
  });
}

const mb = (n: number) => (n / 1024 / 1024).toFixed(2);

export function bundleTable(rows: BundleSize[]): string {
  const lines = [
    '| function | npm packages | own modules MB | npm packages MB | eszip content MB | brotli (uploaded) MB | ≤ 20 MB (CLI bundle) | ≤ 5 MB (server-side bundle) |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of rows) {
    const raw = r.localBytes + r.npmBytes;
    lines.push(`| ${r.name} | ${r.npmPackages} | ${mb(r.localBytes)} | ${mb(r.npmBytes)} | ${mb(raw)} | ${mb(r.compressedBytes)} | `
      + `${r.compressedBytes <= LIMIT_CLI_BYTES ? 'yes' : 'NO'} | ${r.compressedBytes <= LIMIT_SERVER_BYTES ? 'yes' : 'NO'} |`);
  }
  return lines.join('\n');
}

/** What `--json FILE` writes (docs/figures/bundle-size.json, rendered into docs/deploy.md). */
export interface BundleReport { command: string; measured_at: string; machine: MachineInfo; deno: string; functions: BundleSize[] }

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const rows = measureBundles();
  console.log(bundleTable(rows));
  const json = process.argv.indexOf('--json');
  if (json > 0) {
    const version = execFileSync(deno!, ['--version'], { encoding: 'utf8' }).split('\n')[0];
    const report: BundleReport = { command: 'npm run bundle-size', measured_at: new Date().toISOString(), machine: machineInfo(), deno: version, functions: rows };
    fs.writeFileSync(process.argv[json + 1], JSON.stringify(report, null, 2) + '\n');
  }
  process.exit(rows.every((r) => r.compressedBytes <= LIMIT_CLI_BYTES) ? 0 : 1);
}
