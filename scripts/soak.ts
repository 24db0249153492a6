// npm run soak: 60 s of mixed traffic at a fixed rate against the running stack — cache hits,
// cache misses, manual regenerations and MCP calls — then checks that every answer was a
// success and that the memory of the stack's processes stayed flat. Loopback only; stops by
// itself; deletes the users it made.
//
//   npm run soak [-- --duration S --rate R --json FILE]
//
// Answers are classified by what they say (scripts/soak-measure.ts): a 429 is "limited", never a
// success — a limited cache hit, miss or MCP call fails the run; Regenerate's 429 is its cooldown
// (a user pressing it again within manual_cooldown_seconds), reported apart; an MCP answer is a
// success only when its JSON-RPC message is a result that is no tool error (HTTP 200 carries
// errors too). Latency is printed as percentiles from 100 samples up, else min / median / max.
// Memory (PSS, so shared pages count once): the runtime's whole process group (every worker) and
// this stack's postmaster with its children, found from the runtime's pid file and the cluster's
// postmaster.pid — not every `postgres` on the machine.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import postgres from 'postgres';
import { API_URL, DB_URL, KEYS_FILE, PGDATA } from '../local/config.ts';
import { type AuthUser, createAuthUser, deleteUsers } from '../local/fakes/users.ts';
import type { LocalKeys } from '../local/keys.ts';
import { pidOf } from '../local/processes.ts';
import { mcpToken } from './mcp-token.ts';
import { machineInfo } from './machine.ts';
import { describeShape, storeShapedNarratives } from './bench/narratives.ts';
import { classify, latencySummary, type LatencySummary, type Outcome, postmasterPid, stackRss, type Traffic } from './soak-measure.ts';

const { values: opts } = parseArgs({
  options: { duration: { type: 'string', default: '60' }, rate: { type: 'string', default: '200' }, json: { type: 'string' } },
});
const DURATION = Number(opts.duration);
const RATE = Number(opts.rate);
const say = (m: string) => console.error(`[soak] ${m}`);
const keys = JSON.parse(fs.readFileSync(KEYS_FILE, 'utf8')) as LocalKeys;
const sql = postgres(DB_URL, { max: 4, onnotice: () => {} });
const tag = `soak-${Date.now()}`;

/** A user with `memories` memories and no narrative (the hit users get theirs from
 *  storeShapedNarratives, shaped like production's). */
async function user(memories: number): Promise<AuthUser> {
  const u = await createAuthUser(keys, { prefix: tag });
  if (memories > 0) {
    await sql`insert into public.memories (user_id, content) select ${u.id}, 'soak memory ' || g || ' about sailing and databases' from generate_series(1, ${memories}) g`;
  }
  return u;
}

/** Memory (kB, PSS) of the stack: the runtime's process group and this cluster's Postgres. */
function rss() {
  const runtime = pidOf('runtime');
  if (!runtime) throw new Error('the functions runtime is not running (npm start)');
  return stackRss(runtime, postmasterPid(PGDATA));
}

interface Load {
  name: string;
  /** What it is allowed to answer besides success: Regenerate's cooldown. */
  limitedExpected: boolean;
  total: number;
  outcomes: Record<Outcome, number>;
  /** Requests that got no answer (socket errors, timeouts): errors too. */
  unanswered: number;
  statuses: Record<string, number>;
  latency: LatencySummary;
}

function load(name: string, traffic: Traffic, rate: number, requests: autocannon.Request[]): Promise<Load> {
  const outcomes: Record<Outcome, number> = { ok: 0, limited: 0, error: 0 };
  const statuses: Record<string, number> = {};
  const classified = requests.map((r) => ({
    ...r,
    onResponse: (status: number, body: string) => {
      outcomes[classify(traffic, status, body)]++;
      statuses[status] = (statuses[status] ?? 0) + 1;
    },
  }));
  return new Promise((resolve, reject) => {
    autocannon({ url: API_URL, connections: 4, overallRate: rate, duration: DURATION, requests: classified }, (err, r) => {
      if (err) return reject(err);
      resolve({
        name, limitedExpected: traffic === 'regenerate', total: r.requests.total, outcomes, unanswered: r.errors + r.timeouts, statuses,
        latency: latencySummary(outcomes.ok + outcomes.limited + outcomes.error, r.latency),
      });
    });
  });
}

