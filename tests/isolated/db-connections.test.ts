// Which connection the functions open, and how, follows the URL they are given (db-plan.ts):
// SUPABASE_DB_URL (direct on hosted) gets a small pool and prepared statements;
// NARRATIVE_DB_POOLER_URL (Supavisor's transaction mode) is read first, with no prepared statement
// and no startup parameter but the client's own (Supavisor drops them), the timeouts set inside
// each transaction instead. The pooler URL points here at a TCP relay in front of the real local
// Postgres that forwards every byte unchanged and reads the frontend messages as they pass. Restarts
// the runtime, so it runs alone.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { DB_PORT, HOST, ROOT, RUN_DIR } from '../../local/config.ts';
import { stopService } from '../../local/processes.ts';
import { API_URL } from '../../local/config.ts';
import { db } from '../helpers/stack.ts';
import { createUser } from '../helpers/users.ts';

const sql = db(2);
const WORKERS = Number(process.env.LOCAL_RUNTIME_WORKERS || 0) || os.cpus().length;

function startRuntime(envFile: string) {
  execFileSync('npx', ['tsx', 'local/cli.ts', 'start', '--functions-env', envFile], { cwd: ROOT, stdio: 'pipe' });
}

// The test env plus the pooler URL, written for one test's runtime and removed after the file.
const poolerEnvFile = path.join(RUN_DIR, 'functions.pooler.env');

afterAll(async () => {
  await stopService('runtime');
  startRuntime('tests/functions.env');
  fs.rmSync(poolerEnvFile, { force: true });
  await sql.end({ timeout: 2 });
});

/** What the relay saw the clients send: connections (open at once, at most), startup
 *  parameters, and the statement name of every Parse message ('' = unnamed). */
interface Seen { open: number; maxOpen: number; connections: number; startup: Record<string, string>[]; parseNames: string[]; queries: string[] }

function relay(): Promise<{ port: number; seen: Seen; close: () => void }> {
  const seen: Seen = { open: 0, maxOpen: 0, connections: 0, startup: [], parseNames: [], queries: [] };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    seen.connections++;
    seen.maxOpen = Math.max(seen.maxOpen, ++seen.open);
    const upstream = net.connect(DB_PORT, HOST);
    sockets.add(client).add(upstream);
    let buf = Buffer.alloc(0);
    let started = false;
    client.on('data', (chunk) => {
      upstream.write(chunk);
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (!started) {
          if (buf.length < 8) return;
          const len = buf.readInt32BE(0);
          if (buf.length < len) return;
          const params = buf.subarray(8, len - 1).toString('utf8').split('\0');
          const startup: Record<string, string> = {};
          for (let i = 0; i + 1 < params.length; i += 2) startup[params[i]] = params[i + 1];
          if (buf.readInt32BE(4) === 196608) seen.startup.push(startup); // protocol 3.0 (not a cancel request)
          buf = buf.subarray(len);
          started = true;
          continue;
        }
        if (buf.length < 5) return;
        const len = buf.readInt32BE(1);
        if (buf.length < 1 + len) return;
        const type = String.fromCharCode(buf[0]);
        const body = buf.subarray(5, 1 + len);
        if (type === 'P') {
          const name = body.subarray(0, body.indexOf(0)).toString('utf8');
          const rest = body.subarray(body.indexOf(0) + 1);
          seen.parseNames.push(name);
          seen.queries.push(rest.subarray(0, rest.indexOf(0)).toString('utf8'));
        } else if (type === 'Q') {
          seen.queries.push(body.subarray(0, body.indexOf(0)).toString('utf8'));
        }
        buf = buf.subarray(1 + len);
      }
    });
    upstream.on('data', (chunk) => client.write(chunk));
    const end = () => {
      if (!sockets.delete(client)) return;
      seen.open--;
      client.destroy();
      upstream.destroy();
      sockets.delete(upstream);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  return new Promise((resolve) => server.listen(0, HOST, () => resolve({
    port: (server.address() as net.AddressInfo).port, seen,
    close: () => { for (const s of sockets) s.destroy(); server.close(); },
  })));
}

