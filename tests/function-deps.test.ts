// What deploys is what runs here: `supabase functions deploy` resolves the import map with no
// lockfile of ours, so every version in it is exact; supabase/functions/deno.lock (npm run
// functions:lock) records that resolution, and the packages the local runtime loads from
// node_modules are the same releases, byte for byte (integrity). The local Deno is the edge
// runtime's.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type BundleReport, LIMIT_CLI_BYTES, measureBundles } from '../scripts/bundle-size.ts';
import { API_URL } from '../local/config.ts';

const EDGE_RUNTIME_DENO = '2.1.4'; // supabase/edge-runtime: .env DENO_VERSION, deno/Cargo.toml

const importMap = JSON.parse(fs.readFileSync('supabase/functions/import_map.json', 'utf8')) as { imports: Record<string, string> };
const denoLock = JSON.parse(fs.readFileSync('supabase/functions/deno.lock', 'utf8')) as {
  specifiers: Record<string, string>; npm: Record<string, { integrity: string }>;
};
const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8')) as { dependencies: Record<string, string> };
const npmLock = JSON.parse(fs.readFileSync('package-lock.json', 'utf8')) as {
  packages: Record<string, { version: string; integrity?: string }>;
};

const pinned = Object.entries(importMap.imports).map(([alias, target]) => {
  const m = /^npm:((?:@[^/]+\/)?[^@/]+)@([^/]+)(\/.*)?$/.exec(target);
  return { alias, target, name: m?.[1], version: m?.[2] };
});

describe('function dependencies', () => {
  it.each(pinned)('$alias is pinned to an exact version, locked, and the same release as node_modules', ({ target, name, version }) => {
    expect(name, `${target} is an npm: specifier`).toBeTruthy();
    expect(version, `${target} names an exact version`).toMatch(/^\d+\.\d+\.\d+$/);
    expect(denoLock.specifiers[`npm:${name}@${version}`], `deno.lock resolves ${name}@${version} (run npm run functions:lock)`).toBe(version);
    const locked = denoLock.npm[`${name}@${version}`];
    expect(locked?.integrity, `deno.lock has ${name}@${version}'s integrity`).toBeTruthy();
    expect(pkg.dependencies[name!], `package.json pins ${name} to the same version`).toBe(version);
    const installed = npmLock.packages[`node_modules/${name}`];
    expect(installed?.version, `package-lock.json installs ${name}@${version}`).toBe(version);
    expect(installed?.integrity, `node_modules' ${name} is the tarball deploy resolves`).toBe(locked.integrity);
  });

  it('the edge runtime\'s Deno is installed to type-check and load the functions', () => {
    expect(npmLock.packages['node_modules/deno-edge']?.version, 'deno-edge (scripts/typecheck.sh)').toBe(EDGE_RUNTIME_DENO);
  });
});

// Under the edge runtime's Deno 2.1.4, local/runtime/load-check.ts (scripts/typecheck.sh) loads
// every function; this checks the running local runtime loaded them all too.
describe('every function loads in the local runtime', () => {
  const names = fs.readdirSync('supabase/functions', { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('_') && fs.existsSync(`supabase/functions/${e.name}/index.ts`))
    .map((e) => e.name);
  it.each(names)('%s is loaded and answers', async (name) => {
    // A preflight: every function answers CORS first; a function that failed to load is 503.
    const res = await fetch(`${API_URL}/functions/v1/${name}`, {
      method: 'OPTIONS', headers: { origin: 'http://localhost', 'access-control-request-method': 'POST' },
    });
    await res.body?.cancel();
    expect(res.status, `${name}: not 503 (failed to start) or 404 (not found)`).toBeLessThan(300);
  });
});

// What deploy uploads stays under Supabase's 20 MB function limit (scripts/bundle-size.ts: the
// bundler's eszip content, brotli-compressed as the CLI sends it; docs/deploy.md "Bundle size"),
// and is what docs/figures/bundle-size.json says (the table docs/deploy.md renders), within 2 %
// or 0.05 MB: deploy resolves npm versions fresh, and some float (@types/node).
const sizes = measureBundles();
describe('every function fits the deploy size limit', () => {
  it.each(sizes)('$name: the uploaded bundle is at most 20 MB', (s) => {
    expect(s.localBytes, `${s.name}: its own modules were measured`).toBeGreaterThan(1000);
    expect(s.npmPackages, `${s.name}: its npm snapshot was resolved (postgres, jose, zod at least)`).toBeGreaterThanOrEqual(3);
    expect(s.compressedBytes, `${s.name}: ${(s.compressedBytes / 1048576).toFixed(2)} MB uploaded`).toBeLessThanOrEqual(LIMIT_CLI_BYTES);
  });
});

describe('the deploy sizes docs/deploy.md shows are this code\'s', () => {
  const committed = JSON.parse(fs.readFileSync('docs/figures/bundle-size.json', 'utf8')) as BundleReport;
  const again = 'measure again: npm run bundle-size -- --json docs/figures/bundle-size.json && npm run docs:figures';
  it('the same functions', () => {
    expect(sizes.map((s) => s.name), again).toEqual(committed.functions.map((s) => s.name));
  });
  it.each(sizes)('$name: the same npm packages, sizes within 2 % or 0.05 MB', (s) => {
    const was = committed.functions.find((c) => c.name === s.name)!;
    const near = (now: number, then: number, what: string) =>
      expect(Math.abs(now - then), `${s.name}: ${what} ${(now / 1048576).toFixed(2)} MB, committed ${(then / 1048576).toFixed(2)} MB (${again})`)
        .toBeLessThanOrEqual(Math.max(0.02 * then, 0.05 * 1048576));
    expect(s.npmPackages, `${s.name}: npm packages in its snapshot (${again})`).toBe(was.npmPackages);
    near(s.localBytes + s.npmBytes, was.localBytes + was.npmBytes, 'eszip content');
    near(s.compressedBytes, was.compressedBytes, 'uploaded');
  });
});