async function main(): Promise<number> {
  say('preparing users');
  // Enough users that each sends at most one orchestrate and one MCP request a second, as real
  // users would: well inside the per-user limits (settings.*_requests_per_minute, 120).
  const hits = await Promise.all(Array.from({ length: Math.max(20, Math.ceil(RATE * 0.5)) }, () => user(0)));
  const misses = await Promise.all(Array.from({ length: Math.max(10, Math.ceil(RATE * 0.2)) }, () => user(3)));
  const regen = await Promise.all(Array.from({ length: 10 }, () => user(0)));
  // Hits read, and Regenerate replaces, narratives as production stores them: claims citing the
  // user's memories, a pinned note, some 4–5 KB of text.
  say(describeShape(await storeShapedNarratives(sql, [...hits, ...regen].map((u) => u.id), 'soak')));
  const mcpTokens = await Promise.all(hits.map(mcpToken));
  const json = { 'content-type': 'application/json' };
  const mcpBody = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'jean_memory', arguments: { user_message: 'sailing', is_new_conversation: false } } });
  const samples: ReturnType<typeof rss>[] = [rss()];
  const sampler = setInterval(() => samples.push(rss()), 2000);
  const started = new Date();
  say(`${DURATION} s at ${RATE} req/s: 50 % hits, 20 % misses, 10 % regenerations, 20 % MCP`);
  const results = await Promise.all([
    load('cache hit (orchestrate)', 'orchestrate', RATE * 0.5, hits.map((u) => ({ method: 'POST', path: '/functions/v1/orchestrate', headers: { ...json, authorization: `Bearer ${u.accessToken}` }, body: JSON.stringify({ user_message: 'hi', is_new_conversation: true }) }))),
    load('cache miss (orchestrate, ineligible)', 'orchestrate', RATE * 0.2, misses.map((u) => ({ method: 'POST', path: '/functions/v1/orchestrate', headers: { ...json, authorization: `Bearer ${u.accessToken}` }, body: JSON.stringify({ user_message: 'sailing databases', is_new_conversation: true }) }))),
    load('regenerate (POST narrative)', 'regenerate', RATE * 0.1, regen.map((u) => ({ method: 'POST', path: '/functions/v1/narrative', headers: { authorization: `Bearer ${u.accessToken}` } }))),
    load('MCP tools/call jean_memory', 'mcp', RATE * 0.2, mcpTokens.map((t) => ({ method: 'POST', path: '/functions/v1/mcp', headers: { ...json, accept: 'application/json, text/event-stream', authorization: `Bearer ${t}` }, body: mcpBody }))),
  ]);
  clearInterval(sampler);
  samples.push(rss());
  // The heap grows while V8 warms up and then saws up and down with GC; compare the mean of the
  // middle third of the run with the mean of the last third, so a leak shows as a trend.
  const mean = (xs: typeof samples, k: 'runtime' | 'postgres') => xs.reduce((s, x) => s + x[k], 0) / Math.max(xs.length, 1);
  const third = Math.max(1, Math.floor(samples.length / 3));
  const failures: string[] = [];
  console.log(`\nsoak: ${DURATION} s, ${RATE} req/s target (${new Date().toISOString()})\n`);
  console.log('traffic                               requests      ok  limited  errors  latency ms                      statuses');
  for (const r of results) {
    const errors = r.outcomes.error + r.unanswered;
    console.log(`${r.name.padEnd(38)}${String(r.total).padStart(8)}${String(r.outcomes.ok).padStart(8)}${String(r.outcomes.limited).padStart(9)}`
      + `${String(errors).padStart(8)}  ${r.latency.text.padEnd(32)}${JSON.stringify(r.statuses)}`);
    if (errors > 0) failures.push(`${r.name}: ${errors} errors`);
    if (r.outcomes.limited > 0 && !r.limitedExpected) failures.push(`${r.name}: ${r.outcomes.limited} limited (429)`);
    if (r.outcomes.ok === 0) failures.push(`${r.name}: no success`);
  }
  console.log('(regenerate: 429 is its cooldown, a repeated press within manual_cooldown_seconds; limited anywhere else fails the run)');
  const memory = (['runtime', 'postgres'] as const).map((k) => {
    const warm = mean(samples.slice(third, 2 * third), k);
    const end = mean(samples.slice(2 * third), k);
    return { process: k, processes: samples.at(-1)!.processes[k], warmKb: warm, endKb: end, growth: (end - warm) / Math.max(warm, 1) };
  });
  console.log(`\nprocesses (PSS summed, ${samples.length} samples)       middle third  last third   growth`);
  for (const m of memory) {
    const label = m.process === 'runtime' ? `runtime (${m.processes} processes)` : `postgres (${m.processes} processes)`;
    console.log(`${label.padEnd(40)}${`${(m.warmKb / 1024).toFixed(1)} MB`.padStart(12)}${`${(m.endKb / 1024).toFixed(1)} MB`.padStart(12)}${`${(m.growth * 100).toFixed(1)} %`.padStart(9)}`);
    if (m.growth > 0.25) failures.push(`${m.process}: memory grew ${(m.growth * 100).toFixed(1)} %`);
  }
  console.log(failures.length ? `\nFAIL: ${failures.join('; ')}` : '\nPASS: every answer a success (Regenerate\'s cooldown apart), memory flat (last third within 25 % of the middle third)');
  if (opts.json) {
    fs.writeFileSync(opts.json, JSON.stringify({
      command: 'npm run soak', measured_at: started.toISOString(), machine: machineInfo(), duration_s: DURATION, rate: RATE, traffic: results, memory, failures,
    }, null, 2) + '\n');
  }
  return failures.length ? 1 : 0;
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
