// Stand-in for pg_net's background worker (see pg_net--0.19.5.sql): takes committed requests
// from net.http_request_queue, sends them with fetch, records outcomes in net._http_response.
import postgres from 'postgres';

const DB_URL = process.env.PG_NET_DB_URL;
if (!DB_URL) {
  console.error('pg_net worker: PG_NET_DB_URL is not set');
  process.exit(1);
}
const MAX_IN_FLIGHT = Number(process.env.PG_NET_MAX_IN_FLIGHT ?? 200);
if (!Number.isInteger(MAX_IN_FLIGHT) || MAX_IN_FLIGHT < 1) {
  console.error('pg_net worker: PG_NET_MAX_IN_FLIGHT must be a positive integer');
  process.exit(1);
}
const TTL = process.env.PG_NET_TTL ?? '6 hours';
const POLL_MS = 250; // LISTEN is the fast path; polling covers notifications lost while reconnecting
const MAX_BACKOFF_MS = 2000;

interface QueueRow {
  id: string; // int8 comes back as a string
  method: string;
  url: string;
  headers: Record<string, unknown> | null;
  body: Buffer | null;
  timeout_milliseconds: number;
}
type Result = {
  id: string; status_code: number | null; content_type: string | null;
  headers: Record<string, string> | null; content: string | null;
  timed_out: boolean; error_msg: string | null;
};

// Only ever log these fields: headers, bodies and query strings carry secrets.
function log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields }) + '\n');
}

// net.check_worker_is_up() finds us by application_name; the LISTEN connection inherits it.
// postgres.js' default reconnect backoff grows to 20 s per connection during an outage, which
// would stall delivery long after Postgres is back; cap it at 1 s.
const sql = postgres(DB_URL, {
  max: 4, connect_timeout: 5, onnotice: () => {}, connection: { application_name: 'pg_net worker' },
  backoff: (retries) => Math.min(0.05 * 2 ** retries, 1),
});

let inFlight = 0, stopping = false, dbUp = true, backoffMs = POLL_MS;
const results: Result[] = []; // finished but not yet written (kept while the DB is away)

const isConnectionTrouble = (err: unknown) =>
  !(err instanceof postgres.PostgresError) || /^(08|53|57)/.test(err.code);
const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));

function dbFailed(err: unknown): void {
  if (dbUp) log('error', 'db unavailable', { error: errText(err), buffered_results: results.length });
  dbUp = false;
}
function dbWorked(): void {
  if (!dbUp) log('info', 'db available again');
  dbUp = true;
}

function hostPath(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`; // drops user:password, query and fragment
  } catch {
    return '(invalid url)';
  }
}

// Error texts must not echo the request: undici's own messages can quote URLs or header values.
function transportError(err: unknown): string {
  if (!(err instanceof TypeError) || err.message !== 'fetch failed') return 'Invalid request (url, method, header or body)';
  const cause = err.cause;
  const text = cause instanceof AggregateError ? cause.errors.map(errText).join('; ')
    : cause instanceof Error ? cause.message || String((cause as { code?: string }).code) : String(cause);
  return `Couldn't connect to server: ${text}`;
}

async function send(row: QueueRow): Promise<void> {
  const started = performance.now();
  const signal = AbortSignal.timeout(row.timeout_milliseconds);
  let result: Result;
  try {
    new URL(row.url); // fetch's own parse error would quote the url, query string and all
    const headers = Object.fromEntries(Object.entries(row.headers ?? {}).map(([k, v]) => [k, String(v)]));
    // libcurl in pg_net does not follow redirects; a 3xx is recorded as the response.
    const res = await fetch(row.url, { method: row.method.toUpperCase(), headers, body: row.body ? new Uint8Array(row.body) : undefined, signal, redirect: 'manual' });
    const content = (await res.text()).replaceAll('\0', ''); // text columns cannot hold NUL
    result = {
      id: row.id, status_code: res.status, content_type: res.headers.get('content-type'),
      headers: Object.fromEntries(res.headers), content, timed_out: false, error_msg: null,
    };
  } catch (err) {
    const timedOut = signal.aborted;
    const error = timedOut
      ? `Timeout of ${row.timeout_milliseconds} ms reached. Total time: ${(performance.now() - started).toFixed(0)} ms`
      : transportError(err);
    result = { id: row.id, status_code: null, content_type: null, headers: null, content: null, timed_out: timedOut, error_msg: error };
  }
  log(result.error_msg ? 'warn' : 'info', 'http_request', {
    id: Number(row.id), method: row.method, host_path: hostPath(row.url), status: result.status_code,
    duration_ms: Math.round(performance.now() - started), timed_out: result.timed_out, error: result.error_msg,
  });
  results.push(result);
}

