// The measured targets the project is held to (docs/targets.md), each with the figure that
// measures it in docs/figures/*.json: `npm run docs:figures` renders their current status from
// there, so the status table changes when the figures are measured again, never by hand.
import type { BenchFile, ChaosFile, EvalFile } from './docs-figures.ts';
import type { BundleReport } from './bundle-size.ts';
import { LIMIT_CLI_BYTES, LIMIT_SERVER_BYTES } from './bundle-size.ts';
import { PROVIDER_LABELS } from './eval/report.ts';

export interface SoakFile {
  measured_at: string;
  machine: { cores: number; cpu: string; memory_gb: number; load_average: number[] };
  duration_s: number;
  rate: number;
  traffic: {
    name: string; limitedExpected: boolean; total: number; outcomes: { ok: number; limited: number; error: number }; unanswered: number;
    latency: { samples: number; text: string };
  }[];
  memory: { process: string; growth: number }[];
  failures: string[];
}

export interface Figures {
  bench: BenchFile | null; eval: EvalFile | null; bundle: BundleReport | null; chaos: ChaosFile | null; outage: ChaosFile | null; soak: SoakFile | null;
}

type Source =
  | { kind: 'bench'; key: string }
  | { kind: 'eval'; keys: string[] }
  | { kind: 'controls' }
  | { kind: 'bundle'; limit: number }
  | { kind: 'chaos' }
  | { kind: 'outage' }
  | { kind: 'soak' };

export interface Target { target: string; where: string; source: Source }

export const TARGETS: Target[] = [
  { target: 'Cache hit (`POST orchestrate`) at a steady 500 requests/s: p95 ≤ 5 ms', where: 'bench `steady`', source: { kind: 'bench', key: 'steady_orchestrate' } },
  { target: 'Cache hit at 64 concurrent clients: `POST orchestrate` throughput ≥ 0.5 × a raw primary-key read of the same rows, same run', where: 'bench `hits`', source: { kind: 'bench', key: 'ratio_orchestrate' } },
  { target: 'The same for `GET narrative`', where: 'bench `hits`', source: { kind: 'bench', key: 'ratio_narrative' } },
  { target: 'Cache miss (`POST orchestrate`, fallback context) for a user with 10,000 memories: p95 ≤ 300 ms', where: 'bench `miss`', source: { kind: 'bench', key: 'miss_orchestrate' } },
  { target: 'Enqueue → narrative stored, instant fake provider: p95 ≤ 2 s', where: 'bench `enqueue`', source: { kind: 'bench', key: 'enqueue_to_stored' } },
  { target: 'A 30 s provider with 20 concurrent enqueues holds back no dispatch: enqueue → stored within one provider call + 5 s', where: 'bench `slow`', source: { kind: 'bench', key: 'enqueue_to_stored_slow_provider' } },
  { target: 'A new user\'s cache miss behind 10,000 queued backfill jobs: ≤ 1.5 × the same miss on an idle queue', where: 'bench `lanes`', source: { kind: 'bench', key: 'miss_under_backlog' } },
  { target: 'Dispatch never sends more requests than free slots: 50 concurrent misses with a cap of 4, 0 requests beyond one per job', where: 'bench `exact`', source: { kind: 'bench', key: 'wasted_dispatches' } },
  { target: 'Prompt selection for a user with 200,000 memories: p95 ≤ 100 ms, no temp spill', where: 'bench `prompt`', source: { kind: 'bench', key: 'prompt_large' } },
  { target: 'Enqueue → stored for that 200,000-memory user (instant fake): ≤ 2 s', where: 'bench `prompt`', source: { kind: 'bench', key: 'generation_large' } },
  { target: 'Backfill enqueue of 100,000 users: ≤ 5 s', where: 'bench `backfill`', source: { kind: 'bench', key: 'backfill_100k' } },
  { target: 'Citation validity 100 % (every cited id was in that version\'s prompt and is still active when served)', where: 'eval, every column', source: { kind: 'eval', keys: ['citations'] } },
  { target: 'Every served claim rests on what it cites (support at `claim_support_min`)', where: 'eval, every column', source: { kind: 'eval', keys: ['support'] } },
  { target: 'Deleted-fact leakage 0 on every path, fact deleted before and after generation', where: 'eval, every column', source: { kind: 'eval', keys: ['leak-before', 'leak-after'] } },
  { target: 'Pinned notes verbatim in every version; notes kept through regeneration', where: 'eval, every column', source: { kind: 'eval', keys: ['pinned', 'notes'] } },
  { target: 'Each fake control is caught: the careless one\'s valid-citation injection, the unsupported one\'s mis-citations', where: 'eval, control columns', source: { kind: 'controls' } },
  { target: 'Every function\'s deployed upload ≤ 20 MB (bundled by the CLI)', where: '`npm run bundle-size`; `tests/function-deps.test.ts`', source: { kind: 'bundle', limit: LIMIT_CLI_BYTES } },
  { target: 'Every function\'s deployed upload ≤ 5 MB (bundled server-side, `--use-api`)', where: '`npm run bundle-size`', source: { kind: 'bundle', limit: LIMIT_SERVER_BYTES } },
  { target: 'Chaos: every job ends succeeded or failed with a reason; none stuck or duplicated; versions only grow; every failure matched to its fault; ≥ 95 % succeeded outside injected permanent faults', where: '`npm run chaos` (300 jobs in `npm test`)', source: { kind: 'chaos' } },
  { target: 'A provider outage (every call 503 for 10 minutes) costs no job', where: '`npm run chaos -- --outage 600`', source: { kind: 'outage' } },
  { target: 'Soak: every answer a success (a 429 or a JSON-RPC error is not), memory flat', where: '`npm run soak`', source: { kind: 'soak' } },
];

