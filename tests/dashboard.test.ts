// The dashboard in a real browser (Debian's Chromium through playwright-core) against the stack
// `npm start` serves on 127.0.0.1:54323: sign-in, every panel state, polling without a reload,
// Regenerate and its cooldown, a session surviving a reload, sign-out, error states, and safe
// rendering of model-written text; then the grounded narrative: a claim's sources and deleting
// one (the claim leaves the page, "Updating" until the new version), pinned notes, the notes
// editor and its limit, the history with diffs, the memories list with search and delete, all
// on a 375 px phone too. A screenshot of each state goes to test-results/screenshots/.
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { NARRATIVE_SECTIONS, PINNED_SECTION } from '../shared/narrative.ts';
import { fakeGeminiControl } from '../local/fakes/gemini.ts';
import { addMemories, enqueue, fastForward, marker, memoriesOf, narrative, waitForJob } from './helpers/pipeline.ts';
import { DASHBOARD_URL, FAKE_GEMINI_URL } from '../local/config.ts';
import { db } from './helpers/stack.ts';
import { createUser, type TestUser } from './helpers/users.ts';

const DASHBOARD = DASHBOARD_URL;
const SHOTS = path.join('test-results', 'screenshots');
const sql = db(4);
const fake = fakeGeminiControl(FAKE_GEMINI_URL);
let browser: Browser;

beforeAll(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', '--disable-quic', '--disable-sync'],
  });
});
afterAll(async () => {
  await browser?.close();
  await sql.end({ timeout: 2 });
});

/** A fresh browser context (no cookies, no localStorage) on the dashboard, closed after the test. */
async function openDashboard(viewport = { width: 1024, height: 900 }): Promise<Page> {
  // Dates on the page are formatted in the browser's locale and zone: fix both.
  const context = await browser.newContext({ viewport, locale: 'en-US', timezoneId: 'UTC' });
  onTestFinished(() => context.close());
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  onTestFinished(() => expect(errors, 'no uncaught errors in the page').toEqual([]));
  await page.goto(DASHBOARD);
  return page;
}

const shot = (page: Page, name: string, fullPage = true) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage });
const status = (page: Page) => page.locator('#status').innerText();
const meta = (page: Page) => page.locator('.meta-line').innerText();

async function waitForState(page: Page, state: string, timeout = 20_000): Promise<void> {
  try {
    await page.locator(`#panel[data-state="${state}"]:not([hidden])`).waitFor({ timeout });
  } catch (err) {
    const seen = await page.evaluate(() => ({
      state: document.getElementById('panel')?.dataset.state, status: document.getElementById('status')?.innerText,
    }));
    throw new Error(`panel never reached "${state}" (now ${JSON.stringify(seen)}): ${(err as Error).message}`);
  }
}

async function signIn(page: Page, user: TestUser): Promise<void> {
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#panel:not([hidden])').waitFor();
}

/** A user with `memories` memories mentioning `m` (a fake-Gemini scenario marker). */
async function userWith(memories: number, m = marker()): Promise<TestUser> {
  const user = await createUser();
  if (memories) await addMemories(sql, user.id, memories, `I keep notes about ${m} and hiking`);
  return user;
}

/** Generates version 1 through the pipeline (reason backfill, so Regenerate is not in cooldown). */
async function withNarrative(user: TestUser): Promise<void> {
  const { job_id } = await enqueue(sql, user.id, 'backfill');
  const j = await waitForJob(sql, job_id, (x) => x.status === 'succeeded' || x.status === 'failed', 'finish');
  expect(j.status, `the first narrative was generated (${j.last_error})`).toBe('succeeded');
}

