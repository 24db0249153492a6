// pg_net 0.19.5 (the real extension, as hosted Supabase runs it) doing what the dispatch path
// relies on: real Postgres, its pg_net background worker and a local HTTP server that records
// what arrives. Other test files share the database and the worker, so every request here
// carries its own marker.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { db, eventually } from './helpers/stack.ts';

/** `at`: arrival order; `answered`: when the answer went out, on the same counter. */
interface Seen { method: string; url: string; headers: http.IncomingHttpHeaders; body: string; at: number; answered?: number }
let events = 0;
interface ResponseRow {
  status_code: number | null; content_type: string | null; headers: Record<string, string> | null;
  content: string | null; timed_out: boolean | null; error_msg: string | null;
}

const sql = db();
const seen = new Map<string, Seen[]>(); // marker (last path segment) -> requests that arrived
let base = '';
let server: http.Server;

// /echo/<marker>: 200 + JSON echo; /status/<code>/<marker>; /sleep/<ms>/<marker>: answers after ms.
function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const url = new URL(req.url ?? '/', base);
    const parts = url.pathname.split('/').filter(Boolean);
    const marker = parts.at(-1) ?? '';
    const entry: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: ++events };
    seen.set(marker, [...(seen.get(marker) ?? []), entry]);
    const reply = (status: number) => {
      if (res.destroyed) return;
      entry.answered = ++events;
      res.writeHead(status, { 'content-type': 'application/json', 'x-echo': marker });
      res.end(JSON.stringify({ method: entry.method, marker }));
    };
    if (parts[0] === 'sleep') setTimeout(() => reply(200), Number(parts[1]));
    else reply(parts[0] === 'status' ? Number(parts[1]) : 200);
  });
}

const arrived = (marker: string) => eventually(`request ${marker} to reach the test server`, async () => seen.get(marker)?.[0]);

async function response(id: string): Promise<ResponseRow | undefined> {
  const [row] = await sql<ResponseRow[]>`
    select status_code, content_type, headers, content, timed_out, error_msg from net._http_response where id = ${id}`;
  return row;
}
const recorded = (id: string, what: string) => eventually(`net._http_response row for ${what} (request ${id})`, () => response(id));

/** Enqueues in its own committed transaction and returns the request id. */
async function enqueue(call: (tx: postgres.TransactionSql) => postgres.PendingQuery<postgres.Row[]>): Promise<string> {
  const [{ id }] = await sql.begin(call);
  return String(id);
}

beforeAll(async () => {
  server = http.createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  await sql`select net.check_worker_is_up()`;
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await sql.end();
});