async function insert(batch: Result[]): Promise<void> {
  try {
    await sql`insert into net._http_response (id, status_code, content_type, headers, content, timed_out, error_msg)
      select * from jsonb_to_recordset(${sql.json(batch)}::jsonb) as x(id bigint, status_code int,
        content_type text, headers jsonb, content text, timed_out boolean, error_msg text)`;
  } catch (err) {
    if (isConnectionTrouble(err)) throw err;
    // One bad row must not wedge the buffer: retry singly and drop only what Postgres rejects.
    if (batch.length === 1) return log('error', 'dropping response rejected by postgres', { id: Number(batch[0].id), error: errText(err) });
    for (const r of batch) await insert([r]);
  }
}

let flushing = false;
async function flush(): Promise<void> {
  if (flushing) return;
  flushing = true;
  try {
    while (results.length) {
      const batch = results.splice(0, 500);
      try {
        await insert(batch);
        dbWorked();
      } catch (err) {
        results.unshift(...batch);
        return dbFailed(err);
      }
    }
  } finally {
    flushing = false;
  }
}

let claiming = false, claimAgain = false;
async function claim(): Promise<void> {
  if (claiming) { claimAgain = true; return; }
  claiming = true;
  try {
    do {
      claimAgain = false;
      const free = MAX_IN_FLIGHT - inFlight;
      if (stopping || free <= 0) break;
      // Taken = deleted, as in pg_net: a crash mid-request loses it and the app's sweeper retries.
      const rows = await sql<QueueRow[]>`delete from net.http_request_queue where id in (
        select id from net.http_request_queue order by id limit ${free} for update skip locked) returning *`;
      dbWorked();
      for (const row of rows.sort((a, b) => Number(a.id) - Number(b.id))) {
        inFlight++;
        // Not awaited: a 150 s request must not hold up the ones behind it.
        void send(row).finally(() => {
          if (inFlight-- === MAX_IN_FLIGHT) void claim(); // a slot opened while the queue may be backed up
          void flush();
        });
      }
      if (rows.length === free) claimAgain = true;
    } while (claimAgain);
  } catch (err) {
    dbFailed(err);
  } finally {
    claiming = false;
  }
}

async function prune(): Promise<void> {
  try {
    await sql`delete from net._http_response where created < now() - ${TTL}::interval`;
  } catch (err) {
    dbFailed(err);
  }
}

let pollTimer: NodeJS.Timeout | undefined;
async function poll(): Promise<void> {
  await flush();
  await claim();
  backoffMs = dbUp ? POLL_MS : Math.min(backoffMs * 2, MAX_BACKOFF_MS);
  if (!stopping) pollTimer = setTimeout(poll, backoffMs);
}

// postgres.js re-issues LISTEN by itself whenever its connection closes, including when the
// first attempt fails (checked against a restarted cluster), so this is called once: calling it
// again would stack duplicate listeners. onlisten runs after every (re)subscription.
function listen(): void {
  sql.listen('pg_net_wake', () => void claim(), () => { log('info', 'listening on pg_net_wake'); void claim(); })
    .catch(dbFailed);
}

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearTimeout(pollTimer);
  clearInterval(pruneTimer);
  log('info', 'stopping', { signal, in_flight: inFlight });
  const deadline = Date.now() + 5000;
  while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await flush();
  if (inFlight || results.length) log('warn', 'exiting with unfinished requests', { in_flight: inFlight, unwritten: results.length });
  await sql.end({ timeout: 1 }).catch(() => {});
  process.exit(0);
}

process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
// Whatever escapes (e.g. from postgres.js internals) is logged, never fatal.
process.on('unhandledRejection', (err) => log('error', 'unhandled rejection', { error: errText(err) }));

log('info', 'pg_net worker starting', { max_in_flight: MAX_IN_FLIGHT, ttl: TTL, pid: process.pid });
const pruneTimer = setInterval(() => void prune(), 60_000);
listen();
void prune();
void poll();
