// npm run docs:figures [-- --check]: every measured figure in the docs comes from a file under
// docs/figures/, written by the command that measures it:
//
//   npm run bench -- --json docs/figures/bench.json             (docs/performance.md, docs/targets.md)
//   npm run eval -- --json docs/figures/eval.json               (docs/faithfulness.md, docs/targets.md)
//   npm run bundle-size -- --json docs/figures/bundle-size.json (docs/deploy.md, docs/targets.md)
//   npm run chaos -- --jobs 300 --time-limit 240 --json docs/figures/chaos.json                    (docs/testing.md)
//   npm run chaos -- --jobs 200 --outage 600 --json docs/figures/chaos-outage.json                 (docs/settings-and-limits.md)
//   npm run soak -- --json docs/figures/soak.json                (docs/performance.md, docs/targets.md)
//
// This script renders each table from those files into the docs, between markers
// `<!-- figures:NAME -->` and `<!-- /figures:NAME -->` (README.md and docs/*.md). With --check it
// changes nothing and exits 1 if any embedded table differs from what it would render: npm test
// runs that check (scripts/docs-figures.test.ts), so nobody edits a figure by hand. Timings are
// only ever rendered, never compared with a new run; the deterministic figures are compared with
// a live run by npm test too (the eval's in tests/isolated/faithfulness-eval.test.ts, the bundle
// sizes in tests/function-deps.test.ts).
import fs from 'node:fs';
import path from 'node:path';
import { tableOf, type Row as EvalRow } from './eval/report.ts';
import type { ProviderKey } from './eval/run.ts';
import { bundleTable, LIMIT_CLI_BYTES, LIMIT_SERVER_BYTES, type BundleReport } from './bundle-size.ts';
import { latencyText, type Latency, type Table } from './bench/report.ts';
import { type Figures, type SoakFile, TARGETS, targetStatus } from './docs-targets.ts';

const root = path.resolve(import.meta.dirname, '..');
export const FIGURES_DIR = path.join(root, 'docs/figures');

/** The JSON files and the command that writes each (shown under every table rendered from it). */
export const SOURCES = {
  bench: 'npm run bench -- --json docs/figures/bench.json',
  eval: 'npm run eval -- --json docs/figures/eval.json',
  bundle: 'npm run bundle-size -- --json docs/figures/bundle-size.json',
  chaos: 'npm run chaos -- --jobs 300 --time-limit 240 --json docs/figures/chaos.json',
  outage: 'npm run chaos -- --jobs 200 --outage 600 --json docs/figures/chaos-outage.json',
  soak: 'npm run soak -- --json docs/figures/soak.json',
} as const;
const FILES: Record<keyof typeof SOURCES, string> = {
  bench: 'bench.json', eval: 'eval.json', bundle: 'bundle-size.json', chaos: 'chaos.json', outage: 'chaos-outage.json', soak: 'soak.json',
};

interface Machine { cores: number; cpu: string; memory_gb: number; postgres?: string; load_average?: number[]; load_average_start?: number[]; load_average_end?: number[] }
export interface BenchFile {
  started_at: string; total_seconds: number; machine: Machine; shapes: Record<string, unknown>; notes: string[]; tables: Table[];
  rows: { key: string; measurement: string; n: number | null; errors: number | null; latency_ms: Latency | null; per_second: number | null; measured: string; target: string; verdict: string }[];
}
export interface EvalFile { started_at: string; machine: Machine; rows: EvalRow[]; providers: { provider: ProviderKey }[]; failures: string[] }
export interface ChaosFile {
  command: string; measured_at: string; machine: Machine; scenario: Record<string, unknown>; violations: string[];
  summary: { jobs: number; succeeded: number; failed: number; failed_by_reason: Record<string, number>; attempts: number; attempts_max: number;
    gemini_calls: number; gemini_calls_failed_on_purpose: number | null; disruptions: string[]; elapsed_seconds: number };
  outside: number; successRate: number; injectedPermanent: number; causes: Record<string, number>; unmatched: string[];
}

export function readFigures(dir = FIGURES_DIR): Figures {
  const read = <T>(k: keyof typeof SOURCES): T | null => {
    const f = path.join(dir, FILES[k]);
    return fs.existsSync(f) ? (JSON.parse(fs.readFileSync(f, 'utf8')) as T) : null;
  };
  return { bench: read('bench'), eval: read('eval'), bundle: read('bundle'), chaos: read('chaos'), outage: read('outage'), soak: read('soak') };
}

const cell = (s: string) => s.replaceAll('|', '\\|').replaceAll('\n', ' ');
const md = (header: string[], body: string[][]) =>
  [header, header.map(() => '---'), ...body].map((r) => `| ${r.map(cell).join(' | ')} |`).join('\n');
