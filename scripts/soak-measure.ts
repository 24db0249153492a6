// What `npm run soak` counts and measures, apart from the traffic itself: how an answer is
// classified (a 429 is no success, nor is an HTTP 200 carrying a JSON-RPC or tool error), how
// latency is summarised (percentiles only from enough samples), and whose memory is summed
// (every process of this stack's runtime, and this stack's own Postgres only: several stacks
// share a machine). The classifier and the summary are pure (scripts/soak-measure.test.ts).
import fs from 'node:fs';
import path from 'node:path';

/** What one answer was: a success, refused by a limit or a cooldown (429), or an error. */
export type Outcome = 'ok' | 'limited' | 'error';
export type Traffic = 'orchestrate' | 'regenerate' | 'mcp';

/** The JSON-RPC messages of an MCP answer: a JSON body, or the data lines of an SSE stream. */
function rpcMessages(body: string): unknown[] {
  const text = body.trim();
  const chunks = /^(?:event|data|id|retry):/m.test(text) && !text.startsWith('{') && !text.startsWith('[')
    ? text.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim())
    : [text];
  return chunks.flatMap((c) => {
    try {
      const v = JSON.parse(c) as unknown;
      return Array.isArray(v) ? v : [v];
    } catch {
      return [null];
    }
  });
}

/** ok: 200 for orchestrate, 202 for Regenerate, 200 with a JSON-RPC result that is no tool error for MCP. */
export function classify(traffic: Traffic, status: number, body: string): Outcome {
  if (status === 429) return 'limited';
  if (traffic === 'orchestrate') return status === 200 ? 'ok' : 'error';
  if (traffic === 'regenerate') return status === 202 ? 'ok' : 'error';
  if (status !== 200) return 'error';
  const messages = rpcMessages(body);
  const ok = messages.length > 0 && messages.every((m) => {
    const o = m as { jsonrpc?: unknown; error?: unknown; result?: { isError?: unknown } } | null;
    return o !== null && typeof o === 'object' && o.jsonrpc === '2.0' && o.error === undefined
      && o.result !== undefined && o.result?.isError !== true;
  });
  return ok ? 'ok' : 'error';
}

/** Percentiles need samples: below this many, min / median / max is all that is printed. */
export const MIN_PERCENTILE_SAMPLES = 100;

export interface LatencySummary { samples: number; kind: 'percentiles' | 'spread'; text: string }

/** autocannon's latency figures (ms) as the soak prints them. */
export function latencySummary(samples: number, l: { min: number; p50: number; p97_5: number; p99: number; max: number }): LatencySummary {
  if (samples >= MIN_PERCENTILE_SAMPLES) return { samples, kind: 'percentiles', text: `p50 ${l.p50} / p97.5 ${l.p97_5} / p99 ${l.p99}` };
  return { samples, kind: 'spread', text: samples ? `min ${l.min} / median ${l.p50} / max ${l.max}` : '—' };
}

// ---------------------------------------------------------------------------------------------
// Memory (Linux /proc)

interface Proc { pid: number; ppid: number; pgrp: number }

function procs(): Proc[] {
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).flatMap((p) => {
    try {
      // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ')'.
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return [{ pid: Number(p), ppid: Number(f[1]), pgrp: Number(f[2]) }];
    } catch {
      return [];
    }
  });
}

/** A process's proportional set size (kB): its private memory plus its share of what it shares
 *  (Postgres' shared buffers, the workers' common pages), so a sum over processes counts each
 *  page once. RSS where smaps_rollup is missing (kernels before 4.14). */
const memoryKb = (pid: number) => {
  try {
    return Number(/^Pss:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
  } catch {
    try {
      return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      return 0; // gone since the listing
    }
  }
};

/** The postmaster of the cluster in `pgdata`: the first line of its postmaster.pid. */
export function postmasterPid(pgdata: string): number {
  return Number(fs.readFileSync(path.join(pgdata, 'postmaster.pid'), 'utf8').split('\n')[0]);
}

/** Memory (kB, PSS) of the runtime's process group (the first process started the workers
 *  in its group: local/runtime/workers.ts) and of the postmaster with its children (backends,
 *  pg_net's worker, the checkpointer…), and how many processes each is. */
export function stackRss(runtimePid: number, postmaster: number): { runtime: number; postgres: number; processes: { runtime: number; postgres: number } } {
  const all = procs();
  const runtime = all.filter((p) => p.pgrp === runtimePid);
  const pg = all.filter((p) => p.pid === postmaster || p.ppid === postmaster);
  const sum = (ps: Proc[]) => ps.reduce((n, p) => n + memoryKb(p.pid), 0);
  return { runtime: sum(runtime), postgres: sum(pg), processes: { runtime: runtime.length, postgres: pg.length } };
}