describe('dashboard in Chromium', () => {
  it('signed out: a labelled sign-in form that works from the keyboard and says when the password is wrong', async () => {
    const user = await userWith(0);
    const page = await openDashboard();
    await page.locator('#signin-view:not([hidden])').waitFor();
    expect(await page.locator('#panel').isHidden(), 'no panel before signing in').toBe(true);
    await shot(page, 'signed-out');

    await page.getByLabel('Email').focus();
    await page.keyboard.type(user.email);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id), 'Tab goes to the password').toBe('password');
    await page.keyboard.type('not-the-password');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#signin-status').innerText(), { message: 'a wrong password is said plainly', timeout: 10_000 })
      .toBe('Wrong email or password.');
    expect(await page.locator('#signin-view').isVisible(), 'still on the form').toBe(true);
  });

  it('sign in shows an existing narrative: sections as headings, age, version, model; model text never becomes markup', async () => {
    const m = marker();
    // The provider answers claims (structured output); the narrative is their rendering.
    // Claim k states memory k (m1 the newest), so it rests on what it cites.
    const said: [number, string][] = [
      [0, 'A **careful** engineer with a _dry_ sense of humour. <img src=x onerror="window.__xss = 1"><script>window.__xss = 2</script>'],
      [1, 'Building a narrative cache'],
      [1, 'Moving a prototype to durable jobs'],
      [2, 'Be direct and concrete; lead with the answer, then the reasoning, and say what was not checked.'],
      [3, 'Reliability, honest error reporting and small interfaces come up again and again in their notes.'],
    ];
    const text = JSON.stringify({ claims: said.map(([section, t], k) => ({ section: NARRATIVE_SECTIONS[section], text: t, memory_refs: [`m${k + 1}`] })) });
    await fake.scenario(m, [{ kind: 'ok', text }]);
    const user = await createUser();
    await memoriesOf(sql, user.id, [...said.map(([, t]) => t), `I keep notes about ${m}`]);
    await withNarrative(user);

    const page = await openDashboard();
    await signIn(page, user);
    await waitForState(page, 'narrative');
    expect(await page.locator('#narrative-body h2').allInnerTexts(), 'the four sections are headings').toEqual([...NARRATIVE_SECTIONS]);
    const line = await meta(page);
    expect(line, 'age').toContain('Generated today');
    expect(line, 'version').toContain('version 1');
    expect(line, 'model (a backfill job: the bulk model of tests/functions.env)').toContain('gemini-fake-lite-model');
    expect(await page.locator('#stale-badge').isVisible(), 'fresh: no stale marker').toBe(false);
    expect(await page.locator('#narrative-body strong').allInnerTexts(), 'bold').toEqual(['careful']);
    expect(await page.locator('#narrative-body em').allInnerTexts(), 'italic').toEqual(['dry']);
    expect(await page.locator('#narrative-body li').count(), 'list items: one per claim').toBe(5);
    expect(await page.locator('#narrative-body img, #narrative-body script').count(), 'no element from model text').toBe(0);
    expect(await page.locator('#narrative-body').innerText(), 'the markup is shown as text').toContain('<img src=x onerror=');
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), 'nothing ran').toBeUndefined();
    expect(await page.getByRole('button', { name: 'Regenerate' }).isEnabled(), 'Regenerate is offered').toBe(true);
    await shot(page, 'narrative');
  });

  it('a user without a narrative sees "being written", then the narrative appears without a reload', async () => {
    const m = marker();
    await fake.scenario(m, [{ kind: 'ok' }]);
    await fake.hold(m);
    const user = await userWith(6, m);
    const page = await openDashboard();
    await signIn(page, user);
    await waitForState(page, 'writing', 10_000);
    expect(await status(page), 'says it is being written').toMatch(/being written/i);
    await shot(page, 'being-written');
    await page.evaluate(() => { (window as unknown as { __sameDocument: boolean }).__sameDocument = true; });
    await fake.release(m);

    await waitForState(page, 'narrative', 25_000);
    expect(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument), 'no reload happened').toBe(true);
    expect(await meta(page), 'the first version').toContain('version 1');
    expect(await page.locator('#narrative-body h2').first().innerText(), 'rendered').toBe(NARRATIVE_SECTIONS[0]);
  });

  it('a user with too few memories is told plainly that more are needed', async () => {
    const user = await userWith(2);
    const page = await openDashboard();
    await signIn(page, user);
    await waitForState(page, 'ineligible');
    expect(await status(page), 'needs more memories').toMatch(/at least 5 memories; 3 more memories needed/);
    expect(await page.getByRole('button', { name: 'Regenerate' }).isVisible(), 'nothing to regenerate').toBe(false);
    await shot(page, 'ineligible');
    const [{ n }] = await sql`select count(*)::int as n from narrative_jobs where user_id = ${user.id}`;
    expect(n, 'no job for an ineligible user').toBe(0);
  });

  it('a failed generation says so and offers Try again, which asks for a new one (POST)', async () => {
    const m = marker();
    await fake.scenario(m, [{ kind: 'blocked' }]);
    const user = await userWith(6, m);
    const page = await openDashboard();
    await signIn(page, user);
    await waitForState(page, 'failed');
    expect(await status(page), 'says generation failed').toMatch(/failed/i);
    const tryAgain = page.getByRole('button', { name: 'Try again' });
    expect(await tryAgain.isVisible(), 'Try again is offered').toBe(true);
    await shot(page, 'failed');

    await tryAgain.click();
    // Writing lasts at least until the first poll (1 s later), so it is seen before failing again.
    await waitForState(page, 'writing', 5_000);
    await expect.poll(async () => (await sql`select count(*)::int as n from narrative_jobs where user_id = ${user.id} and reason = 'manual'`)[0].n,
      { message: 'Try again queued a manual job', timeout: 10_000 }).toBe(1);
    await waitForState(page, 'failed');
    expect(await tryAgain.isVisible(), 'failed again (the fake still blocks), still offered').toBe(true);
  });

  it('Regenerate shows the job, swaps in version 2 when it lands, and a second ask shows the cooldown', async () => {
    const m = marker();
    await fake.scenario(m, [{ kind: 'ok' }]);
    const user = await userWith(6, m);
    await withNarrative(user);
    await fake.hold(m); // the regeneration waits on the provider until the page has shown it
    const page = await openDashboard();
    await signIn(page, user);
    await waitForState(page, 'narrative');
    expect(await meta(page), 'version 1 first').toContain('version 1');

    const regenerate = page.getByRole('button', { name: 'Regenerate' });
    await regenerate.click();
    await expect.poll(() => status(page), { message: 'shows the new job', timeout: 10_000 }).toMatch(/new version is (queued|being written)/);
    expect(await regenerate.isDisabled(), 'no second ask while one is running').toBe(true);
    expect(await page.locator('#narrative-body').isVisible(), 'the current version stays visible meanwhile').toBe(true);
    await shot(page, 'regenerating');
    await fake.release(m);

    await expect.poll(() => meta(page), { message: 'version 2 swapped in', timeout: 20_000 }).toContain('version 2');
    expect(await status(page), 'announced').toContain('Updated to version 2');
    expect(await regenerate.isEnabled(), 'can be asked again (the server decides)').toBe(true);

    await regenerate.click();
    await expect.poll(() => status(page), { message: 'the cooldown is shown', timeout: 10_000 }).toMatch(/You can ask again in [1-5] min/);
    expect(await regenerate.isDisabled(), 'disabled until then').toBe(true);
    await shot(page, 'cooldown');
    const [{ n }] = await sql`select count(*)::int as n from narrative_jobs where user_id = ${user.id} and reason = 'manual'`;
    expect(n, 'the refused ask queued nothing').toBe(1);
  });

  it('an out-of-date narrative carries a visible stale marker', async () => {
    const m = marker();
    // Version 1, then the refresh that reading a stale narrative queues fails: the marker stays.
    await fake.scenario(m, [{ kind: 'ok' }, { kind: 'blocked' }]);
    const user = await userWith(6, m);
    await withNarrative(user);
    await sql`update user_narratives set generated_at = now() - interval '10 days' where user_id = ${user.id}`;
    const page = await openDashboard();
    await signIn(page, user);
    await waitForState(page, 'narrative');
    expect(await page.locator('#stale-badge').isVisible(), 'stale marker shown').toBe(true);
    expect(await meta(page), 'its age').toContain('Generated 10 days ago');
    expect(await status(page), 'explained').toMatch(/out of date/i);
    await shot(page, 'stale');
  });

  it('the session survives a reload; Sign out returns to the form and forgets it', async () => {
    const user = await userWith(6);
    await withNarrative(user);
    const page = await openDashboard();
    await signIn(page, user);
    await waitForState(page, 'narrative');
    expect(await page.locator('#account-email').innerText(), 'who is signed in').toBe(user.email);

    await page.reload();
    await waitForState(page, 'narrative');
    expect(await page.locator('#signin-view').isHidden(), 'no sign-in form after the reload').toBe(true);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#signin-view:not([hidden])').waitFor();
    expect(await page.locator('#signin-status').innerText(), 'says so').toBe('You are signed out.');
    expect(await page.locator('#panel').isHidden(), 'panel gone').toBe(true);
    expect(await page.evaluate(() => document.activeElement?.id), 'focus on the email field').toBe('email');
    // The form shows at once; the session leaves storage when the server has answered the sign-out.
    // A reload before that would cancel the request and bring the session back.
    await expect.poll(() => page.evaluate(() => Object.keys(localStorage).filter((k) => k.endsWith('-auth-token'))),
      { message: 'the session leaves this browser', timeout: 10_000 }).toEqual([]);
    await page.reload();
    await page.locator('#signin-view:not([hidden])').waitFor();
    expect(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.endsWith('-auth-token'))), 'no stored session').toEqual([]);
  });

  it('is readable on a 375 px wide phone', async () => {
    const user = await userWith(6);
    await withNarrative(user);
    const page = await openDashboard({ width: 375, height: 812 });
    await signIn(page, user);
    await waitForState(page, 'narrative');
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    expect(width, 'no horizontal scrolling').toBeLessThanOrEqual(375);
    const box = await page.getByRole('button', { name: 'Regenerate' }).boundingBox();
    expect(box && box.x + box.width <= 375, 'Regenerate fits on screen').toBe(true);
    await shot(page, 'phone-narrative');
  });

  it('errors are shown, never a blank panel: 5xx and network down with Retry, 401 back to sign-in', async () => {
    const user = await userWith(6);
    await withNarrative(user);
    const page = await openDashboard();
    const fn = '**/functions/v1/narrative';

    // A 503 from the function (injected at the browser's network layer), then recovery.
    await page.route(fn, (route) => route.fulfill({
      status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'unavailable', message: 'down' } }),
    }));
    await signIn(page, user);
    await waitForState(page, 'error');
    expect(await status(page), '5xx').toContain('Something went wrong on our side (HTTP 503)');
    await shot(page, 'error-5xx');
    await page.unroute(fn);
    await page.getByRole('button', { name: 'Retry' }).click();
    await waitForState(page, 'narrative');
    expect(await page.getByRole('button', { name: 'Retry' }).isVisible(), 'Retry gone once it worked').toBe(false);

    // The network is down.
    await page.route(fn, (route) => route.abort('internetdisconnected'));
    await page.reload();
    await waitForState(page, 'error');
    expect(await status(page), 'network').toContain("Can't reach the server");
    await shot(page, 'error-network');
    await page.unroute(fn);
    await page.getByRole('button', { name: 'Retry' }).click();
    await waitForState(page, 'narrative');

    // A failing Regenerate while a narrative is shown: the narrative stays, the error and Retry show.
    await page.route(fn, (route) => (route.request().method() === 'POST'
      ? route.fulfill({ status: 500, contentType: 'application/json', body: '{"error":{"code":"internal_error","message":"x"}}' })
      : route.continue()));
    await page.getByRole('button', { name: 'Regenerate' }).click();
    await expect.poll(() => status(page), { message: 'the failed ask is shown', timeout: 10_000 }).toContain('(HTTP 500)');
    expect(await page.locator('#narrative-body').isVisible(), 'the narrative stays').toBe(true);
    expect(await page.getByRole('button', { name: 'Retry' }).isVisible(), 'Retry offered').toBe(true);
    expect(await page.getByRole('button', { name: 'Regenerate' }).isEnabled(), 'Regenerate usable again').toBe(true);
    await shot(page, 'error-regenerate-with-narrative');
    await page.unroute(fn);

    // A token the gateway rejects (signature broken in storage): 401 from the real gateway.
    await page.evaluate(() => {
      const key = Object.keys(localStorage).find((k) => k.endsWith('-auth-token'))!;
      const s = JSON.parse(localStorage.getItem(key)!);
      s.access_token = `${s.access_token.slice(0, -4)}AAAA`;
      localStorage.setItem(key, JSON.stringify(s));
    });
    await page.reload();
    await page.locator('#signin-view:not([hidden])').waitFor();
    expect(await page.locator('#signin-status').innerText(), '401 sends back to sign-in with a message').toMatch(/session has ended/i);
    await shot(page, 'session-ended');
  });
});

