// Prompt selection at any size (docs/targets.md): private.memories_for_prompt for a user with 2,000 and
// one with 200,000 active memories — time and temp bytes from EXPLAIN (ANALYZE, BUFFERS), which
// counts what the function runs inside it — against the full ranking the function used before
// (a window sort over every memory, run once as a reference), and one whole generation of the
// 200,000-memory user through the real queue (instant fake provider).
import { overrideSettings } from '../../local/settings.ts';
import { progress } from './options.ts';
import { addMemories, createDbUsers, sql } from './fixtures.ts';
import { jobTimings, pollJobs } from './pipeline.ts';
import { checkErrors, rows, summarize, tail, tailWithin } from './report.ts';

const SMALL = 2_000;
const LARGE = 200_000;
const RUNS = 7;
const GENERATIONS = 3;
const TEMP_BLOCK_BYTES = 8192;

interface Explained { ms: number; tempBytes: number }

async function explain(query: string, userId: string): Promise<Explained> {
  const [row] = await sql.unsafe<{ 'QUERY PLAN': [{ Plan: Record<string, number>; 'Execution Time': number }] }[]>(
    `explain (analyze, buffers, format json) ${query}`, [userId]);
  const [{ Plan: plan, 'Execution Time': ms }] = row['QUERY PLAN'];
  return { ms, tempBytes: ((plan['Temp Written Blocks'] ?? 0) + (plan['Local Written Blocks'] ?? 0)) * TEMP_BLOCK_BYTES };
}

const BOUNDED = 'select * from private.memories_for_prompt($1::uuid)';
// What memories_for_prompt ran before (20261125 as of 2026-12-02): every active memory ranked
// with window functions, then cut at the budget.
const FULL_RANKING = `
  with s as (select prompt_char_budget, memory_char_cap from private.settings),
  ranked as (
    select m.id, left(m.content, s.memory_char_cap) as content, m.created_at, m.importance,
      count(*) over () as total,
      sum(least(length(m.content), s.memory_char_cap)) over (
        order by private.memory_rank(m.importance, m.created_at) desc, m.created_at desc, m.id
        rows unbounded preceding) as used,
      s.prompt_char_budget as budget
    from public.memories m, s
    where m.user_id = $1::uuid and m.state = 'active')
  select id, content, created_at, importance, total from ranked where used <= budget order by created_at desc`;

async function runs(query: string, userId: string, n: number): Promise<{ lat: number[]; temp: number }> {
  const lat: number[] = [];
  let temp = 0;
  for (let i = 0; i < n; i++) {
    const r = await explain(query, userId);
    lat.push(r.ms);
    temp = Math.max(temp, r.tempBytes);
  }
  return { lat, temp };
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(bytes ? 1 : 0)} MB`;

export async function measurePromptSelection(): Promise<void> {
  // The per-user memory limit (20,000 by default) is lifted for the size this measures.
  const restore = await overrideSettings(sql, { max_memories_per_user: LARGE + 1 });
  try {
    const [small, large] = await createDbUsers('prompt', 2);
    progress(`prompt selection: ${SMALL} and ${LARGE} memories (a third with an importance)`);
    await addMemories(sql, [small], SMALL);
    await addMemories(sql, [large], LARGE);
    await sql`analyze public.memories`;

    const s = await runs(BOUNDED, small, RUNS);
    const l = await runs(BOUNDED, large, RUNS);
    progress('prompt selection: the full ranking it replaced, once, as a reference');
    const full = await runs(FULL_RANKING, large, 1);
    const ss = summarize(s.lat);
    const sl = summarize(l.lat);
    rows.push({
      key: 'prompt_small', measurement: `memories_for_prompt, ${SMALL.toLocaleString('en')} memories`, n: RUNS, errors: 0,
      latency: ss, rate: null, measured: `${tail(ss).name} ${tail(ss).ms?.toFixed(1)} ms, temp ${mb(s.temp)}`, target: 'reference', verdict: '—',
    });
    const t = tailWithin(sl, 100);
    rows.push({
      key: 'prompt_large', measurement: `memories_for_prompt, ${LARGE.toLocaleString('en')} memories`, n: RUNS, errors: 0,
      latency: sl, rate: null, measured: `${t.measured}, temp ${mb(l.temp)}`, target: `${t.target}, no temp spill`,
      verdict: t.ok && l.temp === 0 ? 'PASS' : 'MISS', detail: { temp_bytes: l.temp },
    });
    rows.push({
      key: 'prompt_full_ranking', measurement: `the full ranking it replaced, ${LARGE.toLocaleString('en')} memories`, n: 1, errors: 0,
      latency: summarize(full.lat), rate: null,
      measured: `${full.lat[0].toFixed(0)} ms, temp ${mb(full.temp)}`, target: 'reference', verdict: '—',
    });

    progress(`prompt selection: ${GENERATIONS} generations of the ${LARGE}-memory user through the queue`);
    const lat: number[] = [];
    let bad = 0;
    for (let i = 0; i < GENERATIONS; i++) {
      const [j] = await sql<{ job_id: number }[]>`select job_id::int from private.enqueue_job(${large}::uuid, 'manual')`;
      await pollJobs([j.job_id], 60_000);
      const t = (await jobTimings([j.job_id])).get(j.job_id);
      if (t?.status === 'succeeded' && t.ms !== null) lat.push(t.ms);
      else bad++;
    }
    const sg = summarize(lat);
    checkErrors(`generation of a ${LARGE}-memory user`, GENERATIONS, bad, 'not succeeded');
    const tg = tailWithin(sg, 2000, 's');
    rows.push({
      key: 'generation_large', measurement: `enqueue → stored, ${LARGE.toLocaleString('en')}-memory user (instant fake)`, n: GENERATIONS,
      errors: bad, latency: sg, rate: null, measured: tg.measured, target: tg.target, verdict: tg.ok && bad === 0 ? 'PASS' : 'MISS',
    });
  } finally {
    await restore();
  }
}
