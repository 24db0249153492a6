// The dashboard in a real browser (Debian's Chromium through playwright-core) against the stack
// `npm start` serves on 127.0.0.1:54323: sign-in, every panel state, polling without a reload,
// Regenerate and its cooldown, a session surviving a reload, sign-out, error states, and safe
// rendering of model-written markdown. A screenshot of each state goes to test-results/screenshots/.
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { NARRATIVE_SECTIONS } from '../shared/narrative.ts';
import { fakeGeminiControl } from './helpers/fake-gemini.ts';
import { addMemories, enqueue, marker, waitForJob } from './helpers/pipeline.ts';
import { DASHBOARD_URL, db, FAKE_GEMINI_URL } from './helpers/stack.ts';
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
  const context = await browser.newContext({ viewport });
  onTestFinished(() => context.close());
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  onTestFinished(() => expect(errors, 'no uncaught errors in the page').toEqual([]));
  await page.goto(DASHBOARD);
  return page;
}

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
const panelState = (page: Page) => page.locator('#panel').getAttribute('data-state');
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
    const claim = (section: number, text: string) => ({ section: NARRATIVE_SECTIONS[section], text, memory_refs: ['m1'] });
    const text = JSON.stringify({ claims: [
      claim(0, 'A **careful** engineer with a _dry_ sense of humour. <img src=x onerror="window.__xss = 1"><script>window.__xss = 2</script>'),
      claim(1, 'Building a narrative cache'),
      claim(1, 'Moving a prototype to durable jobs'),
      claim(2, 'Be direct and concrete; lead with the answer, then the reasoning, and say what was not checked.'),
      claim(3, 'Reliability, honest error reporting and small interfaces come up again and again in their notes.'),
    ] });
    await fake.scenario(m, [{ kind: 'ok', text }]);
    const user = await userWith(6, m);
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
