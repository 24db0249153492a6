// `npm run bench`: the performance targets (docs/targets.md), measured against the running local stack in one run.
//
//   npm run bench [-- --duration S] [-- --json FILE] [-- --skip hits,split,steady,miss,enqueue,pipeline,slow,lanes,exact,prompt,backfill]
//
// Prints one table on stdout (progress goes to stderr); --json FILE writes it as JSON, which
// docs/figures/bench.json holds and `npm run docs:figures` renders into docs/performance.md. HTTP load comes from autocannon
// (programmatic API, load.ts); the ceiling is a raw primary-key read from Postgres with
// postgres.js (hits.ts). Every user the bench creates is named bench-<run>-…@bench.test and
// deleted at the end (also on failure or Ctrl-C). The 100,000-user backfill runs inside a
// transaction that is rolled back, so none of its jobs is ever dispatched. Exit 1 if any
// measured run has more than 1 % errors. Other options: --users N (cache-hit users, 50),
// --connections N (64), --api-url URL (another functions runtime).
//
// One file per step: options, fixtures (users, memories, cleanup), narratives (the cache-hit
// users' production-shaped memories, notes and claims), load (autocannon), provider
// (the fake Gemini), hits (+ the raw-read ceiling), split (CPU per hit by component, from an
// inspector profile of the runtime: it restarts the runtime twice), steady, miss, pipeline, lanes (lanes, exact),
// prompt (selection at 200,000 memories), backfill, report.
import { useFunctionsEnv } from '../../local/functions-env.ts';
import { API, CONNS, D, RUN, benchStarted, opts, progress } from './options.ts';
import { failedRuns, notes, shapes, writeReport } from './report.ts';
import { machineInfo } from '../machine.ts';
import { describeShape, storeShapedNarratives } from './narratives.ts';
import { state } from './load.ts';
import { cleanup, createApiUser, deleteBenchUsers, liftRequestLimits, mapLimit, sql } from './fixtures.ts';
import { ensureProvider, releaseProvider } from './provider.ts';
import { measureHits, measureRawReads, preflight, ratioRows } from './hits.ts';
import { measureSteady } from './steady.ts';
import { measureCpuSplit } from './split.ts';
import { measureMiss } from './miss.ts';
import { measureEnqueue, measurePipeline, measureSlowProvider } from './pipeline.ts';
import { measureBackfill } from './backfill.ts';
import { measureExactDispatch, measureLanes } from './lanes.ts';
import { measurePromptSelection } from './prompt.ts';

// A closed pipe (e.g. `npm run bench | head`) must not kill the bench before it cleans up.
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    progress(`${sig}: cleaning up`);
    cleanup(releaseProvider).finally(() => process.exit(130));
  });
}

function httpStepFailed(err: unknown): null {
  if (!state.httpBroken) throw err;
  progress(`HTTP step failed: ${(err as Error).message}`);
  return null;
}

async function main(): Promise<number> {
  const started = new Date();
  const machineAtStart = machineInfo();
  progress(`run ${RUN}: duration ${D} s per measurement, ${CONNS} connections, ${opts.users} users`);
  const [{ ok }] = await sql<{ ok: number }[]>`select 1 as ok`;
  if (ok !== 1) throw new Error('database not reachable');
  const health = await fetch(`${API}/auth/v1/health`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status).catch(() => 0);
  if (health !== 200) throw new Error(`the API does not answer on ${API} (npm start)`);

  await liftRequestLimits();

  // Cache-hit users: real accounts and access tokens, memories, notes and a stored narrative each,
  // shaped like production's (narratives.ts).
  progress(`creating ${opts.users} users through the Auth admin API and signing them in`);
  const users = await mapLimit(Array.from({ length: opts.users }, (_, i) => i), 4, (i) => createApiUser(`hit-${i}`));
  const ids = users.map((u) => u.id);
  progress('storing production-shaped memories, notes and a narrative with claims for each');
  const shape = await storeShapedNarratives(sql, ids);

  progress('preflight: one cache-hit orchestrate and one GET narrative');
  await preflight(users[0]).then((bodies) => {
    shapes.cache_hit = { ...shape, response_body_bytes: bodies };
    notes.push(describeShape(shape, bodies));
  }, (err: Error) => {
    state.httpBroken = err.message;
    failedRuns.push(`preflight: ${err.message}`);
    notes.push(`ABORTED HTTP steps: ${err.message}`);
    progress(`${err.message} — skipping the HTTP steps`);
  });
  const hits = !opts.skip.has('hits');
  const hitO = state.httpBroken || !hits ? null : await measureHits(users, 'orchestrate').catch(httpStepFailed);
  const hitN = state.httpBroken || !hits ? null : await measureHits(users, 'narrative').catch(httpStepFailed);
  const raw = hits ? await measureRawReads(ids) : null;
  if (raw) ratioRows([{ name: 'orchestrate', row: hitO?.row }, { name: 'narrative', row: hitN?.row }], raw);
  if (hitO && raw && !opts.skip.has('split') && !state.httpBroken) await measureCpuSplit(users);
  if (!opts.skip.has('steady') && !state.httpBroken) await measureSteady(users);
  if (!opts.skip.has('miss') && !state.httpBroken) await measureMiss();

  if (['enqueue', 'pipeline', 'slow', 'lanes', 'exact', 'prompt'].some((k) => !opts.skip.has(k))) {
    // Generation runs against the fake Gemini (instant answers); the default env is put back
    // when the bench ends, however it ends.
    useFunctionsEnv('tests/functions.env');
    const provider = await ensureProvider();
    progress(`provider for generation: ${provider}`);
    try {
      if (!opts.skip.has('enqueue')) await measureEnqueue(provider);
      if (!opts.skip.has('pipeline') && !state.pipelineBroken) await measurePipeline();
      if (!opts.skip.has('slow') && !state.pipelineBroken) await measureSlowProvider();
      if (!opts.skip.has('lanes')) await measureLanes();
      if (!opts.skip.has('exact')) await measureExactDispatch();
      if (!opts.skip.has('prompt')) await measurePromptSelection();
    } finally {
      await releaseProvider();
    }
  }
  // Bench users are deleted before the big transaction so its backfill does not see them.
  const deleted = await deleteBenchUsers();
  progress(`deleted the ${deleted} bench users made so far (before the backfill, so it does not count them)`);
  if (!opts.skip.has('backfill')) await measureBackfill();

  const [{ version }] = await sql<{ version: string }[]>`select current_setting('server_version') as version`;
  writeReport({
    run: RUN, started, totalS: (performance.now() - benchStarted) / 1000, durationS: D, connections: CONNS,
    postgresVersion: version, json: opts.json, machineAtStart,
  });
  if (opts.json) progress(`wrote ${opts.json}`);
  return failedRuns.length ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  progress(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  code = 1;
} finally {
  await cleanup(releaseProvider);
}
process.exit(code);
