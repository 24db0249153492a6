// Applies what `supabase start` / `supabase db reset` apply: the platform bootstrap (local
// stand-in only, as the superuser), then, as the non-superuser `postgres`, supabase/migrations
// with the real Supabase CLI (`supabase migration up`: its own ordering and its own history
// table, supabase_migrations.schema_migrations), the seed, and the Vault secrets the dispatch
// trigger reads.
import fs from 'node:fs';
import path from 'node:path';
import type { Sql } from 'postgres';
import { API_URL, DB_URL, MIGRATIONS_DIR, ROOT, SEED_FILE } from './config.ts';
import type { LocalKeys } from './keys.ts';
import { supabaseCli } from './supabase-cli.ts';

/** The platform's part, as supabase_admin (what hosted has done before the first migration). */
export async function bootstrap(admin: Sql): Promise<void> {
  await admin.unsafe(fs.readFileSync(path.join(ROOT, 'local', 'bootstrap', 'supabase.sql'), 'utf8'));
}

export function migrationFiles(): { version: string; name: string; file: string }[] {
  if (!fs.existsSync(MIGRATIONS_DIR)) return [];
  return fs.readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d+_.+\.sql$/.test(f))
    .sort()
    .map((f) => {
      const [, version, name] = /^(\d+)_(.+)\.sql$/.exec(f)!;
      return { version, name, file: path.join(MIGRATIONS_DIR, f) };
    });
}

/** `supabase migration up --remote=<DB_URL>` as postgres; returns the versions it applied. */
export function migrate(): string[] {
  const out = supabaseCli(['migration', 'up', `--remote=${DB_URL}`, '--yes']);
  return [...out.matchAll(/Applying migration (\d+)_\S+\.sql/g)].map((m) => m[1]);
}

/** supabase/seed.sql, as postgres (hosted: the SQL editor or `db push --include-seed`). */
export async function seed(owner: Sql): Promise<void> {
  if (fs.existsSync(SEED_FILE)) await owner.unsafe(fs.readFileSync(SEED_FILE, 'utf8'));
}

/** The two secrets the dispatch trigger reads; on Supabase you create them once (docs/deploy.md "Vault secrets"). */
export async function ensureVaultSecrets(owner: Sql, keys: LocalKeys): Promise<void> {
  const secrets: Record<string, string> = {
    project_url: API_URL,
    narrative_service_secret: keys.narrativeServiceSecret,
  };
  for (const [name, value] of Object.entries(secrets)) {
    const [row] = await owner<{ id: string }[]>`select id from vault.decrypted_secrets where name = ${name}`;
    if (row) await owner`select vault.update_secret(${row.id}::uuid, ${value})`;
    else await owner`select vault.create_secret(${value}, ${name})`;
  }
}
