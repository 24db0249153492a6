// npm run soak: 60 s of mixed traffic at a fixed rate against the running stack — cache hits,
// cache misses, manual regenerations and MCP calls — then checks 0 errors and that the memory
// of each process (functions runtime, Postgres with pg_net's background worker) stayed flat. Loopback only;
// stops by itself; deletes the users it made.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import postgres from 'postgres';
import { API_URL, DB_URL, KEYS_FILE, RUN_DIR } from '../local/config.ts';
import { mcpToken } from '../local/fakes/oauth.ts';
import { createAuthUser, deleteUsers } from '../local/fakes/users.ts';
import type { LocalKeys } from '../local/keys.ts';

const { values: opts } = parseArgs({ options: { duration: { type: 'string', default: '60' }, rate: { type: 'string', default: '200' } } });
const DURATION = Number(opts.duration);
const RATE = Number(opts.rate);
const say = (m: string) => console.error(`[soak] ${m}`);
const keys = JSON.parse(fs.readFileSync(KEYS_FILE, 'utf8')) as LocalKeys;
const sql = postgres(DB_URL, { max: 4, onnotice: () => {} });
const tag = `soak-${Date.now()}`;

/** A user with its session token and its token of the demo MCP client (what the mcp function takes). */
async function user(memories: number, narrative: boolean): Promise<{ id: string; token: string; mcpToken: string }> {
  const signedIn = await createAuthUser(keys, { prefix: tag });
  const { id, accessToken: token } = signedIn;
  await sql`insert into public.memories (user_id, content) select ${id}, 'soak memory ' || g || ' about sailing and databases' from generate_series(1, ${memories}) g`;
  if (narrative) {
    await sql`insert into public.user_narratives (user_id, narrative_content, generated_at, memories_as_of, model)
              values (${id}, ${'## Who they are\nA soak-test user.'}, now(), now(), 'soak')`;
  }
  return { id, token, mcpToken: await mcpToken(signedIn, keys.anonKey) };
}

/** Resident memory (kB) of the stack's processes: the runtime and all Postgres processes (pg_net's worker among them). */
function rss(): Record<string, number> {
  const of = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  const pidOf = (name: string) => Number(fs.readFileSync(`${RUN_DIR}/${name}.pid`, 'utf8'));
  const pg = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try { return fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'postgres'; } catch { return false; }
  }).reduce((sum, p) => { try { return sum + of(Number(p)); } catch { return sum; } }, 0);
  return { runtime: of(pidOf('runtime')), postgres: pg };
}

function load(name: string, rate: number, requests: autocannon.Request[], ok: (status: number) => boolean) {
  return new Promise<{ name: string; total: number; errors: number; p95: number; codes: Record<string, number> }>((resolve, reject) => {
    const codes: Record<string, number> = {};
    const inst = autocannon({ url: API_URL, connections: 4, overallRate: rate, duration: DURATION, requests }, (err, r) => {
      if (err) return reject(err);
      const errors = Object.entries(codes).filter(([c]) => !ok(Number(c))).reduce((s, [, n]) => s + n, 0) + r.errors + r.timeouts;
      resolve({ name, total: r.requests.total, errors, p95: r.latency.p97_5 ?? r.latency.p99, codes });
    });
    inst.on('response', (_c: unknown, status: number) => { codes[status] = (codes[status] ?? 0) + 1; });
  });
}

async function main(): Promise<number> {
  say('preparing users');
  // Enough users that each sends at most one orchestrate and one MCP request a second, as real
  // users would: well inside the per-user limits (settings.*_requests_per_minute, 120).
  const hits = await Promise.all(Array.from({ length: Math.max(20, Math.ceil(RATE * 0.5)) }, () => user(6, true)));
  const misses = await Promise.all(Array.from({ length: Math.max(10, Math.ceil(RATE * 0.2)) }, () => user(3, false)));
  const regen = await Promise.all(Array.from({ length: 10 }, () => user(6, true)));
  const json = { 'content-type': 'application/json' };
  const mcpBody = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'jean_memory', arguments: { user_message: 'sailing', is_new_conversation: false } } });
  const rss0: Record<string, number>[] = [];
  const sampler = setInterval(() => rss0.push(rss()), 2000);
  say(`${DURATION} s at ${RATE} req/s: 50 % hits, 20 % misses, 10 % regenerations, 20 % MCP`);
  const results = await Promise.all([
    load('cache hit (orchestrate)', RATE * 0.5, hits.map((u) => ({ method: 'POST', path: '/functions/v1/orchestrate', headers: { ...json, authorization: `Bearer ${u.token}` }, body: JSON.stringify({ user_message: 'hi', is_new_conversation: true }) })), (s) => s === 200),
    load('cache miss (orchestrate, ineligible)', RATE * 0.2, misses.map((u) => ({ method: 'POST', path: '/functions/v1/orchestrate', headers: { ...json, authorization: `Bearer ${u.token}` }, body: JSON.stringify({ user_message: 'sailing databases', is_new_conversation: true }) })), (s) => s === 200),
    load('regenerate (POST narrative)', RATE * 0.1, regen.map((u) => ({ method: 'POST', path: '/functions/v1/narrative', headers: { authorization: `Bearer ${u.token}` } })), (s) => s === 202 || s === 429),
    load('MCP tools/call jean_memory', RATE * 0.2, hits.map((u) => ({ method: 'POST', path: '/functions/v1/mcp', headers: { ...json, accept: 'application/json, text/event-stream', authorization: `Bearer ${u.mcpToken}` }, body: mcpBody })), (s) => s === 200),
  ]);
  clearInterval(sampler);
  // The heap grows while V8 warms up and then saws up and down with GC; compare the mean of the
  // middle third of the run with the mean of the last third, so a leak shows as a trend.
  const mean = (xs: Record<string, number>[]) => Object.fromEntries(Object.keys(xs[0]).map((k) => [k, xs.reduce((s, x) => s + x[k], 0) / xs.length]));
  const third = Math.max(1, Math.floor(rss0.length / 3));
  const warm = mean(rss0.slice(third, 2 * third));
  const end = mean(rss0.slice(2 * third));
  let failed = false;
  console.log(`\nsoak: ${DURATION} s, ${RATE} req/s target\n`);
  console.log('traffic                               requests  errors  p97.5 ms  statuses');
  for (const r of results) {
    console.log(`${r.name.padEnd(38)}${String(r.total).padStart(8)}${String(r.errors).padStart(8)}${String(r.p95).padStart(10)}  ${JSON.stringify(r.codes)}`);
    if (r.errors > 0) failed = true;
  }
  console.log('\nprocess         RSS, middle third  last third   growth');
  for (const k of Object.keys(end)) {
    const growth = (end[k] - warm[k]) / Math.max(warm[k], 1);
    console.log(`${k.padEnd(16)}${`${(warm[k] / 1024).toFixed(1)} MB`.padStart(17)}${`${(end[k] / 1024).toFixed(1)} MB`.padStart(12)}${`${(growth * 100).toFixed(1)} %`.padStart(9)}`);
    if (growth > 0.25) failed = true;
  }
  console.log(failed ? '\nFAIL: errors or memory growth over 25 %' : '\nPASS: 0 errors, memory flat (last third within 25 % of the middle third)');
  return failed ? 1 : 0;
}

main().then(async (code) => {
  await deleteUsers(sql, tag);
  await sql.end();
  process.exit(code);
}, async (err) => {
  console.error(err);
  await deleteUsers(sql, tag).catch(() => 0);
  process.exit(2);
});
