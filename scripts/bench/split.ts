// Where a cache hit's CPU goes, by component: the functions runtime's JS thread split by an
// inspector profile (profile.ts splitProfile: Deno's HTTP server, the local gateway, the JWT
// check, the request's JSON, the handler, postgres.js, logging, GC), the rest of the runtime's
// CPU (outside that thread: Rust HTTP I/O, the kernel's share of its sockets, V8's helper
// threads), Postgres and the load generator, in µs per hit. The µs come from the measured,
// uninstrumented run (/proc, cpu.ts); the profile run only gives the shares inside the runtime.
// It restarts the runtime with an inspector (LOCAL_RUNTIME_INSPECT) for that run and puts it back
// as it was.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../../local/config.ts';
import { runningFunctionsEnv } from '../../local/functions-env.ts';
import { stopService } from '../../local/processes.ts';
import type { BenchUser } from './fixtures.ts';
import { cpuPerRequest, HIT_EXPECT, hitRequests } from './hits.ts';
import { runAutocannon } from './load.ts';
import { CONNS, D, progress } from './options.ts';
import { captureProfile, RUNTIME_PARTS, splitProfile, type RuntimePart } from './profile.ts';
import { processCpu } from './cpu.ts';
import { notes, tables } from './report.ts';

const INSPECT_PORT = 9239;

function restartRuntime(inspect: boolean): void {
  const envFile = runningFunctionsEnv();
  const env = { ...process.env };
  if (inspect) env.LOCAL_RUNTIME_INSPECT = String(INSPECT_PORT);
  else delete env.LOCAL_RUNTIME_INSPECT;
  execFileSync(process.execPath, ['--import', 'tsx', path.join('local', 'cli.ts'), 'start', ...(envFile ? ['--functions-env', envFile] : [])],
    { cwd: ROOT, stdio: 'pipe', env });
}

const LABELS: Record<RuntimePart, string> = {
  'runtime HTTP': "runtime HTTP (Deno's server: request and response objects, headers, timers)",
  'stand-in gateway': 'local gateway (routing, the body taken in whole, the forwarded Request)',
  'JWT check': 'JWT check (the verified-token cache: hash and lookup)',
  'request JSON': 'request JSON (body read, UTF-8, parse, zod)',
  'handler and response': 'handler and response (route, the hit, the answer)',
  'postgres.js': 'postgres.js (query, result, its socket writes and reads)',
  logging: 'logging (one JSON line per request)',
  GC: 'garbage collection',
};

/** Profiles orchestrate hits and adds the table; needs the hits step's CPU figures. */
export async function measureCpuSplit(users: BenchUser[]): Promise<void> {
  const hit = cpuPerRequest.orchestrate;
  const raw = cpuPerRequest.raw;
  if (!hit || !raw) {
    notes.push('CPU split by component: not measured (needs the hits step on Linux).');
    return;
  }
  progress(`CPU split: restarting the runtime with an inspector on ${INSPECT_PORT}`);
  await stopService('runtime');
  restartRuntime(true);
  let parts: Record<RuntimePart, number>;
  let jsShare: number;
  try {
    const seconds = Math.max(3, D - 3);
    progress(`CPU split: orchestrate hits for ${D} s at ${CONNS} connections, profiling one worker for ${seconds} s`);
    let cpuOf: (() => { total: number; main: number }) | null = null;
    let workerCpu = { total: 0, main: 0 };
    const load = runAutocannon({ requestsFor: hitRequests(users, 'orchestrate'), connections: CONNS, duration: D, expect: HIT_EXPECT.orchestrate });
    await new Promise((r) => setTimeout(r, 1500));
    const profile = await captureProfile(INSPECT_PORT, seconds, {
      start: (pid) => { cpuOf = processCpu(pid); },
      stop: () => { workerCpu = cpuOf?.() ?? workerCpu; },
    });
    const r = await load;
    const split = splitProfile(profile);
    parts = split.parts;
    // The profile's shares are of the JS thread's busy samples; that thread's CPU (/proc) is what
    // they divide, the process's other threads are the rest.
    jsShare = workerCpu.total > 0 ? Math.min(1, workerCpu.main / workerCpu.total) : 0;
    notes.push(`CPU split: profiled one runtime worker for ${seconds} s under ${(r.ok / r.elapsedS).toFixed(0)} hits/s (with an inspector attached);`
      + ` its JS thread used ${workerCpu.main.toFixed(2)} s of the ${workerCpu.total.toFixed(2)} s of CPU of the process (${(100 * jsShare).toFixed(0)} %),`
      + ` and was sampled busy for ${split.busySeconds.toFixed(2)} s (wall time, descheduled time included).`);
  } finally {
    await stopService('runtime');
    restartRuntime(false);
    progress('CPU split: runtime back without an inspector');
  }

  const total = hit.runtime + hit.postgres + hit.bench;
  const lines: [string, number][] = [
    ...RUNTIME_PARTS.map((p): [string, number] => [`runtime, JS thread: ${LABELS[p]}`, hit.runtime * jsShare * parts[p]]),
    ['runtime, outside the JS thread (Rust HTTP I/O, socket syscalls, V8 helper threads)', hit.runtime * (1 - jsShare)],
    ['Postgres (the hit statement, its protocol and sockets)', hit.postgres],
    ['load generator (autocannon)', hit.bench],
  ];
  const row = (l: string, v: number) => [l, v.toFixed(0), `${((100 * v) / total).toFixed(1)} %`];
  const rawTotal = raw.postgres + raw.bench;
  tables.push({
    key: 'cpu_split',
    title: `CPU per cache hit by component (POST orchestrate, ${CONNS} connections; µs of CPU per request)`,
    columns: ['component', 'µs', 'share'],
    rows: [...lines.map(([l, v]) => row(l, v)), row('total', total)],
    notes: [
      `raw primary-key read, for comparison: Postgres ${raw.postgres.toFixed(0)} µs + client ${raw.bench.toFixed(0)} µs = ${rawTotal.toFixed(0)} µs.`,
      `CPU-bound on shared cores, the ratio is about the inverse of the costs: ${rawTotal.toFixed(0)} / ${total.toFixed(0)} = ${(rawTotal / total).toFixed(2)}.`,
    ],
  });
}
