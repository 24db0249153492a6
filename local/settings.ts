// Operator settings (private.settings) changed for a while by a test, the bench or chaos, and put
// back as they were however the caller ends (the returned restore is idempotent).
import type postgres from 'postgres';
import type { Sql } from 'postgres';

/** Column values; an object is a jsonb column's value (model_prices), sent as JSON. */
export type SettingsPatch = Record<string, number | string | boolean | null | postgres.JSONValue>;

/** Sets `patch` on private.settings; resolves with a restore that puts those columns back. */
export async function overrideSettings(sql: Sql, patch: SettingsPatch): Promise<() => Promise<void>> {
  const columns = Object.keys(patch);
  const [saved] = await sql<SettingsPatch[]>`select ${sql(columns)} from private.settings`;
  await sql`update private.settings set ${sql(patch, columns)}`;
  let restored = false;
  return async () => {
    if (restored) return;
    restored = true;
    await sql`update private.settings set ${sql(saved, columns)}`;
  };
}