const day = (iso: string) => `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
const n = (v: number) => v.toLocaleString('en-US');

function machineLine(m: Machine): string {
  const load = m.load_average_start
    ? `load average ${m.load_average_start[0]} at the start, ${m.load_average_end?.[0]} at the end`
    : `load average ${m.load_average?.[0]}`;
  return `${m.cores} cores (${m.cpu}), ${m.memory_gb} GB${m.postgres ? `, Postgres ${m.postgres.split(' ')[0]}` : ''}; ${load} (1-minute)`;
}

/** The line under every rendered table: which command printed it, when, on what. */
function source(k: keyof typeof SOURCES, when: string, m: Machine, extra = ''): string {
  return `_Printed by \`${SOURCES[k]}\` on ${day(when)}${extra}, ${machineLine(m)}; rendered by \`npm run docs:figures\` (edit the JSON's source, not this table)._`;
}

const missing = (k: keyof typeof SOURCES) => `_Not measured yet: run \`${SOURCES[k]}\`, then \`npm run docs:figures\`._`;

function benchBlock(b: BenchFile): string {
  const rate = (r: number | null) => (r === null ? '' : r >= 100 ? n(Math.round(r)) : r.toFixed(1));
  const body = b.rows.map((r) => [r.measurement, r.n === null ? '' : n(r.n), latencyText(r.latency_ms), rate(r.per_second), r.measured, r.target,
    r.verdict === '—' ? '' : r.verdict]);
  return [
    md(['measurement', 'n', 'latency ms', 'per s', 'measured', 'target', 'verdict'], body), '',
    source('bench', b.started_at, b.machine, ` (${b.total_seconds} s)`), '',
    'What the run printed under its table:', '',
    ...b.notes.map((x) => `- ${x}`),
  ].join('\n');
}

function benchCpuBlock(b: BenchFile): string {
  const t = b.tables.find((x) => x.key === 'cpu_split');
  if (!t) return '_The run skipped the `split` step: no CPU table._';
  return [`${t.title}:`, '', md(t.columns, t.rows), '', ...t.notes, '', source('bench', b.started_at, b.machine)].join('\n');
}

function evalBlock(e: EvalFile): string {
  return [tableOf(e.providers.map((p) => p.provider), e.rows), '', source('eval', e.started_at, e.machine)].join('\n');
}

function bundleBlock(r: BundleReport): string {
  const biggest = [...r.functions].sort((a, b) => b.compressedBytes - a.compressedBytes)[0];
  const mb = (v: number) => (v / 1048576).toFixed(2);
  return [
    bundleTable(r.functions), '',
    `The largest npm packages of \`${biggest.name}\` (whole package folders ship): `
      + `${biggest.largestPackages.map((p) => `${p.name} ${mb(p.bytes)} MB`).join(', ')}. `
      + `Limits: ${mb(LIMIT_CLI_BYTES)} MB uploaded when the CLI bundles (Docker), ${mb(LIMIT_SERVER_BYTES)} MB when bundled server-side.`, '',
    source('bundle', r.measured_at, r.machine, ` (${r.deno.split(' (')[0]} resolving the import map)`),
  ].join('\n');
}

function chaosBlock(c: ChaosFile): string {
  const s = c.summary;
  const reasons = Object.entries(s.failed_by_reason).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  const causes = Object.entries(c.causes).map(([k, v]) => `${k} × ${v}`).join('; ');
  return [
    md(['jobs', 'succeeded', 'failed (last_error)', 'failures matched to a fault', 'success floor', 'attempts per job (mean / max)', 'Gemini calls (failed on purpose)', 'disruptions', 'elapsed', 'violations'], [[
      n(s.jobs), n(s.succeeded), `${s.failed} (${reasons})`, `${s.failed - c.unmatched.length} of ${s.failed}${causes ? `: ${causes}` : ''}`,
      `${(c.successRate * 100).toFixed(1)} % of ${c.outside} jobs outside injected permanent faults (${c.injectedPermanent} left out), floor ${c.scenario.min_success_percent} %`,
      `${(s.attempts / Math.max(s.jobs, 1)).toFixed(2)} / ${s.attempts_max}`,
      `${n(s.gemini_calls)} (${s.gemini_calls_failed_on_purpose ?? 0}, fault rate ${c.scenario.fault_rate})`,
      s.disruptions.join('; ') || 'none', `${s.elapsed_seconds} s`, String(c.violations.length),
    ]]), '',
    source('chaos', c.measured_at, c.machine),
  ].join('\n');
}

function outageBlock(c: ChaosFile): string {
  const s = c.summary;
  return [
    md(['jobs (backfill, max_concurrency 8)', 'outage', 'succeeded', 'failed', 'attempts per job (mean / max)', 'Gemini calls', 'elapsed', 'violations'], [[
      n(s.jobs), `${c.scenario.outage_seconds} s`, `${s.succeeded} (${((100 * s.succeeded) / Math.max(s.jobs, 1)).toFixed(0)} %)`, String(s.failed),
      `${(s.attempts / Math.max(s.jobs, 1)).toFixed(2)} / ${s.attempts_max}`, n(s.gemini_calls), `${s.elapsed_seconds} s`, String(c.violations.length),
    ]]), '',
    source('outage', c.measured_at, c.machine),
  ].join('\n');
}

