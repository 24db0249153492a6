// `npm run eval` through the real stack, as CI runs it: the fixed synthetic users go through the
// fake Gemini's two controls (a careless model; one adding to its honest claims a twin of each
// citing another memory) and through the offline writer. The required figures hold for every
// one — citation validity 100 %, every served claim resting on what it cites, no deleted-fact
// leakage on any path, pinned notes verbatim in every version and kept through regeneration —
// and each control is caught: the careless fake states the polite injection's payload under a
// valid citation (the injection row goes red), the unsupported fake's twins are dropped by
// validation's support check. Two runs reintroduce a fault and prove the eval goes red: the
// support check off (claim_support_min 0) lets the twin quoting a deleted memory outlive its
// delete, and the trigger that strips deleted memories from history disabled leaks too.
// Each column's figures that do not depend on timing must equal docs/figures/eval.json, which
// docs/faithfulness.md renders: the committed table is what the code does today.
// It switches the functions to their default env for the local writer (and back), so it runs alone.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { ROOT } from '../../local/config.ts';
import { fakeGeminiControl } from '../../local/fakes/gemini.ts';
import { deleteUsers } from '../../local/fakes/users.ts';
import { overrideSettings } from '../../local/settings.ts';
import { CLAIM_SUPPORT_MIN_DEFAULT } from '../../shared/support.ts';
import { PERSONAS } from '../../scripts/eval/fixtures.ts';
import { failures, fixedFigures, problems, rows, type Row } from '../../scripts/eval/report.ts';
import { type EvalContext, evaluateProvider, type ProviderRun, runPrefix } from '../../scripts/eval/run.ts';
import { API_URL, FAKE_GEMINI_URL } from '../../local/config.ts';
import { db, eventually, keys } from '../helpers/stack.ts';

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

const committed = JSON.parse(fs.readFileSync(path.join(ROOT, 'docs/figures/eval.json'), 'utf8')) as { rows: Row[] };

/** The column's timing-free figures are the committed ones (docs/faithfulness.md's table). */
function expectCommittedFigures(r: ProviderRun): void {
  expect(fixedFigures(rows([r]), r.provider),
    `${r.provider}: the figures docs/figures/eval.json holds (a change that moves them: npm run eval -- --json docs/figures/eval.json && npm run docs:figures)`)
    .toEqual(fixedFigures(committed.rows, r.provider));
}

/** Every required figure. */
function expectRequiredFigures(r: ProviderRun): void {
  const why = problems([r]).join('; ') || 'none';
  const n = PERSONAS.length;
  expect(r.error, `${r.provider}: the users were made`).toBeNull();
  expect(r.users.filter((u) => u.error === null).length, `${r.provider}: every user ran to the end (${why})`).toBe(n);
  expect(r.total.claims.distinct, `${r.provider}: claims were served`).toBeGreaterThan(n * 4);
  expect(r.total.citations.ok, `${r.provider}: citation validity 100 % (${why})`).toBe(r.total.citations.total);
  expect(r.supportMin, `${r.provider}: scored at the threshold validation used, the default`)
    .toEqual({ validation: CLAIM_SUPPORT_MIN_DEFAULT, scored: CLAIM_SUPPORT_MIN_DEFAULT });
  expect(r.total.support.ok, `${r.provider}: every served claim rests on what it cites (${why})`).toBe(r.total.support.total);
  expect(r.total.injectedCitations, `${r.provider}: nothing outside the prompt that a hostile memory asked for is served`).toBe(0);
  expect(r.total.deletedAfterShown, `${r.provider}: each fact deleted after generation was in the narrative first, so its absence means something`)
    .toEqual({ ok: n, total: n });
  for (const u of r.users) {
    expect(u.score.atOnce.ok, `${r.provider}/${u.persona}: several reads right after the delete served the stripped pre-delete version`).toBeGreaterThanOrEqual(2);
  }
  expect(r.total.leakage.after.stripped, `${r.provider}: the after-delete check ran on reads of the stripped version`).toBeGreaterThanOrEqual(2 * n);
  expect(r.total.leakage.before.leaks, `${r.provider}: the fact deleted before generation never served (${why})`).toBe(0);
  expect(r.total.leakage.after.leaks, `${r.provider}: no deleted-fact leakage (${why})`).toBe(0);
  expect(r.total.pinned.total, `${r.provider}: at least a first and a regenerated version per user`).toBeGreaterThanOrEqual(2 * n);
  expect(r.total.pinned.ok, `${r.provider}: pinned notes verbatim in every read of every version (${why})`).toBe(r.total.pinned.total);
  expect(r.total.notesKept, `${r.provider}: notes kept through regeneration`).toEqual({ ok: 3 * n, total: 3 * n });
  expect(failures(rows([r])), `${r.provider}: the eval's own verdict`).toEqual([]);
}

