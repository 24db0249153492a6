// `npm run typecheck` (and so npm test) runs this with the edge runtime's Deno (2.1.4, see
// local/config.ts): it imports every supabase/functions/<name>/index.ts the way the runtime
// does — Deno.serve captured, a placeholder platform env, nothing served, no database reached
// (postgres.js connects lazily) — and fails when one of them does not load. A type-check alone
// misses what only breaks at load time (an npm package's Node build that this Deno's Node
// compatibility cannot run).
const placeholders: Record<string, string> = {
  SUPABASE_URL: 'http://127.0.0.1:54321',
  SUPABASE_DB_URL: 'postgresql://postgres:postgres@127.0.0.1:54322/postgres',
  SUPABASE_ANON_KEY: 'load-check', SUPABASE_SERVICE_ROLE_KEY: 'load-check',
  SUPABASE_JWKS: '{"keys":[]}', SUPABASE_SECRET_KEYS: '{}', SUPABASE_PUBLISHABLE_KEYS: '{}',
  NARRATIVE_SERVICE_SECRET: 'load-check',
};
for (const [k, v] of Object.entries(placeholders)) if (!Deno.env.get(k)) Deno.env.set(k, v);
// deno-lint-ignore no-explicit-any
(globalThis as any).EdgeRuntime = { waitUntil() {} };

const served = new Set<string>();
let loading = '';
// deno-lint-ignore no-explicit-any
(Deno as any).serve = () => {
  served.add(loading);
  return { finished: new Promise(() => {}), shutdown: () => Promise.resolve(), ref() {}, unref() {} };
};

const dir = new URL('../../supabase/functions/', import.meta.url);
const failed: string[] = [];
for await (const e of Deno.readDir(dir)) {
  if (!e.isDirectory || e.name.startsWith('_') || e.name.startsWith('.')) continue;
  const index = new URL(`${e.name}/index.ts`, dir);
  try { await Deno.stat(index); } catch { continue; }
  loading = e.name;
  try {
    await import(index.href);
    if (!served.has(e.name)) throw new Error('index.ts did not call Deno.serve');
    console.log(`loaded ${e.name}`);
  } catch (err) {
    failed.push(`${e.name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
if (failed.length) {
  console.error(`failed to load under Deno ${Deno.version.deno}:\n  ${failed.join('\n  ')}`);
  Deno.exit(1);
}
console.log(`every function loads under Deno ${Deno.version.deno}`);
Deno.exit(0);
