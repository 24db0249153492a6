// `npm run db:reset` rebuilds the database from nothing, twice in a row, and the running
// services (the functions runtime; pg_net's worker lives in Postgres) carry on against the new database.
import { execFileSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { migrationFiles } from '../../local/migrate.ts';
import { ROOT } from '../../local/config.ts';
import { db, eventually } from '../helpers/stack.ts';
import { createUser } from '../helpers/users.ts';

function dbReset(): string {
  return execFileSync('npx', ['tsx', 'local/cli.ts', 'db-reset'], { cwd: ROOT, encoding: 'utf8', stdio: 'pipe' });
}

it('migrations apply to an empty database twice in a row, and the stack keeps working', async () => {
  const expected = migrationFiles().map((m) => m.version);
  expect(expected.length, 'there are migrations to apply').toBeGreaterThan(0);
  for (const round of [1, 2]) {
    // Something the reset must wipe: a table no migration creates.
    const before = db(1);
    await before`create table if not exists public.reset_marker (round int)`;
    await before.end();
    const out = dbReset();
    expect(out, `round ${round}: reset reports the rebuild`).toMatch(/rebuilt from scratch/);
    const sql = db(1);
    try {
      const rows = await sql<{ version: string }[]>`select version from supabase_migrations.schema_migrations order by version`;
      expect(rows.map((r) => r.version), `round ${round}: every migration recorded, in order`).toEqual(expected);
      const [{ users }] = await sql`select count(*)::int as users from auth.users where email like 'test-%'`;
      const [{ markers }] = await sql`select count(*)::int as markers from pg_tables where tablename = 'reset_marker'`;
      expect(markers, `round ${round}: nothing from before the reset survives`).toBe(0);
      expect(users, `round ${round}: users made by tests are gone`).toBe(0);
      const secrets = await sql`select name from vault.decrypted_secrets order by name`;
      expect(secrets.map((s) => s.name), `round ${round}: dispatch secrets in Vault`).toEqual(['narrative_service_secret', 'project_url']);
      const [{ plain }] = await sql`select count(*)::int as plain from vault.secrets s
        join vault.decrypted_secrets d using (id) where s.secret = d.decrypted_secret`;
      expect(plain, `round ${round}: Vault stores the secrets encrypted`).toBe(0);
      const exts = await sql`select extname from pg_extension where extname in ('pg_net', 'pg_cron', 'supabase_vault') order by 1`;
      expect(exts.map((e) => e.extname), `round ${round}: extensions`).toEqual(['pg_cron', 'pg_net', 'supabase_vault']);
    } finally {
      await sql.end();
    }
  }
  // The runtime reconnects to the rebuilt database on their own.
  const user = await eventually('auth to work against the new database', () => createUser().catch(() => null), 20_000, 200);
  const health = await eventually('the health function to answer', async () => {
    const { data } = await user.client.functions.invoke('health', { method: 'GET' });
    return data;
  }, 20_000, 200);
  expect(health.user_id, 'functions run against the new database').toBe(user.id);
}, 120_000);