// ---------------------------------------------------------------------------------------------
// The grounded narrative: claims and their sources, notes, history, memories.

const [WHO, WORK, HOW, THEMES] = NARRATIVE_SECTIONS;
type Scripted = [section: string, text: string, refs: string[]][];

/** A fake-Gemini answer made of claims (`m1` is the newest memory in the prompt). */
const answer = (claims: Scripted) => ({
  kind: 'ok' as const, text: JSON.stringify({ claims: claims.map(([section, text, memory_refs]) => ({ section, text, memory_refs })) }),
});


/** A manual regeneration run now; waits until its version is stored. */
async function regenerateNow(user: TestUser): Promise<void> {
  const j = await enqueue(sql, user.id, 'manual');
  await fastForward(sql, j.job_id);
  const done = await waitForJob(sql, j.job_id, (x) => x.status === 'succeeded' || x.status === 'failed', 'finished', 20_000);
  expect(done.status, `regenerated (${done.last_error ?? ''})`).toBe('succeeded');
}

async function openTab(page: Page, name: string, panel: string): Promise<void> {
  await page.getByRole('tab', { name }).click();
  await page.locator(`#${panel}:not([hidden])`).waitFor();
}

/** The date the page shows for an instant (en-US, UTC: see openDashboard). */
const shownDate = (d: Date) => d.toLocaleDateString('en-US', { dateStyle: 'medium', timeZone: 'UTC' });
const focused = (page: Page) => page.evaluate(() => document.activeElement?.textContent?.trim() ?? null);
const notesStatus = (page: Page) => page.locator('#notes-status').innerText();
const dbNotes = async (user: TestUser) => sql<{ content: string; pinned: boolean }[]>`
  select content, pinned from narrative_notes where user_id = ${user.id} order by created_at, id`;

