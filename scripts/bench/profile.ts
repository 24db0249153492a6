// CPU profile of a running Deno process through its inspector (the runtime started with
// LOCAL_RUNTIME_INSPECT=PORT npm start): samples for S seconds, then prints where the time went,
// by self time per function and per source (our code, postgres.js, jose, Deno's HTTP server …).
//   tsx scripts/bench/profile.ts [--port 9229] [--seconds 8] [--top 25]
export interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
export interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

/** Samples the process behind the inspector on `port` for `seconds`; with its pid, so its CPU
 *  can be read from /proc over the same window (`around` runs just before and after sampling). */
export async function captureProfile(port: number, seconds: number, around?: { start(pid: number): void; stop(): void }): Promise<Profile> {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json() as { webSocketDebuggerUrl: string }[];
  if (!targets[0]) throw new Error(`no inspector target on port ${port}`);
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((res, rej) => { ws.onopen = res; ws.onerror = rej; });
  let next = 1;
  const pending = new Map<number, (v: unknown) => void>();
  ws.onmessage = (ev) => {
    const msg = JSON.parse(String(ev.data)) as { id?: number; result?: unknown };
    if (msg.id && pending.has(msg.id)) pending.get(msg.id)!(msg.result);
  };
  const call = (method: string, params: Record<string, unknown> = {}) => new Promise<unknown>((res) => {
    const id = next++;
    pending.set(id, res);
    ws.send(JSON.stringify({ id, method, params }));
  });
  await call('Profiler.enable');
  await call('Profiler.setSamplingInterval', { interval: 200 });
  const { result } = await call('Runtime.evaluate', { expression: 'Deno.pid', returnByValue: true }) as { result: { value: number } };
  around?.start(result.value);
  await call('Profiler.start');
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const { profile } = await call('Profiler.stop') as { profile: Profile };
  around?.stop();
  ws.close();
  return profile;
}

/** Where a frame's code comes from, coarse enough to read at a glance. */
export function sourceOf(url: string, fn: string): string {
  if (!url) return fn === '(garbage collector)' || fn === '(idle)' || fn === '(program)' ? fn : '(native/V8)';
  const m = /node_modules\/(?:\.deno\/)?(@[^/]+\/[^/@]+|[^/@]+)/.exec(url);
  if (m) return `npm:${m[1]}`;
  if (url.startsWith('ext:')) return url.replace(/^ext:([^/]+)\/.*/, 'deno:$1');
  if (url.includes('/supabase/functions/')) return `functions:${url.replace(/.*\/supabase\/functions\//, '')}`;
  if (url.includes('/local/')) return `local:${url.replace(/.*\/local\//, '')}`;
  return url;
}

export function summarizeProfile(p: Profile, top: number): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const total = [...self.values()].reduce((a, b) => a + b, 0) || 1;
  const bySource = new Map<string, number>();
  const byFn = new Map<string, number>();
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    const src = sourceOf(f.url, f.functionName);
    bySource.set(src, (bySource.get(src) ?? 0) + us);
    const key = `${f.functionName || '(anonymous)'} ${src}:${f.lineNumber + 1}`;
    byFn.set(key, (byFn.get(key) ?? 0) + us);
  }
  const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)} %`;
  const idle = (bySource.get('(idle)') ?? 0);
  const lines = [`sampled ${((p.endTime - p.startTime) / 1e6).toFixed(1)} s; busy ${(100 - (100 * idle) / total).toFixed(1)} % of one thread`, '', 'self time by source:'];
  for (const [s, us] of [...bySource].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(us)}  ${s}`);
  lines.push('', 'self time by function:');
  for (const [s, us] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(us)}  ${s}`);
  return lines.join('\n');
}

/** What a cache hit's CPU in the runtime is spent on, by who asked for it (see splitProfile). */
export const RUNTIME_PARTS = [
  'runtime HTTP', 'stand-in gateway', 'JWT check', 'request JSON', 'handler and response', 'postgres.js', 'logging', 'GC',
] as const;
export type RuntimePart = (typeof RUNTIME_PARTS)[number];

/** The part a frame belongs to, or null when it is only plumbing (Deno internals, natives) and
 *  its caller decides. */
function partOf(fn: string, url: string): RuntimePart | null {
  if (fn === '(garbage collector)') return 'GC';
  const src = sourceOf(url, fn);
  // db.ts's frame here is its guard on the driver's socket writes.
  if (src === 'npm:postgres' || (src === 'functions:_shared/db.ts' && fn === 'Socket.write')) return 'postgres.js';
  if (src === 'npm:zod' || /functions:_shared\/body\.ts/.test(src) || (src === 'functions:_shared/http.ts' && /^read(Json|JsonBody|Body)$|^validated$/.test(fn))) return 'request JSON';
  if (/functions:_shared\/(auth|bearer)\.ts/.test(src) || src === 'npm:jose') return 'JWT check';
  // console.log itself, wherever V8 inlined log.ts into its caller.
  if (src === 'functions:_shared/log.ts' || (src === 'deno:deno_web' && fn === 'log')) return 'logging';
  if (src.startsWith('functions:')) return 'handler and response';
  if (src.startsWith('local:')) return 'stand-in gateway';
  return null;
}

/**
 * Each part's share of the profiled thread's busy time (idle excluded). A sample belongs to the
 * nearest frame of its stack that has a part: Deno's own code (the socket write of a postgres.js
 * flush, the JSON.parse of a body) counts for whoever called it, and what nothing of ours called
 * (the HTTP server taking a request, writing a response, timers) is "runtime HTTP".
 */
export function splitProfile(p: Profile): { parts: Record<RuntimePart, number>; busySeconds: number } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const partCache = new Map<number, RuntimePart>();
  const resolve = (id: number): RuntimePart => {
    const known = partCache.get(id);
    if (known) return known;
    const f = byId.get(id)!.callFrame;
    const up = parent.get(id);
    const part = partOf(f.functionName, f.url) ?? (up === undefined ? 'runtime HTTP' : resolve(up));
    partCache.set(id, part);
    return part;
  };
  const out = Object.fromEntries(RUNTIME_PARTS.map((k) => [k, 0])) as Record<RuntimePart, number>;
  let busy = 0;
  p.samples.forEach((id, i) => {
    if (byId.get(id)!.callFrame.functionName === '(idle)') return;
    const us = p.timeDeltas[i] ?? 0;
    busy += us;
    out[resolve(id)] += us;
  });
  for (const k of RUNTIME_PARTS) out[k] = busy ? out[k] / busy : 0;
  return { parts: out, busySeconds: busy / 1e6 };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name: string, d: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : d;
  };
  const profile = await captureProfile(arg('port', 9229), arg('seconds', 8));
  console.log(summarizeProfile(profile, arg('top', 25)));
  console.log('\nbusy time by part:');
  for (const [k, v] of Object.entries(splitProfile(profile).parts)) console.log(`  ${(100 * v).toFixed(1).padStart(5)} %  ${k}`);
}
