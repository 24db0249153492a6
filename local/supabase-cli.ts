// The real Supabase CLI (the npm package @supabase/cli-linux-x64, pinned exactly as an
// optionalDependency: the `supabase` wrapper package cannot be installed with `npm ci`, its
// other platforms' binaries are missing from the registry). The local stack applies migrations
// with it exactly as a hosted project gets them: `supabase migration up` / `db push` against a
// database URL, connecting as the non-superuser `postgres`.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './config.ts';

const PACKAGE = '@supabase/cli-linux-x64';

/** Path of the CLI binary; SUPABASE_CLI overrides it (any other platform: install the CLI). */
export function supabaseCliPath(): string {
  if (process.env.SUPABASE_CLI) return process.env.SUPABASE_CLI;
  const bin = path.join(ROOT, 'node_modules', ...PACKAGE.split('/'), 'bin', 'supabase');
  if (fs.existsSync(bin)) return bin;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`The Supabase CLI is pinned here as ${PACKAGE}, which only runs on linux-x64 (this is ` +
      `${process.platform}-${process.arch}). Install the CLI (https://supabase.com/docs/guides/local-development/cli/getting-started, ` +
      'the version in package.json) and run again with SUPABASE_CLI=<path to the supabase binary>.');
  }
  throw new Error(`The Supabase CLI binary is missing (${bin}). Run npm install (${PACKAGE} is an optionalDependency).`);
}

/** Runs the CLI in the project root (it reads supabase/); throws with its output on failure. */
export function supabaseCli(args: string[]): string {
  const res = spawnSync(supabaseCliPath(), args, {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, SUPABASE_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' },
  });
  if (res.status !== 0) {
    throw new Error(`supabase ${args[0]} ${args[1] ?? ''} failed (${res.status ?? res.signal}):\n${(res.stderr || res.stdout || String(res.error)).trim()}`);
  }
  return `${res.stdout}${res.stderr}`;
}