describe('the grounded narrative in Chromium', () => {
  it('a claim opens its sources (memory text and date); deleting one takes the claim off the page at once, "Updating" until the new version lands', async () => {
    const m = marker();
    await fake.scenario(m, [
      answer([[WHO, 'Sails on Lake Geneva most weekends.', ['m1']],
        [WORK, 'Builds a narrative cache on Supabase, with its jobs in Postgres.', ['m2', 'm3']],
        [HOW, 'Prefers short, direct answers.', ['m4']], [THEMES, 'Hikes in the Alps every summer.', ['m5']]]),
      answer([[WORK, 'Builds a narrative cache on Supabase.', ['m1']], [HOW, 'Prefers short, direct answers.', ['m3']],
        [THEMES, 'Hikes in the Alps every summer.', ['m4']]]),
    ]);
    const user = await createUser();
    const contents = ['I sail on Lake Geneva most weekends <b onclick="window.__xss=3">really</b>', 'I am building a narrative cache on Supabase',
      'Our jobs moved to Postgres with SKIP LOCKED', 'I prefer short, direct answers', 'I hike in the Alps every summer',
      `I read about durable queues (${m})`];
    const ids = await memoriesOf(sql, user.id, contents);
    await withNarrative(user);
    const page = await openDashboard();
    await signIn(page, user);
    await waitForState(page, 'narrative');
    const claims = page.locator('#narrative-body .claim');
    expect(await claims.count(), 'one item per claim').toBe(4);

    const work = page.getByRole('button', { name: /Builds a narrative cache/ });
    expect(await work.getAttribute('aria-expanded'), 'sources closed at first').toBe('false');
    expect(await work.innerText(), 'says what it rests on').toContain('Sources: 2 memories');
    await work.click();
    expect(await work.getAttribute('aria-expanded'), 'opened').toBe('true');
    const workSources = page.locator(`#${await work.getAttribute('aria-controls')} .source`);
    await expect.poll(() => workSources.count(), { message: 'both cited memories are shown', timeout: 10_000 }).toBe(2);
    expect(await workSources.locator('.source-text').allInnerTexts(), 'their text, in citation order').toEqual([contents[1], contents[2]]);
    const [mem] = await sql<{ created_at: Date }[]>`select created_at from memories where id = ${ids[1]}`;
    const time = workSources.first().locator('time');
    expect(await time.getAttribute('datetime'), 'its date, exactly').toBe(mem.created_at.toISOString());
    expect(await time.innerText(), 'shown as a date').toBe(shownDate(mem.created_at));

    // From the keyboard: Enter on the claim opens it.
    const sails = page.getByRole('button', { name: /Sails on Lake Geneva/ });
    await sails.focus();
    await page.keyboard.press('Enter');
    expect(await sails.getAttribute('aria-expanded'), 'Enter opens the sources').toBe('true');
    const sailSource = page.locator(`#${await sails.getAttribute('aria-controls')} .source`);
    await expect.poll(() => sailSource.locator('.source-text').innerText(), { message: 'the memory text', timeout: 10_000 }).toBe(contents[0]);
    expect(await page.locator('#narrative-body b').count(), 'markup in a memory stays text').toBe(0);
    await shot(page, 'claim-sources');

    // Delete the memory; its regeneration waits at the provider until the page has shown "Updating".
    await fake.hold(m);
    onTestFinished(async () => { await fake.release(m); });
    await sailSource.getByRole('button', { name: 'Delete memory' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete this memory?' });
    await dialog.waitFor();
    expect(await dialog.innerText(), 'the confirmation quotes the memory').toContain('I sail on Lake Geneva');
    expect(await focused(page), 'Cancel has the focus: Enter alone deletes nothing').toBe('Cancel');
    await shot(page, 'claim-delete-confirm');
    await dialog.getByRole('button', { name: 'Delete memory' }).click();
    await expect.poll(() => page.locator('#narrative-body').innerText(), { message: 'the claim leaves the page', timeout: 10_000 })
      .not.toContain('Sails on Lake Geneva');
    expect(await dialog.isVisible(), 'the dialog closed').toBe(false);
    expect(await claims.count(), 'the other claims stay').toBe(3);
    expect(await page.locator('#updating-badge').isVisible(), 'an "Updating" marker').toBe(true);
    expect(await status(page), 'said plainly').toContain('Memory deleted — updating your narrative');
    expect(await focused(page), 'the focus goes to where the claim was (its now empty section)').toBe(WHO);
    await shot(page, 'claim-deleted');
    const [row] = await sql<{ state: string }[]>`select state from memories where id = ${ids[0]}`;
    expect(row.state, 'the memory is deleted').toBe('deleted');
    const stored = await narrative(sql, user.id);
    expect(stored?.claims.some((c) => c.memory_ids.includes(ids[0])), 'no stored claim cites it').toBe(false);
    expect(stored?.partial, 'served partial while rewritten').toBe(true);

    const [job] = await sql<{ id: number; status: string }[]>`select id::int, status from narrative_jobs
      where user_id = ${user.id} and reason = 'memories_changed' and status in ('queued', 'running')`;
    expect(job, 'a regeneration is queued').toBeTruthy();
    if (job.status === 'queued') await fastForward(sql, job.id);
    await fake.waitForCalls(m, 2);
    await page.reload();
    await waitForState(page, 'narrative');
    expect(await page.locator('#updating-badge').isVisible(), 'still "Updating" while the new version is written (after a reload too)').toBe(true);
    expect(await page.locator('#narrative-body').innerText(), 'and still without the claim').not.toContain('Sails on Lake Geneva');
    await shot(page, 'claim-deleted-updating');
    await fake.release(m);
    await expect.poll(() => meta(page), { message: 'version 2 swapped in', timeout: 25_000 }).toContain('version 2');
    expect(await page.locator('#updating-badge').isVisible(), 'the marker is gone').toBe(false);
    expect(await status(page), 'announced').toContain('Updated to version 2');
    expect(await claims.count(), 'the new version\'s claims').toBe(3);
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), 'nothing ran').toBeUndefined();
  });

  it('a pinned note heads the narrative under "Pinned by you", opens as its own source, and deleting it takes the claim away', async () => {
    const user = await userWith(6);
    await sql`insert into narrative_notes (user_id, content, pinned) values (${user.id}, 'Call me Sam, never Samuel', true)`;
    await withNarrative(user);
    const page = await openDashboard();
    await signIn(page, user);
    await waitForState(page, 'narrative');
    expect(await page.locator('#narrative-body h2').first().innerText(), 'pinned notes come first').toBe(PINNED_SECTION);
    const pinned = page.getByRole('button', { name: /Call me Sam, never Samuel/ });
    expect(await pinned.innerText(), 'it rests on the note').toContain('Sources: your pinned note');
    await pinned.click();
    const source = page.locator(`#${await pinned.getAttribute('aria-controls')} .source`);
    await expect.poll(() => source.locator('.source-kind').innerText(), { message: 'the note is the source', timeout: 10_000 }).toBe('Your pinned note');
    expect(await source.locator('.source-text').innerText(), 'its text').toBe('Call me Sam, never Samuel');
    await source.getByRole('button', { name: 'Delete note' }).click();
    await page.getByRole('dialog', { name: 'Delete this note?' }).getByRole('button', { name: 'Delete note' }).click();
    await expect.poll(() => page.locator('#narrative-body h2').allInnerTexts(), { message: 'the pinned section goes with it', timeout: 10_000 })
      .toEqual([...NARRATIVE_SECTIONS]);
    expect(await dbNotes(user), 'the note is deleted').toEqual([]);
    expect(await focused(page), 'the focus lands on the panel heading (the section is gone)').toBe('Your narrative');
  });

  it('notes editor: one line, a counter to 500, add, pin, edit, delete; at the limit the server\'s error is shown', async () => {
    // The limit is the operator's setting (GET narrative/notes says it): start three below it.
    const [{ max }] = await sql<{ max: number }[]>`select max_notes as max from private.settings`;
    const user = await createUser();
    await sql`insert into narrative_notes (user_id, content) select ${user.id}::uuid, 'Older note #' || g from generate_series(1, ${max - 3}) g`;
    const page = await openDashboard();
    await signIn(page, user);
    await openTab(page, 'Notes', 'notes-view');
    expect(new URL(page.url()).hash, 'the view is in the URL').toBe('#notes');
    const notes = page.locator('#notes-list .note');
    await expect.poll(() => notes.count(), { message: 'the user\'s notes', timeout: 10_000 }).toBe(max - 3);
    expect(await page.locator('#notes-count').innerText(), 'how many of how many').toBe(`Your notes (${max - 3} of ${max})`);

    const input = page.getByLabel('New note');
    const add = page.getByRole('button', { name: 'Add note' });
    const counter = page.locator('#note-new-count');
    expect(await add.isDisabled(), 'nothing to add yet').toBe(true);
    await input.fill('x'.repeat(501));
    expect(await counter.innerText(), 'the counter says it is too long').toBe('501 / 500 — 1 over the limit');
    expect(await add.isDisabled(), 'and it cannot be added').toBe(true);
    expect(await input.getAttribute('aria-invalid'), 'marked invalid').toBe('true');
    await input.fill('Call me Sam\nplease');
    expect(await input.inputValue(), 'a line break becomes a space (a note is one line)').toBe('Call me Sam please');
    expect(await counter.innerText(), 'counted').toBe('18 / 500');
    await page.getByLabel('Pin to my narrative').check();
    await add.click();
    await expect.poll(() => notes.count(), { message: 'added to the list', timeout: 10_000 }).toBe(max - 2);
    expect((await dbNotes(user)).at(-1), 'stored pinned').toEqual({ content: 'Call me Sam please', pinned: true });
    expect(await input.inputValue(), 'the field is cleared').toBe('');
    expect(await notesStatus(page), 'said').toContain('Note added.');
    const sam = notes.filter({ has: page.locator('.item-text', { hasText: /^Call me Sam please$/ }) });
    expect(await sam.getByLabel('Pinned to my narrative').isChecked(), 'shown pinned').toBe(true);

    // Edit from the keyboard: Enter saves.
    await sam.getByRole('button', { name: 'Edit' }).click();
    const editor = page.getByRole('textbox', { name: 'Edit note' });
    expect(await editor.evaluate((e) => e === document.activeElement), 'the editor has the focus').toBe(true);
    await editor.fill('Call me Sam');
    await editor.press('Enter');
    await expect.poll(() => focused(page), { message: 'saved, the focus back on its Edit button', timeout: 10_000 }).toBe('Edit');
    expect((await dbNotes(user)).at(-1)?.content, 'stored').toBe('Call me Sam');
    expect(await notes.filter({ hasText: 'Call me Sam' }).locator('.item-text').innerText(), 'shown').toBe('Call me Sam');

    // Pin and unpin with the checkbox.
    const first = notes.filter({ has: page.locator('.item-text', { hasText: /^Older note #1$/ }) });
    await first.getByLabel('Pinned to my narrative').check();
    await expect.poll(async () => (await dbNotes(user)).find((n) => n.content === 'Older note #1')?.pinned, { message: 'pinned', timeout: 10_000 }).toBe(true);
    await expect.poll(() => first.getAttribute('class'), { message: 'shown pinned', timeout: 10_000 }).toContain('note-pinned');
    await notes.filter({ hasText: 'Call me Sam' }).getByLabel('Pinned to my narrative').uncheck();
    await expect.poll(async () => (await dbNotes(user)).at(-1)?.pinned, { message: 'unpinned', timeout: 10_000 }).toBe(false);

    // Up to the limit, then past it: the server's error, the text kept.
    for (const n of [max - 1, max]) {
      const text = `Note number ${n}`;
      await input.fill(text);
      await add.click();
      await expect.poll(() => notes.count(), { message: `${n} notes`, timeout: 10_000 }).toBe(n);
    }
    await input.fill('Note one too many');
    await add.click();
    const error = page.locator('#note-form-error');
    await expect.poll(() => error.innerText(), { message: 'the limit error', timeout: 10_000 }).toContain('Note not added: you have reached the limit');
    expect(await error.innerText(), 'the server\'s reason').toContain(`At most ${max} notes per user; delete one first.`);
    expect(await error.getAttribute('role'), 'announced at once').toBe('alert');
    expect(await dbNotes(user), 'nothing stored past the limit').toHaveLength(max);
    expect(await input.inputValue(), 'the text is kept to add later').toBe('Note one too many');
    await shot(page, 'notes-editor', false);

    // Delete one (confirmed), then the kept text goes in.
    await notes.filter({ has: page.locator('.item-text', { hasText: /^Older note #2$/ }) }).getByRole('button', { name: 'Delete' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete this note?' });
    expect(await dialog.innerText(), 'quotes the note').toContain('Older note #2');
    await dialog.getByRole('button', { name: 'Delete note' }).click();
    await expect.poll(() => notes.count(), { message: 'deleted', timeout: 10_000 }).toBe(max - 1);
    expect((await dbNotes(user)).map((n) => n.content), 'gone from the table').not.toContain('Older note #2');
    await add.click();
    await expect.poll(() => notes.count(), { message: 'room again', timeout: 10_000 }).toBe(max);
    expect(await error.innerText(), 'the error is cleared').toBe('');
    expect(await page.locator('#notes-list').innerText(), 'note text is never markup').not.toContain('undefined');
  });

  it('history: every version with date, reason, model, claim count and summary; any version opens its diff against the one before', async () => {
    const m = marker();
    await fake.scenario(m, [
      answer([[WHO, 'Alpha (m1).', ['m1']], [WORK, 'Bravo (m2).', ['m2']], [HOW, 'Charlie (m3).', ['m3']]]),
      answer([[WHO, 'Alpha (m1).', ['m1']], [WORK, 'Bravo (m2).', ['m2']], [THEMES, 'Delta (m4).', ['m4']]]),
      answer([[WHO, 'Alpha (m1).', ['m1']], [HOW, 'Echo (m5).', ['m5']], [WORK, 'Foxtrot (m6).', ['m6']],
        [THEMES, 'Delta (m4).', ['m4']]]),
    ]);
    // m1 is "Alpha memory", m2 "Bravo memory", ...: each claim rests on what it cites.
    const user = await createUser();
    await memoriesOf(sql, user.id, ['Alpha', 'Bravo', 'Charlie', 'Delta', 'Echo', 'Foxtrot'].map((w) => `${w} memory ${m}`));
    await withNarrative(user);
    await regenerateNow(user);
    await regenerateNow(user);
    const versions = await sql<{ version: number; model: string; claim_count: number; summary: string }[]>`
      select version, model, claim_count, summary from user_narrative_versions where user_id = ${user.id} order by version desc`;
    expect(versions.map((v) => v.version), 'fixture: three versions').toEqual([3, 2, 1]);

    const page = await openDashboard();
    await signIn(page, user);
    await openTab(page, 'History', 'history-view');
    const items = page.locator('#history-list .version');
    await expect.poll(() => items.count(), { message: 'every version, newest first', timeout: 10_000 }).toBe(3);
    for (const [i, v] of versions.entries()) {
      const text = await items.nth(i).locator('.version-toggle').innerText();
      expect(text, `version ${v.version}: number`).toContain(`Version ${v.version}`);
      expect(text, `version ${v.version}: model`).toContain(v.model);
      expect(text, `version ${v.version}: claim count`).toContain(`${v.claim_count} claims`);
      expect(text, `version ${v.version}: the summary`).toContain(v.summary);
      expect(text, `version ${v.version}: why`).toContain(v.version === 1 ? 'initial fill' : 'you asked');
    }

    const v2 = items.nth(1).locator('.version-toggle');
    await v2.click();
    const diff = page.locator(`#${await v2.getAttribute('aria-controls')}`);
    await expect.poll(() => diff.locator('.diff-heading').allInnerTexts(), { message: 'the diff of version 2', timeout: 10_000 })
      .toEqual(['Added (1)', 'Removed (1)']);
    expect(await diff.locator('.diff-caption').innerText(), 'against the version before').toBe('Compared with version 1:');
    expect(await diff.locator('.diff-list.diff-added .diff-text').allInnerTexts(), 'added').toEqual(['Delta (m4).']);
    expect(await diff.locator('.diff-list.diff-removed .diff-text').allInnerTexts(), 'removed').toEqual(['Charlie (m3).']);
    expect(await diff.locator('.diff-kept summary').innerText(), 'kept, folded').toBe('Kept (2)');
    await diff.locator('.diff-kept summary').click();
    expect((await diff.locator('.diff-list.diff-kept .diff-text').allInnerTexts()).sort(), 'kept').toEqual(['Alpha (m1).', 'Bravo (m2).']);

    // Version 3 from the keyboard; version 1 has nothing before it.
    const v3 = items.nth(0).locator('.version-toggle');
    await v3.focus();
    await page.keyboard.press('Enter');
    const diff3 = page.locator(`#${await v3.getAttribute('aria-controls')}`);
    await expect.poll(async () => (await diff3.locator('.diff-list.diff-added .diff-text').allInnerTexts()).sort(),
      { message: 'version 3 added', timeout: 10_000 }).toEqual(['Echo (m5).', 'Foxtrot (m6).']);
    expect(await diff3.locator('.diff-list.diff-removed .diff-text').allInnerTexts(), 'version 3 removed').toEqual(['Bravo (m2).']);
    const v1 = items.nth(2).locator('.version-toggle');
    await v1.click();
    const diff1 = page.locator(`#${await v1.getAttribute('aria-controls')} .diff-caption`);
    await expect.poll(() => diff1.innerText(),
      { message: 'the first version', timeout: 10_000 }).toBe('The first version: every claim in it is new.');
    await v1.click();
    expect(await v1.getAttribute('aria-expanded'), 'closes again').toBe('false');
    await shot(page, 'history-diff');
  });

  it('memories: newest first with Show more, search as you type, delete with a confirm; another user\'s never appear', async () => {
    const user = await createUser();
    const other = await createUser();
    await memoriesOf(sql, other.id, ['hiking with the other user']);
    await addMemories(sql, user.id, 22, 'A note about gardening');
    const hikes = await memoriesOf(sql, user.id, ['Hiking the Haute Route in July', 'New hiking boots, finally', 'Planning a <i>hike</i> with Sam']);
    const page = await openDashboard();
    await signIn(page, user);
    await openTab(page, 'Memories', 'memories-view');
    const items = page.locator('#memories-list .memory');
    const memStatus = () => page.locator('#memories-status').innerText();
    await expect.poll(() => items.count(), { message: 'a first page', timeout: 10_000 }).toBe(20);
    expect(await items.first().locator('.item-text').innerText(), 'newest first').toBe('Hiking the Haute Route in July');
    expect(await memStatus(), 'says there is more').toBe('20 memories, newest first — more below');
    await page.getByRole('button', { name: 'Show more' }).click();
    await expect.poll(() => items.count(), { message: 'the rest', timeout: 10_000 }).toBe(25);
    expect(await page.getByRole('button', { name: 'Show more' }).isVisible(), 'nothing more').toBe(false);

    await page.getByLabel('Search your memories').fill('hik');
    await expect.poll(() => memStatus(), { message: 'searched as typed', timeout: 10_000 }).toBe('3 memories match “hik”');
    expect(await items.locator('.item-text').allInnerTexts(), 'the caller\'s matches, newest first').toEqual(
      ['Hiking the Haute Route in July', 'New hiking boots, finally', 'Planning a <i>hike</i> with Sam']);
    expect(await page.locator('#memories-list i').count(), 'markup stays text').toBe(0);
    await shot(page, 'memories-search');

    await items.nth(1).getByRole('button', { name: 'Delete' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete this memory?' });
    expect(await dialog.innerText(), 'quotes it').toContain('New hiking boots, finally');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    expect(await items.count(), 'Cancel deletes nothing').toBe(3);
    expect(await focused(page), 'the focus is back on Delete').toBe('Delete');
    await items.nth(1).getByRole('button', { name: 'Delete' }).click();
    await dialog.getByRole('button', { name: 'Delete memory' }).click();
    await expect.poll(() => items.count(), { message: 'removed from the list', timeout: 10_000 }).toBe(2);
    expect(await memStatus(), 'said, with its effect on the narrative').toBe('Memory deleted.\nYour narrative did not rest on it.');
    const [row] = await sql<{ state: string }[]>`select state from memories where id = ${hikes[1]}`;
    expect(row.state, 'deleted').toBe('deleted');

    await page.getByLabel('Search your memories').fill('zebra');
    await page.getByLabel('Search your memories').press('Enter');
    await expect.poll(() => memStatus(), { message: 'no match', timeout: 10_000 }).toContain('No memories match “zebra”');
    expect(await items.count(), 'empty list').toBe(0);
  });

  it('every view works on a 375 px wide phone and from the keyboard: tabs with arrow keys, kept in the URL', async () => {
    const user = await userWith(6);
    await sql`insert into narrative_notes (user_id, content, pinned) values (${user.id}, 'Keep answers under five sentences, and lead with the answer.', true)`;
    await withNarrative(user);
    const page = await openDashboard({ width: 375, height: 812 });
    await signIn(page, user);
    await waitForState(page, 'narrative');
    const noScroll = async (what: string) => expect(await page.evaluate(() => document.documentElement.scrollWidth), `${what}: no horizontal scrolling`)
      .toBeLessThanOrEqual(375);
    const tabs = page.getByRole('tab');
    expect(await tabs.allInnerTexts(), 'four views').toEqual(['Narrative', 'Notes', 'History', 'Memories']);
    expect(await tabs.evaluateAll((ts) => ts.every((t) => t.scrollWidth <= t.clientWidth)), 'no tab label is cut').toBe(true);

    const firstClaim = page.locator('.claim-toggle').nth(1);
    await firstClaim.click();
    const sources = page.locator(`#${await firstClaim.getAttribute('aria-controls')} .source`);
    await expect.poll(() => sources.count(), { message: 'sources', timeout: 10_000 }).toBe(1);
    await noScroll('a claim with its sources');
    await shot(page, 'phone-claim-sources');

    await page.getByRole('tab', { name: 'Narrative' }).focus();
    await page.keyboard.press('ArrowRight');
    await page.locator('#notes-view:not([hidden])').waitFor();
    expect(await page.getByRole('tab', { name: 'Notes' }).getAttribute('aria-selected'), 'ArrowRight selects Notes').toBe('true');
    expect(await focused(page), 'and focuses it').toBe('Notes');
    await expect.poll(() => page.locator('#notes-list .note').count(), { message: 'the note', timeout: 10_000 }).toBe(1);
    await noScroll('notes');
    await shot(page, 'phone-notes');
    await page.keyboard.press('ArrowRight');
    await page.locator('#history-view:not([hidden])').waitFor();
    await expect.poll(() => page.locator('#history-list .version').count(), { message: 'a version', timeout: 10_000 }).toBe(1);
    await page.locator('.version-toggle').click();
    await expect.poll(() => page.locator('.diff-caption').innerText(), { message: 'its diff', timeout: 10_000 }).toContain('first version');
    await noScroll('history');
    await shot(page, 'phone-history');
    await page.getByRole('tab', { name: 'History' }).focus();
    await page.keyboard.press('End');
    await page.locator('#memories-view:not([hidden])').waitFor();
    await expect.poll(() => page.locator('#memories-list .memory').count(), { message: 'memories', timeout: 10_000 }).toBe(6);
    await noScroll('memories');
    await shot(page, 'phone-memories');

    await page.reload();
    await page.locator('#memories-view:not([hidden])').waitFor();
    expect(await page.locator('#panel').isHidden(), 'a reload keeps the view (#memories)').toBe(true);
    await page.goBack();
    await page.locator('#history-view:not([hidden])').waitFor();
    expect(new URL(page.url()).hash, 'Back goes to the previous view').toBe('#history');
  });
});
