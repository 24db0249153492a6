// Local-stack layout and ports. Nothing under supabase/ or shared/ may import this folder:
// it only exists to stand in for what `supabase start` runs in containers.
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const STATE_DIR = process.env.LOCAL_STACK_DIR ?? path.join(ROOT, '.local');
export const PGDATA = path.join(STATE_DIR, 'db');
export const RUN_DIR = path.join(STATE_DIR, 'run');
export const LOG_DIR = path.join(STATE_DIR, 'logs');
export const KEYS_FILE = path.join(STATE_DIR, 'keys.json');

export const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';
export const DB_PORT = 54322;
export const API_PORT = 54321;
export const DASHBOARD_PORT = 54323;
export const HOST = '127.0.0.1';
// The fake Gemini (local/fakes/gemini.ts) that tests, chaos and bench runs put in Google's place;
// tests/functions.env points the functions at this port with this key.
export const FAKE_GEMINI_PORT = 54330;
export const FAKE_GEMINI_API_KEY = 'fake-gemini-key';
export const FAKE_GEMINI_URL = `http://${HOST}:${FAKE_GEMINI_PORT}`;
export const DASHBOARD_URL = `http://${HOST}:${DASHBOARD_PORT}`;

// What the functions, the CLI and the tests connect as: `postgres`, NOT a superuser, as on a
// hosted project (its SUPABASE_DB_URL user). The superuser is `supabase_admin`, the platform's
// role: only the bootstrap (local/bootstrap/supabase.sql) uses it.
export const DB_URL = `postgresql://postgres:postgres@${HOST}:${DB_PORT}/postgres`;
export const ADMIN_DB_URL = `postgresql://supabase_admin:postgres@${HOST}:${DB_PORT}/postgres`;
export const API_URL = `http://${HOST}:${API_PORT}`;

export const SUPABASE_DIR = path.join(ROOT, 'supabase');
export const MIGRATIONS_DIR = path.join(SUPABASE_DIR, 'migrations');
export const FUNCTIONS_DIR = path.join(SUPABASE_DIR, 'functions');
export const SEED_FILE = path.join(SUPABASE_DIR, 'seed.sql');

// Deno binaries (npm packages, see package.json):
//  - deno-edge, 2.1.4: the version the Supabase edge runtime embeds; npm test type-checks and
//    loads every function with it (scripts/typecheck.sh and scripts/functions-lock.sh pick it).
//  - deno-runtime, 2.6.8: runs the local functions runtime. The closest release to 2.1 that
//    survives load here: up to 2.5, postgres.js' write path crashes the process under
//    concurrency ("May not write null values to stream"; a node:timers fix in 2.6).
//  - deno (the npm wrapper package, 2.9.6) where those platform packages are not installed
//    (they exist for linux-x64-glibc only), and for tooling.
const denoBin = (pkg: string) => path.join(ROOT, 'node_modules', pkg, 'deno');
export const DENO_RUNTIME = fs.existsSync(denoBin('deno-runtime')) ? denoBin('deno-runtime') : denoBin('deno');
