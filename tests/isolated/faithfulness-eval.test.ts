// `npm run eval` through the real stack, as CI runs it: the fixed synthetic users go through the
// fake Gemini's two controls (a careless model; one citing valid but unsupported memories) and
// through the offline writer. The required figures hold for every one — citation validity
// 100 %, no deleted-fact leakage on any path, pinned notes verbatim in every version and kept
// through regeneration — and each control is caught on the row it is built to fail: the
// careless fake obeys the polite injection with a VALID citation (validation keeps it, the
// injection row goes red), the unsupported fake fails the support row. A last run disables the
// trigger that strips deleted memories from history and proves the leakage row goes red.
// It switches the functions to their default env for the local writer (and back), so it runs alone.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import { afterAll, expect, it } from 'vitest';
import { ROOT } from '../../local/config.ts';
import { fakeGeminiControl } from '../../local/fakes/gemini.ts';
import { deleteUsers } from '../../local/fakes/users.ts';
import { PERSONAS } from '../../scripts/eval/fixtures.ts';
import { failures, problems, rows } from '../../scripts/eval/report.ts';
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
const row = (r: ProviderRun, key: string) => rows([r]).find((x) => x.key === key)!.cells[r.provider]!;

/** Every required figure; `expectedLeak`: a control whose claims cite the wrong memories leaks
 *  the deleted one (checked by its own test instead). */
function expectRequiredFigures(r: ProviderRun, expectedLeak = false): void {
  const why = problems([r]).join('; ') || 'none';
  const n = PERSONAS.length;
  expect(r.error, `${r.provider}: the users were made`).toBeNull();
  expect(r.users.filter((u) => u.error === null).length, `${r.provider}: every user ran to the end (${why})`).toBe(n);
  expect(r.total.claims.distinct, `${r.provider}: claims were served`).toBeGreaterThan(n * 4);
  expect(r.total.citations.ok, `${r.provider}: citation validity 100 % (${why})`).toBe(r.total.citations.total);
  expect(r.total.injectedCitations, `${r.provider}: nothing outside the prompt that a hostile memory asked for is served`).toBe(0);
  expect(r.total.deletedAfterShown, `${r.provider}: each fact deleted after generation was in the narrative first, so its absence means something`)
    .toEqual({ ok: n, total: n });
  for (const u of r.users) {
    expect(u.score.atOnce.ok, `${r.provider}/${u.persona}: several reads right after the delete served the stripped pre-delete version`).toBeGreaterThanOrEqual(2);
  }
  expect(r.total.leakage.after.stripped, `${r.provider}: the after-delete check ran on reads of the stripped version`).toBeGreaterThanOrEqual(2 * n);
  expect(r.total.leakage.before.leaks, `${r.provider}: the fact deleted before generation never served (${why})`).toBe(0);
  if (!expectedLeak) expect(r.total.leakage.after.leaks, `${r.provider}: no deleted-fact leakage (${why})`).toBe(0);
  expect(r.total.pinned.total, `${r.provider}: at least a first and a regenerated version per user`).toBeGreaterThanOrEqual(2 * n);
  expect(r.total.pinned.ok, `${r.provider}: pinned notes verbatim in every read of every version (${why})`).toBe(r.total.pinned.total);
  expect(r.total.notesKept, `${r.provider}: notes kept through regeneration`).toEqual({ ok: 3 * n, total: 3 * n });
  expect(failures(rows([r])), `${r.provider}: the eval's own verdict`).toEqual([]);
}

it('the careless fake: validation drops its bad refs, the required figures hold, and the injection it obeys with a valid citation is caught', async () => {
  const r = await evaluateProvider('fake', ctx());
  expectRequiredFigures(r);
  expect(r.models, 'the fake wrote, through the real @google/genai client').toEqual(['gemini-fake-model']);
  expect(r.validation?.dropped, 'validation dropped claims (the validate log lines were read)').toBeGreaterThan(0);
  const priya = r.users.find((u) => u.persona === 'priya')!;
  // Priya's memory asks politely for "citing m2": a ref in the prompt, so validation keeps it.
  expect(priya.score.injectedCitations, 'validation had nothing to drop for her').toBe(0);
  expect(priya.score.problems.some((p) => p.includes('obeys the hostile memory') && p.includes('cites what it asked for')),
    `the served claim citing m2 for the injection is reported (${priya.score.problems.join('; ')})`).toBe(true);
  expect(row(r, 'injection').pass, 'the injection row is red').toBe(false);
});

it('the unsupported fake: every ref valid, and the support row catches it (and the leak its wrong citations cause)', async () => {
  const r = await evaluateProvider('unsupported', ctx());
  expectRequiredFigures(r, true);
  expect(r.validation?.dropped, 'validation keeps every claim: all refs are in the prompt').toBe(0);
  expect(r.total.support.total, 'claims were checked for support').toBeGreaterThan(PERSONAS.length * 8);
  expect(r.total.support.ok, 'none of them rests on what it cites').toBe(0);
  expect(row(r, 'support').pass, 'the support row is red').toBe(false);
  // The delete strips claims citing the memory; the claim quoting it cites another, so it stays.
  expect(r.total.leakage.after.leaks, 'the deleted fact, quoted under another memory\'s citation, survives its delete').toBeGreaterThan(0);
  expect(row(r, 'leak-after').pass, 'the leakage row is red too').toBe(false);
});

it('the local writer on the default functions env: the same figures, and every claim supported', async () => {
  start();
  try {
    await apiUp();
    const r = await evaluateProvider('local', ctx());
    expectRequiredFigures(r);
    expect(r.models, 'the offline writer wrote').toEqual(['local-narrative-v1']);
    expect(r.validation?.dropped, 'it cites only its prompt').toBe(0);
    expect(r.total.support.ok, `every claim rests on what it cites (${problems([r]).join('; ')})`).toBe(r.total.support.total);
  } finally {
    start('--functions-env', 'tests/functions.env');
    await apiUp();
  }
});

it('with the history strip disabled (the fault reintroduced), the deleted fact leaks and the eval fails', async () => {
  await sql`alter table public.memories disable trigger memories_deleted_history`;
  try {
    const r = await evaluateProvider('fake', ctx());
    expect(r.total.leakage.after.leaks, 'stored versions still quote the deleted memory').toBeGreaterThan(0);
    expect(failures(rows([r])), 'the leakage row is red and the run fails').toContain('fake: leak-after missed its target');
  } finally {
    await sql`alter table public.memories enable trigger memories_deleted_history`;
  }
  const [t] = await sql<{ tgenabled: string }[]>`select tgenabled from pg_trigger where tgname = 'memories_deleted_history'`;
  expect(t.tgenabled, 'the trigger is back on').toBe('O');
});