describe('pg_net background worker', () => {
  it('delivers net.http_post from a committed transaction and records the response', async () => {
    const marker = randomUUID();
    const id = await enqueue((tx) => tx`select net.http_post(
      url := ${`${base}/echo/${marker}`},
      body := ${tx.json({ hello: 'wörld', n: 1 })},
      params := ${tx.json({ q: 'a b&c', lang: 'ü' })},
      headers := ${tx.json({ 'Content-Type': 'application/json', 'X-Custom': 'v1' })}
    ) as id`);

    const req = await arrived(marker);
    expect(req.method, 'method').toBe('POST');
    expect(JSON.parse(req.body), 'JSON body').toEqual({ hello: 'wörld', n: 1 });
    expect(req.headers['x-custom'], 'custom header').toBe('v1');
    expect(req.headers['content-type'], 'content-type header').toBe('application/json');
    expect(new URL(req.url, base).search, 'params encoded into the query string').toBe('?q=a%20b%26c&lang=%c3%bc');

    const row = await recorded(id, 'the POST');
    expect(row.error_msg, 'no error').toBeNull();
    expect(row.timed_out, 'not timed out').toBe(false);
    expect(row.status_code, 'status').toBe(200);
    expect(row.content_type, 'content_type').toBe('application/json');
    expect(JSON.parse(row.content ?? ''), 'content').toEqual({ method: 'POST', marker });
    expect(row.headers?.['x-echo'], 'response headers recorded').toBe(marker);
  });

  it('never sends a request from a rolled-back transaction', async () => {
    const rolledBack = randomUUID();
    const marker = randomUUID();
    let rolledId = '';
    await sql.begin(async (tx) => {
      [{ id: rolledId }] = await tx<{ id: string }[]>`select net.http_post(${`${base}/echo/${rolledBack}`}) as id`;
      throw new Error('roll back');
    }).catch((err: Error) => expect(err.message).toBe('roll back'));
    expect(rolledId, 'the rolled-back call returned an id').not.toBe('');

    // A later, committed request gets a higher id; once its outcome is recorded the worker has
    // been past the rolled-back one.
    const markerId = await enqueue((tx) => tx`select net.http_get(${`${base}/echo/${marker}`}) as id`);
    await arrived(marker);
    await recorded(markerId, 'the committed marker');
    expect(seen.get(rolledBack), 'the rolled-back request reached the server').toBeUndefined();
    expect(await response(rolledId), 'a response row for the rolled-back request').toBeUndefined();
  });

  it('records a transport error for a dead port and keeps delivering afterwards', async () => {
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const deadPort = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));

    const deadId = await enqueue((tx) => tx`select net.http_get(${`http://127.0.0.1:${deadPort}/nothing-here`}) as id`);
    const row = await recorded(deadId, 'the dead-port request');
    expect(row.status_code, 'status of a transport error').toBeNull();
    expect(row.timed_out, 'pg_net leaves timed_out null on transport errors').toBeNull();
    expect(row.error_msg, 'error_msg').toMatch(/^Couldn't connect to server/);

    const marker = randomUUID();
    const nextId = await enqueue((tx) => tx`select net.http_get(${`${base}/echo/${marker}`}) as id`);
    await arrived(marker);
    expect((await recorded(nextId, 'the request after the failure')).status_code, 'status after a failure').toBe(200);
  });

  it('records a non-2xx status as a response, not an error', async () => {
    const marker = randomUUID();
    const id = await enqueue((tx) => tx`select net.http_get(${`${base}/status/503/${marker}`}) as id`);
    const row = await recorded(id, 'the 503');
    expect(row.status_code, 'status').toBe(503);
    expect(row.error_msg, 'error_msg of an HTTP error status').toBeNull();
  });

  it('records timed_out when the server is slower than timeout_milliseconds', async () => {
    const marker = randomUUID();
    const id = await enqueue((tx) => tx`select net.http_get(${`${base}/sleep/3000/${marker}`}, timeout_milliseconds := 300) as id`);
    const row = await recorded(id, 'the timed-out request');
    // pg_net 0.19 no longer sets timed_out; the timeout is in error_msg (what the sweeper reads).
    expect(row.timed_out, 'timed_out (unset by pg_net 0.19)').toBeNull();
    expect(row.status_code, 'status of a timeout').toBeNull();
    expect(row.error_msg, 'error_msg').toMatch(/^Timeout of 300 ms reached/);
  });

  // Upstream's batch semantics (src/worker.c): the worker takes up to pg_net.batch_size requests
  // and takes the next batch only when all of them have finished. This is why generate-narrative
  // answers 202 at once instead of after the LLM call.
  it('holds a request committed after a slow one until the slow one has finished', async () => {
    const slow = randomUUID();
    const fast = randomUUID();
    const slowId = await enqueue((tx) => tx`select net.http_get(${`${base}/sleep/1500/${slow}`}) as id`);
    await arrived(slow); // the slow one has been taken and is in flight
    const fastId = await enqueue((tx) => tx`select net.http_get(${`${base}/echo/${fast}`}) as id`);
    await recorded(fastId, 'the fast request');
    const slowSeen = seen.get(slow)![0];
    const fastSeen = seen.get(fast)![0];
    expect(slowSeen.answered, 'the slow one was answered').toBeDefined();
    expect(fastSeen.at, 'the fast request arrived only after the slow one was answered').toBeGreaterThan(slowSeen.answered!);
    expect((await recorded(slowId, 'the slow request')).status_code, 'slow status').toBe(200);
  });

  it('supports http_get and http_delete with their defaults', async () => {
    const g = randomUUID();
    const d = randomUUID();
    const getId = await enqueue((tx) => tx`select net.http_get(${`${base}/echo/${g}`}) as id`);
    const delId = await enqueue((tx) => tx`select net.http_delete(${`${base}/echo/${d}`}) as id`);

    const get = await arrived(g);
    expect(get.method, 'GET method').toBe('GET');
    expect(get.body, 'GET body').toBe('');
    expect(new URL(get.url, base).search, 'no query string without params').toBe('');
    const del = await arrived(d);
    expect(del.method, 'DELETE method').toBe('DELETE');
    expect(del.body, 'DELETE body (default null)').toBe('');

    expect(JSON.parse((await recorded(getId, 'the GET')).content ?? ''), 'GET content').toEqual({ method: 'GET', marker: g });
    expect(JSON.parse((await recorded(delId, 'the DELETE')).content ?? ''), 'DELETE content').toEqual({ method: 'DELETE', marker: d });
  });
});
