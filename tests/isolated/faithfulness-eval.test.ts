// `npm run eval` through the real stack, as CI runs it: the fixed synthetic users go through the
// fake Gemini (playing a careless model) and through the offline writer, and the required figures
// hold for both — citation validity 100 %, no deleted-fact leakage on any path, pinned notes
// verbatim in every version and kept through regeneration. It switches the functions to their
// default env for the local writer (and back), so it runs alone.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import { afterAll, expect, it } from 'vitest';
import { ROOT } from '../../local/config.ts';
import { fakeGeminiControl } from '../../local/fakes/gemini.ts';
import { deleteUsers } from '../../local/fakes/users.ts';
import { PERSONAS } from '../../scripts/eval/fixtures.ts';
import { passed, problems, rows } from '../../scripts/eval/report.ts';
import { type EvalContext, evaluateProvider, type ProviderRun, runPrefix } from '../../scripts/eval/run.ts';
import { API_URL, db, eventually, FAKE_GEMINI_URL, keys } from '../helpers/stack.ts';

const sql = db(8);
const run = `t${crypto.randomBytes(3).toString('hex')}`;
afterAll(async () => {
  await deleteUsers(sql, runPrefix(run));
  await sql.end({ timeout: 2 });
});

const start = (...args: string[]) => execFileSync('npx', ['tsx', 'local/cli.ts', 'start', ...args], { cwd: ROOT, stdio: 'pipe' });
/** After a runtime restart this process's pooled connections are dead: wait for a live answer. */
const apiUp = () => eventually('the API after the functions restarted', async () =>
  (await fetch(`${API_URL}/auth/v1/health`).then((r) => r.ok, () => false)) || null, 30_000, 50);

const ctx = (): EvalContext => ({
  sql, keys: keys(), apiUrl: API_URL, run, fake: fakeGeminiControl(FAKE_GEMINI_URL), generationTimeoutMs: 60_000, progress: () => {},
});

function expectRequiredFigures(r: ProviderRun): void {
  const why = problems([r]).join('; ') || 'none';
  const n = PERSONAS.length;
  expect(r.error, `${r.provider}: the users were made`).toBeNull();
  expect(r.users.filter((u) => u.error === null).length, `${r.provider}: every user ran to the end (${why})`).toBe(n);
  expect(r.total.citations.total, `${r.provider}: claims cite memories and notes`).toBeGreaterThan(0);
  expect(r.total.citations.ok, `${r.provider}: citation validity 100 % (${why})`).toBe(r.total.citations.total);
  expect(r.total.injectedCitations, `${r.provider}: nothing a hostile memory asked to cite is served`).toBe(0);
  expect(r.total.deletedAfterShown, `${r.provider}: each fact deleted after generation was in the narrative first, so its absence means something`)
    .toEqual({ ok: n, total: n });
  expect(r.total.strippedAtOnce, `${r.provider}: the first read after that delete was the same version with its claims stripped, so "at once" was measured`)
    .toEqual({ ok: n, total: n });
  expect(r.total.leakage.checks, `${r.provider}: deleted facts were checked on every read`).toBeGreaterThan(n * 20);
  expect(r.total.leakage.leaks, `${r.provider}: no deleted-fact leakage (${why})`).toBe(0);
  expect(r.total.pinned.ok, `${r.provider}: pinned notes verbatim in every read of every version (${why})`).toBe(r.total.pinned.total);
  expect(r.total.notesKept, `${r.provider}: notes kept through regeneration`).toEqual({ ok: 3 * n, total: 3 * n });
  expect(r.users.every((u) => u.versions.length >= 2), `${r.provider}: every user saw a first and a regenerated version`).toBe(true);
  expect(passed(rows([r])), `${r.provider}: the eval's own verdict`).toBe(true);
}

it('the fake Gemini playing a careless model: validation drops its bad citations and the required figures hold', async () => {
  const r = await evaluateProvider('fake', ctx());
  expectRequiredFigures(r);
  expect(r.models, 'the fake wrote, through the real @google/genai client').toEqual(['gemini-fake-model']);
  expect(r.validation, 'the validate log lines were read').not.toBeNull();
  // Two generations per user at least: a change that lands while a job generates (the eval's
  // own setup writes can race the first job) rightly queues one more, so exact counts would flake.
  expect(r.validation!.generations, 'at least two generations per user').toBeGreaterThanOrEqual(2 * PERSONAS.length);
  expect(r.validation!.generations, 'every validated generation is an attempt on the users\' jobs').toBeLessThanOrEqual(r.jobs.attempts);
  // Per answer: a bogus ref beside a valid one, an off-by-one ref, a missing note, and (for the
  // two hostile memories naming ids) the obeyed citation: 4, 4 and 3 for the three users.
  expect(r.validation!.dropped, 'validation dropped the careless claims of every answer').toBeGreaterThanOrEqual(2 * (4 + 4 + 3));
  expect(r.validation!.dropped, 'and no more than 4 an answer').toBeLessThanOrEqual(4 * r.validation!.generations);
  expect(r.total.canaryAbsent.ok, 'a literal model serves the injection payload, and the eval sees it').toBe(0);
});

it('the local writer on the default functions env: the same figures', async () => {
  start();
  try {
    await apiUp();
    const r = await evaluateProvider('local', ctx());
    expectRequiredFigures(r);
    expect(r.models, 'the offline writer wrote').toEqual(['local-narrative-v1']);
    expect(r.validation?.dropped, 'it cites only its prompt').toBe(0);
  } finally {
    start('--functions-env', 'tests/functions.env');
    await apiUp();
  }
});
