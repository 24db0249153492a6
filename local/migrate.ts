// Applies what `supabase start` / `supabase db reset` apply: the platform bootstrap (local
// stand-in only), supabase/migrations in order (recorded in
// supabase_migrations.schema_migrations like the CLI does), the seed, and the Vault secrets
// the dispatch trigger reads.
import fs from 'node:fs';
import path from 'node:path';
import type { Sql } from 'postgres';
import { API_URL, MIGRATIONS_DIR, ROOT, SEED_FILE } from './config.ts';
import type { LocalKeys } from './keys.ts';

export async function bootstrap(sql: Sql): Promise<void> {
  await sql.unsafe(fs.readFileSync(path.join(ROOT, 'local', 'bootstrap', 'supabase.sql'), 'utf8'));
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

/** Applies pending migrations, each in its own transaction; returns the versions applied. */
export async function migrate(sql: Sql): Promise<string[]> {
  const applied = new Set((await sql<{ version: string }[]>`
    select version from supabase_migrations.schema_migrations`).map((r) => r.version));
  const done: string[] = [];
  for (const m of migrationFiles()) {
    if (applied.has(m.version)) continue;
    const text = fs.readFileSync(m.file, 'utf8');
    try {
      await sql.begin(async (tx) => {
        await tx.unsafe(text);
        await tx`insert into supabase_migrations.schema_migrations (version, name, statements)
                 values (${m.version}, ${m.name}, ${[text]})`;
      });
    } catch (err) {
      throw new Error(`migration ${path.basename(m.file)} failed: ${(err as Error).message}`);
    }
    done.push(m.version);
  }
  return done;
}

export async function seed(sql: Sql): Promise<void> {
  if (fs.existsSync(SEED_FILE)) await sql.unsafe(fs.readFileSync(SEED_FILE, 'utf8'));
}

/** The two secrets the dispatch trigger reads; on Supabase you create them once (README). */
export async function ensureVaultSecrets(sql: Sql, keys: LocalKeys): Promise<void> {
  const secrets: Record<string, string> = {
    project_url: API_URL,
    narrative_service_secret: keys.narrativeServiceSecret,
  };
  for (const [name, value] of Object.entries(secrets)) {
    const [row] = await sql<{ id: string }[]>`select id from vault.decrypted_secrets where name = ${name}`;
    if (row) await sql`select vault.update_secret(${row.id}::uuid, ${value})`;
    else await sql`select vault.create_secret(${value}, ${name})`;
  }
}