const none = { figure: 'not measured', status: '—' };
const mb = (v: number) => `${(v / 1048576).toFixed(2)} MB`;

export function targetStatus(t: Target, f: Figures): { figure: string; status: string } {
  const s = t.source;
  switch (s.kind) {
    case 'bench': {
      const row = f.bench?.rows.find((r) => r.key === s.key);
      return row ? { figure: row.measured, status: row.verdict } : { figure: 'not in the last run', status: '—' };
    }
    case 'eval': {
      if (!f.eval) return none;
      const rows = f.eval.rows.filter((r) => s.keys.includes(r.key));
      const cells = rows.flatMap((r) => f.eval!.providers.map((p) => ({ p: p.provider, c: r.cells[p.provider]! })));
      const figure = f.eval.providers.map((p) => `${PROVIDER_LABELS[p.provider]}: ${rows.map((r) => r.cells[p.provider]!.text).join('; ')}`).join(' · ');
      return { figure, status: cells.every((x) => x.c.pass) ? 'PASS' : 'FAIL' };
    }
    case 'controls': {
      if (!f.eval) return none;
      const caught = f.eval.failures.every((x) => !x.includes('did not catch'));
      const inj = f.eval.rows.find((r) => r.key === 'injection')?.cells.fake?.text ?? '—';
      const dropped = f.eval.rows.find((r) => r.key === 'unsupported')?.cells.unsupported?.text ?? '—';
      return { figure: `careless: injection ${inj}; unsupported: ${dropped} as unsupported`, status: caught ? 'PASS (caught)' : 'FAIL' };
    }
    case 'bundle': {
      if (!f.bundle) return none;
      const biggest = Math.max(...f.bundle.functions.map((x) => x.compressedBytes));
      return { figure: `largest ${mb(biggest)} (${f.bundle.functions.find((x) => x.compressedBytes === biggest)!.name})`, status: biggest <= s.limit ? 'PASS' : 'FAIL' };
    }
    case 'chaos':
    case 'outage': {
      const c = s.kind === 'chaos' ? f.chaos : f.outage;
      if (!c) return none;
      const x = c.summary;
      return {
        figure: `${x.succeeded} of ${x.jobs} succeeded, ${x.failed} failed${s.kind === 'chaos' ? ` (${(c.successRate * 100).toFixed(1)} % outside permanent faults)` : ''}, ${c.violations.length} violations`,
        status: c.violations.length === 0 ? 'PASS' : 'FAIL',
      };
    }
    case 'soak': {
      if (!f.soak) return none;
      const total = f.soak.traffic.reduce((a, r) => a + r.total, 0);
      const errors = f.soak.traffic.reduce((a, r) => a + r.outcomes.error + r.unanswered, 0);
      const limited = f.soak.traffic.reduce((a, r) => a + (r.limitedExpected ? 0 : r.outcomes.limited), 0);
      const growth = f.soak.memory.map((m) => `${m.process} ${(m.growth * 100).toFixed(1)} %`).join(', ');
      return {
        figure: `${total.toLocaleString('en-US')} requests: ${errors} errors, ${limited} limited outside Regenerate's cooldown; memory growth ${growth}`,
        status: f.soak.failures.length === 0 ? 'PASS' : 'FAIL',
      };
    }
  }
}
