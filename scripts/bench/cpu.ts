// Where the CPU of a measurement went (Linux, local stack): the functions runtime (every process
// of its group: one worker per core), Postgres (postmaster and its backends) and this process
// (the load generator, or the raw-read client), from /proc tick counters before and after.
import fs from 'node:fs';
import path from 'node:path';
import { PGDATA, RUN_DIR } from '../../local/config.ts';

type Who = 'runtime' | 'postgres' | 'bench';
const HZ = 100; // USER_HZ: what /proc/<pid>/stat counts in on Linux

function ticks(pid: number, file = `/proc/${pid}/stat`): number {
  try {
    const stat = fs.readFileSync(file, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // utime + stime
  } catch {
    return 0;
  }
}

function pidsOf(): Record<Who, number[]> {
  const read = (file: string) => { try { return Number(fs.readFileSync(file, 'utf8').split('\n')[0]); } catch { return 0; } };
  const runtimeGroup = read(path.join(RUN_DIR, 'runtime.pid'));
  const postmaster = read(path.join(PGDATA, 'postmaster.pid'));
  const out: Record<Who, number[]> = { runtime: [], postgres: postmaster ? [postmaster] : [], bench: [process.pid] };
  let entries: string[] = [];
  try { entries = fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)); } catch { return out; }
  for (const e of entries) {
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(f[1]);
      const pgrp = Number(f[2]);
      if (runtimeGroup && pgrp === runtimeGroup) out.runtime.push(Number(e));
      else if (postmaster && ppid === postmaster) out.postgres.push(Number(e));
    } catch { /* gone */ }
  }
  return out;
}

export interface CpuSplit { seconds: number; coreShare: Record<Who, number> }

/** µs of CPU per request of each part (rate: requests per second over the same window). */
export function perRequest(split: CpuSplit, rate: number): Record<Who, number> {
  return Object.fromEntries(Object.entries(split.coreShare).map(([w, share]) => [w, (share / rate) * 1e6])) as Record<Who, number>;
}

/** CPU seconds one process used between two calls, all its threads and its main thread alone
 *  (Deno's JS thread is the process's first: /proc/<pid>/task/<pid>), for a profiled worker. */
export function processCpu(pid: number): () => { total: number; main: number } {
  const main = () => ticks(pid, `/proc/${pid}/task/${pid}/stat`);
  const t0 = ticks(pid);
  const m0 = main();
  return () => ({ total: (ticks(pid) - t0) / HZ, main: (main() - m0) / HZ });
}

/** Starts counting; the returned function stops and gives each part's share of one core. */
export function sampleCpu(): () => CpuSplit | null {
  if (process.platform !== 'linux') return () => null;
  const pids = pidsOf();
  const before = Object.fromEntries(Object.entries(pids).map(([w, ps]) => [w, new Map(ps.map((p) => [p, ticks(p)]))])) as Record<Who, Map<number, number>>;
  const t0 = performance.now();
  return () => {
    const seconds = (performance.now() - t0) / 1000;
    const coreShare = {} as Record<Who, number>;
    for (const w of Object.keys(before) as Who[]) {
      let used = 0;
      for (const [p, t] of before[w]) used += Math.max(0, ticks(p) - t);
      coreShare[w] = used / HZ / seconds;
    }
    return { seconds, coreShare };
  };
}

/** "runtime 410 µs, Postgres 120 µs, load generator 60 µs of CPU per request (… of a core)". */
export function describeCpu(split: CpuSplit | null, perSecond: number, clientName: string): string {
  if (!split || perSecond <= 0) return 'CPU split not measured (not Linux, or no local stack)';
  const us = (share: number) => `${Math.round((share / perSecond) * 1e6)} µs`;
  const parts = [
    ...(split.coreShare.runtime > 0.01 ? [`functions runtime ${us(split.coreShare.runtime)} (${(split.coreShare.runtime * 100).toFixed(0)} % of a core)`] : []),
    `Postgres ${us(split.coreShare.postgres)} (${(split.coreShare.postgres * 100).toFixed(0)} %)`,
    `${clientName} ${us(split.coreShare.bench)} (${(split.coreShare.bench * 100).toFixed(0)} %)`,
  ];
  return `CPU per request: ${parts.join(', ')}`;
}