/** A user with a fresh narrative, then `n` cache hits at once through orchestrate. */
async function hits(n: number): Promise<void> {
  const user = await createUser();
  await sql`insert into public.user_narratives (user_id, narrative_content, generated_at, memories_as_of)
            values (${user.id}, 'A narrative', now(), now())`;
  const res = await Promise.all(Array.from({ length: n }, () => fetch(`${API_URL}/functions/v1/orchestrate`, {
    method: 'POST', headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ user_message: 'hi', is_new_conversation: true }),
  }).then(async (r) => ({ status: r.status, source: ((await r.json()) as { source?: string }).source }))));
  expect(res.every((r) => r.status === 200 && r.source === 'narrative'), `${n} hits answered from the cache`).toBe(true);
}

it('SUPABASE_DB_URL alone: at most 3 connections per worker, and the hit is sent in its prepared form (a parameter, not a literal)', async () => {
  await stopService('runtime');
  startRuntime('tests/functions.env');
  await hits(60);
  const backends = await sql<{ query: string }[]>`
    select query from pg_stat_activity where application_name = 'edge-functions' and backend_type = 'client backend'`;
  expect(backends.length, `connections of ${WORKERS} workers: more than one each under load, at most 3`).toBeGreaterThan(WORKERS);
  expect(backends.length, 'at most 3 per worker').toBeLessThanOrEqual(WORKERS * 3);
  expect(backends.some((b) => b.query === `select private.narrative_hit($1, 'orchestrate') as body`),
    'the hit went as a parameterised statement').toBe(true);
});

it('NARRATIVE_DB_POOLER_URL: every connection goes there, up to 5 per worker, no prepared statement, no timeout at startup', async () => {
  const r = await relay();
  try {
    fs.writeFileSync(poolerEnvFile, `${fs.readFileSync(path.join(ROOT, 'tests/functions.env'), 'utf8')}
NARRATIVE_DB_POOLER_URL=postgresql://postgres:postgres@${HOST}:${r.port}/postgres\n`);
    await stopService('runtime');
    startRuntime(poolerEnvFile);
    await hits(60);
    // A generation too: the queue operations go through the same pool, each transaction with its timeout.
    const [job] = await sql<{ job_id: number }[]>`
      select job_id::int from private.enqueue_job((select id from auth.users order by created_at desc limit 1), 'manual')`;
    await expect.poll(async () => (await sql`select status from narrative_jobs where id = ${job.job_id}`)[0].status,
      { timeout: 15_000, message: 'the job ran through the pooler URL' }).toMatch(/succeeded|failed/);

    const { seen } = r;
    expect(seen.connections, 'the functions connected through the pooler URL').toBeGreaterThan(WORKERS);
    expect(seen.maxOpen, `more than the direct pool under load, at most 5 per worker (${WORKERS} workers)`).toBeGreaterThan(WORKERS * 3);
    expect(seen.maxOpen, 'at most 5 per worker').toBeLessThanOrEqual(WORKERS * 5);
    expect(seen.parseNames.filter((n) => n !== ''), 'no named (prepared) statement was ever parsed').toEqual([]);
    expect(seen.startup.every((s) => !('statement_timeout' in s) && s.user === 'postgres'),
      'no statement_timeout startup parameter (Supavisor drops them)').toBe(true);
    expect(seen.queries.some((q) => /^select private\.narrative_hit\('[0-9a-f-]{36}', 'orchestrate'\) as body$/.test(q)),
      'the hit went as one simple query').toBe(true);
    expect(seen.queries.some((q) => q.includes("set_config('statement_timeout'")), 'timeouts are set inside transactions').toBe(true);
    expect(seen.queries.some((q) => q.includes('private.claim_job')), 'the queue operations used it too').toBe(true);
  } finally {
    r.close();
  }
});