function soakBlock(s: SoakFile): string {
  return [
    md(['traffic', 'requests', 'ok', 'limited (429)', 'errors', 'latency ms'], s.traffic.map((r) => [
      r.name, n(r.total), n(r.outcomes.ok), `${r.outcomes.limited}${r.limitedExpected ? ' (its cooldown)' : ''}`, String(r.outcomes.error + r.unanswered),
      r.latency.text.replaceAll(' / ', ' · '),
    ])), '',
    `Memory (PSS of the runtime's process group and of this stack's Postgres), last third of the run against the middle third: `
      + `${s.memory.map((m) => `${m.process} ${(m.growth * 100).toFixed(1)} %`).join(', ')}. ${s.failures.length ? `FAILED: ${s.failures.join('; ')}` : 'Passed.'}`, '',
    source('soak', s.measured_at, s.machine, ` (${s.duration_s} s at ${s.rate} requests/s)`),
  ].join('\n');
}

function targetsBlock(f: Figures): string {
  return md(['target', 'measured by', 'figure', 'status'], TARGETS.map((t) => {
    const st = targetStatus(t, f);
    return [t.target, t.where, st.figure, st.status];
  }));
}

/** Every block a doc may embed, rendered from the committed JSON. */
export function renderBlocks(f: Figures = readFigures()): Record<string, string> {
  return {
    bench: f.bench ? benchBlock(f.bench) : missing('bench'),
    'bench-cpu': f.bench ? benchCpuBlock(f.bench) : missing('bench'),
    eval: f.eval ? evalBlock(f.eval) : missing('eval'),
    'bundle-size': f.bundle ? bundleBlock(f.bundle) : missing('bundle'),
    chaos: f.chaos ? chaosBlock(f.chaos) : missing('chaos'),
    'chaos-outage': f.outage ? outageBlock(f.outage) : missing('outage'),
    soak: f.soak ? soakBlock(f.soak) : missing('soak'),
    targets: targetsBlock(f),
  };
}

const MARKER = /^<!-- figures:([a-z-]+) -->\n([\s\S]*?)^<!-- \/figures:\1 -->/gm;

/** The text with every block replaced by its rendering; the names it has and any it does not know. */
export function applyBlocks(text: string, blocks: Record<string, string>): { text: string; names: string[]; unknown: string[] } {
  const names: string[] = [];
  const unknown: string[] = [];
  const out = text.replace(MARKER, (whole, name: string) => {
    names.push(name);
    if (!(name in blocks)) {
      unknown.push(name);
      return whole;
    }
    return `<!-- figures:${name} -->\n${blocks[name]}\n<!-- /figures:${name} -->`;
  });
  return { text: out, names, unknown };
}

/** README.md and every docs/*.md. */
export function docFiles(): string[] {
  const docs = fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => path.join(root, 'docs', f));
  return [path.join(root, 'README.md'), ...docs.sort()];
}

/** Docs whose embedded figures differ from a fresh rendering (and what is wrong with the markers). */
export function check(blocks = renderBlocks()): string[] {
  const problems: string[] = [];
  const used = new Set<string>();
  for (const file of docFiles()) {
    const text = fs.readFileSync(file, 'utf8');
    const r = applyBlocks(text, blocks);
    const rel = path.relative(root, file);
    r.names.forEach((x) => used.add(x));
    for (const u of r.unknown) problems.push(`${rel}: unknown figures block "${u}"`);
    if (r.text !== text) problems.push(`${rel}: embedded figures differ from docs/figures/*.json (run npm run docs:figures)`);
    const opened = (text.match(/^<!-- figures:/gm) ?? []).length;
    if (opened !== r.names.length) problems.push(`${rel}: a figures marker is not closed`);
  }
  for (const name of Object.keys(blocks)) if (!used.has(name)) problems.push(`figures block "${name}" is embedded in no doc`);
  return problems;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  if (process.argv.includes('--check')) {
    const problems = check();
    for (const p of problems) console.error(p);
    process.exit(problems.length ? 1 : 0);
  }
  const blocks = renderBlocks();
  for (const file of docFiles()) {
    const text = fs.readFileSync(file, 'utf8');
    const r = applyBlocks(text, blocks);
    if (r.unknown.length) throw new Error(`${file}: unknown figures blocks ${r.unknown.join(', ')}`);
    if (r.text !== text) {
      fs.writeFileSync(file, r.text);
      console.log(`updated ${path.relative(root, file)} (${r.names.join(', ')})`);
    }
  }
}
