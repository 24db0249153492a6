// Background services of the local stack: started detached with a pid file and a log file,
// like the containers `supabase start` leaves running.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { LOG_DIR, ROOT, RUN_DIR } from './config.ts';
import { logicalSize, readSince } from './log-file.ts';

export interface Service {
  name: string;
  command: string;
  args: string[];
  env?: Record<string, string>;
}

const pidFile = (name: string) => path.join(RUN_DIR, `${name}.pid`);
export const logFile = (name: string) => path.join(LOG_DIR, `${name}.log`);

/** A service log's size now, over its whole history, or null when it cannot be read: what is
 *  logged later starts at this offset, however often the log rotates (local/log-file.ts). */
export function logSize(name: string): number | null {
  return logicalSize(logFile(name));
}

/** What a service logged from offset `from` on (all that is on disk when `from` is null or past
 *  the end), or null when the log cannot be read. */
export function logSince(name: string, from: number | null): string | null {
  return readSince(logFile(name), from);
}

export function pidOf(name: string): number | null {
  try {
    const pid = Number(fs.readFileSync(pidFile(name), 'utf8'));
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

export function startService(svc: Service): number {
  const running = pidOf(svc.name);
  if (running) return running;
  fs.mkdirSync(RUN_DIR, { recursive: true });
  fs.mkdirSync(LOG_DIR, { recursive: true });
  const out = fs.openSync(logFile(svc.name), 'a');
  const child = spawn(svc.command, svc.args, {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, ...svc.env },
  });
  child.unref();
  fs.closeSync(out);
  fs.writeFileSync(pidFile(svc.name), String(child.pid));
  return child.pid!;
}

/** SIGTERM the service's process group, then SIGKILL what is still there after a grace period. */
export async function stopService(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<boolean> {
  const pid = pidOf(name);
  fs.rmSync(pidFile(name), { force: true });
  if (!pid) return false;
  const kill = (sig: NodeJS.Signals) => {
    try { process.kill(-pid, sig); } catch { try { process.kill(pid, sig); } catch { /* gone */ } }
  };
  kill(signal);
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    try { process.kill(pid, 0); } catch { return true; }
    await new Promise((r) => setTimeout(r, 50));
  }
  kill('SIGKILL');
  return true;
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not become ready within ${timeoutMs} ms`);
}
