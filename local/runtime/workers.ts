// LOCAL STAND-IN for the edge runtime's worker pool: as many copies of the runtime as cores,
// all listening on the same port (SO_REUSEPORT, Linux: the kernel spreads connections over
// them). Supabase's edge runtime runs each function in isolates on their own threads, up to
// `max-parallelism` at once, which defaults to the number of cores
// (crates/base/src/worker/pool.rs, `std::thread::available_parallelism()`); one Deno process
// would keep every function on one core.
//
// The first process (the `runtime` service's pid) starts the others in its own process group, so
// `npm stop` and `stopService('runtime', 'SIGKILL')` end them all with one group signal. A
// worker also exits when the first process is gone (its stdin closes), and one that dies while
// the first lives is started again, as the platform replaces a crashed worker.

const WORKER_INDEX = 'LOCAL_RUNTIME_WORKER_INDEX';

/** LOCAL_RUNTIME_WORKERS, else the number of cores. */
export function workerCount(): number {
  const raw = Deno.env.get('LOCAL_RUNTIME_WORKERS');
  const n = raw ? Number(raw) : navigator.hardwareConcurrency;
  if (!Number.isInteger(n) || n < 1) throw new Error(`LOCAL_RUNTIME_WORKERS must be a positive integer, got "${raw}"`);
  return n;
}

/** 0 for the first process, 1… for the ones it started. */
export function workerIndex(): number {
  return Number(Deno.env.get(WORKER_INDEX) ?? 0);
}

/**
 * In the first process: starts workers 1…count-1 running `script` with the same env (call it
 * before anything is deleted from the env) and keeps them running. In a worker: exits when the
 * first process goes away.
 */
export function startWorkers(script: URL, count: number, log: (fields: Record<string, unknown>) => void): void {
  if (workerIndex() > 0) {
    (async () => {
      for await (const _ of Deno.stdin.readable) { /* the first process never writes */ }
      Deno.exit(0);
    })();
    return;
  }
  const inspect = Deno.env.get('LOCAL_RUNTIME_INSPECT');
  // Taken now: the first process deletes its local-only settings from the env once it has read them.
  const env = Deno.env.toObject();
  const spawn = (i: number) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ['run', '-A', '--no-lock', '--unstable-net', ...(inspect ? [`--inspect=127.0.0.1:${Number(inspect) + i}`] : []),
        '--config', new URL('../../deno.json', import.meta.url).pathname, script.pathname],
      env: { ...env, [WORKER_INDEX]: String(i) },
      stdin: 'piped', stdout: 'inherit', stderr: 'inherit',
    }).spawn();
    child.status.then((s) => {
      log({ level: 'error', msg: 'worker_exited', worker: i, code: s.code, signal: s.signal });
      setTimeout(() => spawn(i), 200);
    });
  };
  for (let i = 1; i < count; i++) spawn(i);
}
