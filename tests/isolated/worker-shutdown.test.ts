// The platform stops a worker at its wall clock (hosted: 150 s free, 400 s paid), warning it first
// with `beforeunload` (reason wall_clock, at 90 %). A generation still running then must not hold
// its job until the lease expires: generate-narrative fails it as worker_shutdown, due at once,
// with what it had spent, and the dispatch sends it to another worker. The local runtime runs the
// edge runtime's wall-clock schedule when LOCAL_RUNTIME_WALL_CLOCK_MS is set (local/runtime/workers.ts),
// so this restarts it with a short one: alone, in tests/isolated.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { ROOT, RUN_DIR } from '../../local/config.ts';
import { logSince, logSize, stopService } from '../../local/processes.ts';
import { fakeGeminiControl } from '../../local/fakes/gemini.ts';
import { addMemories, enqueue, job, makeUser, marker, waitForJob } from '../helpers/pipeline.ts';
import { FAKE_GEMINI_URL } from '../../local/config.ts';
import { db } from '../helpers/stack.ts';

const WALL_CLOCK_MS = 10_000;
const sql = db(2);
const fake = fakeGeminiControl(FAKE_GEMINI_URL);

function startRuntime(envFile: string, wallClockMs: number | null) {
  const env = { ...process.env };
  if (wallClockMs === null) delete env.LOCAL_RUNTIME_WALL_CLOCK_MS;
  else env.LOCAL_RUNTIME_WALL_CLOCK_MS = String(wallClockMs);
  execFileSync('npx', ['tsx', 'local/cli.ts', 'start', '--functions-env', envFile], { cwd: ROOT, stdio: 'pipe', env });
}

// The test env with a long provider deadline, written for this file's runtime and removed after it.
const envFile = path.join(RUN_DIR, 'functions.worker-shutdown.env');

afterAll(async () => {
  await stopService('runtime');
  startRuntime('tests/functions.env', null);
  fs.rmSync(envFile, { force: true });
  await sql.end({ timeout: 2 });
});

it('a worker stopped at its wall clock hands its running job back at once (worker_shutdown), with what it spent', async () => {
  // The test env, with a provider deadline longer than the worker's life: only the wall clock ends the attempt.
  fs.writeFileSync(envFile, `${fs.readFileSync(path.join(ROOT, 'tests/functions.env'), 'utf8')}\nNARRATIVE_LLM_TIMEOUT_MS=120000\n`);
  await stopService('runtime');
  startRuntime(envFile, WALL_CLOCK_MS);
  const logStart = logSize('runtime');

  // First answer cut at MAX_TOKENS (paid for), its retry never answers; the next attempt succeeds.
  const m = marker();
  await fake.scenario(m, [{ kind: 'truncated' }, { kind: 'hang' }, { kind: 'ok' }]);
  const userId = await makeUser(sql);
  await addMemories(sql, userId, 6, `I work on ${m}`);
  const { job_id } = await enqueue(sql, userId);
  await fake.waitForCalls(m, 2);
  const first = await job(sql, job_id);
  expect(first.status, 'claimed, generating (the retry after MAX_TOKENS hangs)').toBe('running');
  expect(first.attempts, 'first attempt').toBe(1);

  const done = await waitForJob(sql, job_id, (j) => j.status === 'succeeded' || j.status === 'failed',
    'handed back at the wall clock and run again', WALL_CLOCK_MS + 20_000);
  const log = logSince('runtime', logStart) ?? '';
  expect(log, 'the stand-in warned its worker as the edge runtime does').toMatch(/"msg":"beforeunload","reason":"wall_clock"/);
  expect(log, 'generate-narrative cancelled the running generation').toMatch(/"msg":"worker_shutdown","reason":"wall_clock","generations_cancelled":1/);
  expect(done.status, 'the job was run again and succeeded').toBe('succeeded');
  expect(done.last_error_code, 'the lost attempt says why').toBe('worker_shutdown');
  expect(done.attempts, 'one more attempt, not a failure').toBe(2);
  expect(done.started_at!.getTime(), 'the second attempt did not wait for the first one\'s lease')
    .toBeLessThan(first.locked_until!.getTime());
  expect(done.provider_calls, 'the cut answer of the stopped attempt is on the row, with the second attempt\'s').toBe(2);
  expect((await fake.calls(m)).length, 'cut answer, hung retry, then the second attempt\'s answer').toBe(3);
  const [n] = await sql<{ version: number }[]>`select version from user_narratives where user_id = ${userId}`;
  expect(n?.version, 'stored once').toBe(1);
});
