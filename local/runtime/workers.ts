// LOCAL STAND-IN for the edge runtime's worker pool: as many serving copies of the runtime as
// cores, all listening on the same port (SO_REUSEPORT, Linux: the kernel spreads connections over
// them). Supabase's edge runtime runs each function in isolates on their own threads, up to
// `max-parallelism` at once, which defaults to the number of cores
// (crates/base/src/worker/pool.rs, `std::thread::available_parallelism()`); one Deno process
// would keep every function on one core.
//
// The first process (the `runtime` service's pid) is the supervisor: it serves nothing and
// starts the serving workers in its own process group, so `npm stop` and
// `stopService('runtime', 'SIGKILL')` end them all with one group signal. A worker also exits when
// the supervisor is gone (its stdin closes), and one that dies is started again, as the platform
// replaces a crashed worker.
//
// The wall clock (LOCAL_RUNTIME_WALL_CLOCK_MS; unset: workers live as long as the stack): the edge
// runtime gives a user worker a wall-clock limit (hosted: 150 s free, 400 s paid) and, per
// crates/base/src/worker/supervisor/strategy_per_worker.rs, retires it at half (it takes no new
// requests), dispatches `beforeunload` at `--dispatch-beforeunload-wall-clock-ratio` (90 %) as
// `new CustomEvent('beforeunload', { cancelable: true, detail: { reason: 'wall_clock' } })`
// (ext/runtime/js/bootstrap.js), and terminates it at the limit. A retired worker with nothing in
// flight (every request answered, every EdgeRuntime.waitUntil settled) is dropped early, after a
// `beforeunload` with reason `early_drop`. Each worker here runs that schedule from its own start
// (lifecycle below), and the supervisor starts its replacement shortly before it retires, so the
// port keeps answering.
//
// The log: the workers' stdout and stderr are pipes to the supervisor, which writes them, whole
// lines, into the service log (LOCAL_RUNTIME_LOG_FILE, set by `npm start`) through
// local/log-file.ts: bounded at LOCAL_RUNTIME_LOG_MAX_BYTES (default 32 MiB) with one older
// generation kept, so a bench run's half a gigabyte of request lines never piles up on disk.
import { LineBuffer, LOG_MAX_BYTES_DEFAULT, RotatingLog } from '../log-file.ts';

const WORKER_INDEX = 'LOCAL_RUNTIME_WORKER_INDEX';

/** LOCAL_RUNTIME_WORKERS, else the number of cores. */
export function workerCount(): number {
  const raw = Deno.env.get('LOCAL_RUNTIME_WORKERS');
  const n = raw ? Number(raw) : navigator.hardwareConcurrency;
  if (!Number.isInteger(n) || n < 1) throw new Error(`LOCAL_RUNTIME_WORKERS must be a positive integer, got "${raw}"`);
  return n;
}

/** LOCAL_RUNTIME_WALL_CLOCK_MS, or null (no limit). */
export function wallClockMs(): number | null {
  const raw = Deno.env.get('LOCAL_RUNTIME_WALL_CLOCK_MS');
  if (!raw) return null;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1000) throw new Error(`LOCAL_RUNTIME_WALL_CLOCK_MS must be an integer of at least 1000, got "${raw}"`);
  return n;
}

/** The edge runtime's default `--dispatch-beforeunload-wall-clock-ratio`. */
export const BEFOREUNLOAD_WALL_CLOCK_RATIO = 0.9;

/** 0 for the supervisor, 1… for the serving workers it started. */
export function workerIndex(): number {
  return Number(Deno.env.get(WORKER_INDEX) ?? 0);
}

type Log = (fields: Record<string, unknown>) => void;

/**
 * In the supervisor: starts workers 1…count running `script` with the same env and keeps them
 * running (replacing each before it retires when there is a wall clock); never returns. Call it
 * before anything is deleted from the env. LOCAL_RUNTIME_INSPECT=PORT gives worker i an inspector
 * on PORT + i - 1.
 */
