// The dashboard for `npm start`: built with Vite when dashboard/dist is missing or older than its
// sources, then served by local/dashboard-server.ts on 127.0.0.1:54323.
// The local build points supabase-js at the local API; built for a Supabase project,
// VITE_SUPABASE_URL is the project URL instead.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { API_URL, DASHBOARD_URL, ROOT } from './config.ts';

export const DASHBOARD_DIR = path.join(ROOT, 'dashboard');
export const DASHBOARD_DIST = path.join(DASHBOARD_DIR, 'dist');

// What the bundle is made of, besides dashboard/ itself (minus its output).
const SOURCES = [DASHBOARD_DIR, path.join(ROOT, 'shared'), path.join(ROOT, 'package-lock.json')];
// Records what the last build was made with, so new keys also mean a new build.
const STAMP = path.join(DASHBOARD_DIST, '.build.json');

function newestSource(): number {
  let newest = 0;
  const visit = (p: string) => {
    const st = fs.statSync(p, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isDirectory()) {
      if (p === DASHBOARD_DIST || path.basename(p) === 'node_modules') return;
      for (const entry of fs.readdirSync(p)) visit(path.join(p, entry));
    } else {
      newest = Math.max(newest, st.mtimeMs);
    }
  };
  SOURCES.forEach(visit);
  return newest;
}

function upToDate(env: Record<string, string>): boolean {
  const stamp = fs.statSync(STAMP, { throwIfNoEntry: false });
  if (!stamp || !fs.existsSync(path.join(DASHBOARD_DIST, 'index.html'))) return false;
  if (fs.readFileSync(STAMP, 'utf8') !== JSON.stringify(env)) return false;
  return stamp.mtimeMs >= newestSource();
}

/** Builds dashboard/dist unless it is current; returns whether it built. */
export function buildDashboard(anonKey: string): boolean {
  const env = { VITE_SUPABASE_URL: API_URL, VITE_SUPABASE_ANON_KEY: anonKey };
  if (upToDate(env)) return false;
  console.log('Building the dashboard ...');
  const vite = path.join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  const res = spawnSync(process.execPath, [vite, 'build', '--config', path.join('dashboard', 'vite.config.ts'), '--logLevel', 'warn'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  if (res.status !== 0) {
    throw new Error(`The dashboard build failed (npx vite build --config dashboard/vite.config.ts):\n${res.stdout}${res.stderr}`);
  }
  fs.writeFileSync(STAMP, JSON.stringify(env));
  return true;
}

export async function dashboardUp(): Promise<boolean> {
  const res = await fetch(`${DASHBOARD_URL}/`, { signal: AbortSignal.timeout(1000) });
  return res.ok && (res.headers.get('content-type') ?? '').startsWith('text/html');
}
