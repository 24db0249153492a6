// The local functions runtime is one worker per core on one port (like the edge runtime's pool),
// yet one `runtime` service: one pid, one process group that `npm stop` and a SIGKILL of the
// service end whole, and a worker that dies alone comes back. These restart the runtime, so they
// run alone.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { API_URL, ROOT, RUN_DIR } from '../../local/config.ts';
import { logFile, pidOf, stopService } from '../../local/processes.ts';
import { eventually } from '../helpers/stack.ts';

/** Live processes of a process group, with their parents. */
function group(pgid: number): { pid: number; ppid: number }[] {
  const out: { pid: number; ppid: number }[] = [];
  for (const e of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[2]) === pgid && f[0] !== 'Z') out.push({ pid: Number(e), ppid: Number(f[1]) });
    } catch { /* gone */ }
  }
  return out;
}

const groupMembers = (pgid: number) => group(pgid).map((p) => p.pid);

/** The workers the first one started: members with a parent in the group and no children (the
 *  first worker has them; npm's deno bin may be a Node wrapper above it). */
function spawnedWorkers(pgid: number): number[] {
  const g = group(pgid);
  const pids = new Set(g.map((p) => p.pid));
  return g.filter((p) => pids.has(p.ppid) && !g.some((c) => c.ppid === p.pid)).map((p) => p.pid);
}

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

const until = <T>(what: string, check: () => T | null | false) => eventually(what, async () => check(), 30_000, 100);

function startStack() {
  execFileSync('npx', ['tsx', 'local/cli.ts', 'start', '--functions-env', 'tests/functions.env'], { cwd: ROOT, stdio: 'pipe' });
}

const workersLog = () => fs.readFileSync(logFile('runtime'), 'utf8');

it('runs one worker per core as one service, and a SIGKILL of the service ends every worker', async () => {
  const cores = os.cpus().length;
  const leader = pidOf('runtime');
  expect(leader, 'the runtime service is up').not.toBeNull();
  const members = await until(`${cores} processes run in the runtime's group`, () => {
    const m = groupMembers(leader!);
    return m.length >= cores ? m : null;
  });
  expect(members, 'the pid file names the group leader').toContain(leader);
  const res = await fetch(`${API_URL}/auth/v1/health`);
  expect(res.status, 'the shared port answers').toBe(200);

  await stopService('runtime', 'SIGKILL');
  await until('every worker is gone', () => members.every((p) => !alive(p)));
  expect(fs.existsSync(path.join(RUN_DIR, 'runtime.pid')), 'the service is recorded as down').toBe(false);
  startStack();
  expect(pidOf('runtime'), 'npm start brings it back').not.toBeNull();
});

// One core: one process, nothing to replace.
it.skipIf(os.cpus().length < 2)('a worker that dies alone is started again, and the API keeps answering meanwhile', async () => {
  const leader = pidOf('runtime')!;
  const before = await until('a second worker runs', () => {
    const w = spawnedWorkers(leader);
    return w.length > 0 ? w : null;
  });
  const victim = before[0];
  const count = (msg: string) => (workersLog().match(new RegExp(`"msg":"${msg}"`, 'g')) ?? []).length;
  const listening = count('listening');
  const exited = count('worker_exited');
  process.kill(victim, 'SIGKILL');
  await until('the killed worker is replaced', () => {
    const w = spawnedWorkers(leader);
    return !w.includes(victim) && w.length >= before.length && count('listening') > listening;
  });
  expect(count('worker_exited'), 'the supervisor says a worker exited').toBeGreaterThan(exited);
  const res = await fetch(`${API_URL}/auth/v1/health`);
  expect(res.status, 'the API answers').toBe(200);
});