export function superviseWorkers(script: URL, count: number, consoleLog: Log): Promise<never> {
  const inspect = Deno.env.get('LOCAL_RUNTIME_INSPECT');
  const wallClock = wallClockMs();
  const env = Deno.env.toObject();
  const sink = logSink();
  const log: Log = sink ? (fields) => sink.write(`${JSON.stringify({ ts: new Date().toISOString(), ...fields })}\n`) : consoleLog;
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const lines = new LineBuffer();
    for await (const chunk of stream) sink!.write(lines.push(chunk));
    sink!.write(lines.flush());
  };
  const spawn = (i: number) => {
    let replaced = false;
    const child = new Deno.Command(Deno.execPath(), {
      args: ['run', '-A', '--no-lock', '--unstable-net', ...(inspect ? [`--inspect=127.0.0.1:${Number(inspect) + i - 1}`] : []),
        '--config', new URL('../../deno.json', import.meta.url).pathname, script.pathname],
      env: { ...env, [WORKER_INDEX]: String(i) },
      stdin: 'piped', stdout: sink ? 'piped' : 'inherit', stderr: sink ? 'piped' : 'inherit',
    }).spawn();
    if (sink) {
      pump(child.stdout).catch(() => {});
      pump(child.stderr).catch(() => {});
    }
    // The replacement starts a little before this one retires (loading every function takes a
    // second or two), so a listener is always there.
    const replace = wallClock === null ? null : setTimeout(() => {
      replaced = true;
      spawn(i);
    }, Math.max(0, wallClock / 2 - Math.min(3000, wallClock / 4)));
    child.status.then((s) => {
      if (replace !== null) clearTimeout(replace);
      log({ level: replaced ? 'info' : 'error', msg: 'worker_exited', worker: i, pid: child.pid, code: s.code, signal: s.signal, replaced });
      if (!replaced) setTimeout(() => spawn(i), 200);
    });
  };
  for (let i = 1; i <= count; i++) spawn(i);
  return new Promise<never>(() => {});
}

/** The bounded service log the workers' output goes to, or null (no LOCAL_RUNTIME_LOG_FILE: the
 *  workers inherit the supervisor's stdout, as when main.ts is run by hand). */
function logSink(): RotatingLog | null {
  const file = Deno.env.get('LOCAL_RUNTIME_LOG_FILE');
  if (!file) return null;
  const raw = Deno.env.get('LOCAL_RUNTIME_LOG_MAX_BYTES');
  const max = raw ? Number(raw) : LOG_MAX_BYTES_DEFAULT;
  if (!Number.isInteger(max) || max < 4096) throw new Error(`LOCAL_RUNTIME_LOG_MAX_BYTES must be an integer of at least 4096, got "${raw}"`);
  return new RotatingLog(file, max);
}

/** In a serving worker: exit when the supervisor goes away (its end of our stdin closes). */
export function exitWithSupervisor(): void {
  (async () => {
    for await (const _ of Deno.stdin.readable) { /* the supervisor never writes */ }
    Deno.exit(0);
  })();
}

/** What the wall clock needs to know about a serving worker. */
export interface Lifecycle {
  /** Stop taking requests (close the listener; requests in flight are answered). */
  retire(): Promise<void>;
  /** Nothing in flight: no request unanswered and no EdgeRuntime.waitUntil promise unsettled. */
  idle(): boolean;
}

function dispatchBeforeunload(reason: 'wall_clock' | 'early_drop', log: Log): void {
  log({ level: 'info', msg: 'beforeunload', reason, pid: Deno.pid });
  globalThis.dispatchEvent(new CustomEvent('beforeunload', { cancelable: true, detail: { reason } }));
}

/** The wall-clock schedule of one serving worker (see the top of this file). */
export function runWallClock(limitMs: number, worker: Lifecycle, log: Log): void {
  const started = performance.now();
  const at = (fraction: number) => Math.max(0, started + limitMs * fraction - performance.now());
  let retired = false;
  setTimeout(async () => {
    retired = true;
    log({ level: 'info', msg: 'worker_retired', pid: Deno.pid, after_ms: Math.round(performance.now() - started) });
    await worker.retire();
  }, at(0.5));
  const earlyDrop = setInterval(() => {
    if (!retired || !worker.idle()) return;
    clearInterval(earlyDrop);
    dispatchBeforeunload('early_drop', log);
    Deno.exit(0);
  }, 100);
  setTimeout(() => dispatchBeforeunload('wall_clock', log), at(BEFOREUNLOAD_WALL_CLOCK_RATIO));
  setTimeout(() => {
    log({ level: 'info', msg: 'wall_clock_reached', pid: Deno.pid });
    Deno.exit(0);
  }, at(1));
}