it('the careless fake: validation drops its bad refs and its unsupported citations, the required figures hold, and the injection it states is caught', async () => {
  const r = await evaluateProvider('fake', ctx());
  expectRequiredFigures(r);
  expectCommittedFigures(r);
  expect(r.models, 'the fake wrote, through the real @google/genai client').toEqual(['gemini-fake-model']);
  expect(r.validation?.dropped, 'validation dropped claims for their refs (the validate log lines were read)').toBeGreaterThan(0);
  // Priya's memory asks politely for "citing m2", a ref in the prompt: the claim obeying it
  // (the memory's text under m2) does not rest on m2, so the support check drops it.
  expect(r.validation?.droppedUnsupported, 'and as unsupported: the obeyed "citing m2", in each of Priya\'s generations').toBeGreaterThanOrEqual(2);
  const priya = r.users.find((u) => u.persona === 'priya')!;
  expect(priya.score.injectedCitations, 'nothing outside the prompt served for her').toBe(0);
  expect(priya.score.problems.some((p) => p.includes('cites what it asked for')), `no served claim cites m2 for it (${priya.score.problems.join('; ')})`).toBe(false);
  // What no validation can refuse: the hostile memory quoted as a claim citing itself.
  expect(priya.score.problems.some((p) => p.includes('obeys the hostile memory') && p.includes('states its payload')),
    `the payload stated under a valid, supporting citation is reported (${priya.score.problems.join('; ')})`).toBe(true);
  expect(row(r, 'injection').pass, 'the injection row is red').toBe(false);
});

it('the unsupported fake: every ref valid, its mis-cited twins dropped by validation, none served, nothing leaks', async () => {
  const r = await evaluateProvider('unsupported', ctx());
  expectRequiredFigures(r);
  expectCommittedFigures(r);
  expect(r.validation?.dropped, 'no claim dropped for its refs: all are in the prompt').toBe(0);
  // A twin per memory line and unpinned note: 10 + 2 in the first prompt, 9 + 2 after the delete.
  expect(r.validation?.droppedUnsupported, 'every twin dropped as unsupported').toBeGreaterThanOrEqual(PERSONAS.length * (12 + 11));
  expect(r.total.support.total, 'the honest claims were served and checked').toBeGreaterThan(PERSONAS.length * 8);
  expect(row(r, 'unsupported').pass, 'caught by validation').toBe(true);
});

it('with the support check off (claim_support_min 0), the unsupported fake\'s twins are served, the deleted fact leaks and the eval fails', async () => {
  const restore = await overrideSettings(sql, { claim_support_min: 0 });
  let r: ProviderRun;
  try {
    r = await evaluateProvider('unsupported', ctx());
  } finally {
    await restore();
  }
  const [s] = await sql<{ claim_support_min: number }[]>`select claim_support_min from private.settings`;
  expect(s.claim_support_min, 'the setting is back').toBe(CLAIM_SUPPORT_MIN_DEFAULT);
  expect(r.supportMin, 'scored at the default, the check off').toEqual({ validation: 0, scored: CLAIM_SUPPORT_MIN_DEFAULT });
  expect(r.validation?.droppedUnsupported, 'nothing dropped as unsupported').toBe(0);
  expect(r.total.support.ok, 'served claims that do not rest on what they cite').toBeLessThan(r.total.support.total);
  // The delete strips the claims citing the memory; the twin quoting it cites another, so it stays.
  expect(r.total.leakage.after.leaks, 'the deleted fact, quoted under another memory\'s citation, survives its delete').toBeGreaterThan(0);
  expect(failures(rows([r])), 'support and leakage red, the control not caught: the run fails').toEqual(expect.arrayContaining([
    'unsupported: unsupported did not catch the control', 'unsupported: support missed its target', 'unsupported: leak-after missed its target']));
});

it('the local writer on the default functions env: the same figures, and every claim supported', async () => {
  start();
  try {
    await apiUp();
    const r = await evaluateProvider('local', ctx());
    expectRequiredFigures(r);
    expectCommittedFigures(r);
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
