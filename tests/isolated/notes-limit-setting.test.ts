// The note limit has one source, private.settings.max_notes: the operator changes it and the
// dashboard (a real browser) counts against the new value and shows the server's refusal at it,
// with no constant of its own to update. Isolated: it changes private.settings.
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notesResponse } from '../../shared/narrative.ts';
import { overrideSettings } from '../../local/settings.ts';
import { API_URL, DASHBOARD_URL } from '../../local/config.ts';
import { db } from '../helpers/stack.ts';
import { createUser } from '../helpers/users.ts';

const sql = db(2);
let browser: Browser;
let restore: (() => Promise<void>) | undefined;

beforeAll(async () => {
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });
});
afterAll(async () => {
  await restore?.();
  await browser?.close();
  await sql.end({ timeout: 2 });
});

describe('max_notes', () => {
  it('changing the setting changes the limit GET narrative/notes answers and the dashboard shows', async () => {
    const [{ max: before }] = await sql<{ max: number }[]>`select max_notes as max from private.settings`;
    const limit = before + 3;
    restore = await overrideSettings(sql, { max_notes: limit });
    const user = await createUser();
    await sql`insert into narrative_notes (user_id, content) select ${user.id}::uuid, 'Note #' || g from generate_series(1, ${limit - 1}) g`;

    const res = await fetch(`${API_URL}/functions/v1/narrative/notes`, { headers: { authorization: `Bearer ${user.accessToken}` } });
    expect(res.status, 'GET narrative/notes').toBe(200);
    expect(notesResponse.parse(await res.json()).max_notes, 'the list says the setting').toBe(limit);

    const context = await browser.newContext({ viewport: { width: 1024, height: 900 }, locale: 'en-US', timezoneId: 'UTC' });
    try {
      const page = await context.newPage();
      await page.goto(DASHBOARD_URL);
      await page.getByLabel('Email').fill(user.email);
      await page.getByLabel('Password').fill(user.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.locator('#panel:not([hidden])').waitFor();
      await page.getByRole('tab', { name: 'Notes' }).click();
      const count = page.locator('#notes-count');
      await expect.poll(() => count.innerText(), { message: 'counted against the setting', timeout: 15_000 })
        .toBe(`Your notes (${limit - 1} of ${limit})`);

      await page.getByLabel('New note').fill('The last one that fits');
      await page.getByRole('button', { name: 'Add note' }).click();
      await expect.poll(() => count.innerText(), { message: 'the last one fits', timeout: 10_000 }).toBe(`Your notes (${limit} of ${limit})`);
      await page.getByLabel('New note').fill('One too many');
      await page.getByRole('button', { name: 'Add note' }).click();
      await expect.poll(() => page.locator('#note-form-error').innerText(), { message: 'refused at the setting', timeout: 10_000 })
        .toContain(`At most ${limit} notes per user`);
    } finally {
      await context.close();
    }
    const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from narrative_notes where user_id = ${user.id}`;
    expect(n, 'stored up to the setting, not past it').toBe(limit);
  });
});
