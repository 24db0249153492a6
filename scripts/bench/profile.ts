// CPU profile of a running Deno process through its inspector (the runtime started with
// LOCAL_RUNTIME_INSPECT=PORT npm start): samples for S seconds, then prints where the time went,
// by self time per function and per source (our code, postgres.js, jose, Deno's HTTP server …).
//   tsx scripts/bench/profile.ts [--port 9229] [--seconds 8] [--top 25]
export interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
export interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

export async function captureProfile(port: number, seconds: number): Promise<Profile> {
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
  await call('Profiler.start');
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const { profile } = await call('Profiler.stop') as { profile: Profile };
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

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name: string, d: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : d;
  };
  const profile = await captureProfile(arg('port', 9229), arg('seconds', 8));
  console.log(summarizeProfile(profile, arg('top', 25)));
}
