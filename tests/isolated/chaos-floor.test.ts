// `npm run chaos` can fail: with every Gemini call failing (--fault-rate 1) no job can succeed,
// and the run must exit non-zero below its success floor — with every failure still matched to
// the fault chaos injected (none unexplained). Small and without disruptions, so it stays fast;
// the settings and the functions env are put back however it ends. Runs alone (it drives the
// shared fake Gemini and changes private.settings).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { ROOT } from '../../local/config.ts';
import { runningFunctionsEnv } from '../../local/functions-env.ts';
import { API_URL } from '../../local/config.ts';
import { db, eventually } from '../helpers/stack.ts';

const sql = db(2);
afterAll(() => sql.end({ timeout: 2 }));

const settings = async () => (await sql`select * from private.settings`)[0];

it('a chaos run where every job fails exits 1 below the success floor, each failure matched to its injected fault', async () => {
  const before = await settings();
  const json = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'chaos-')), 'verdict.json');
  let r: ReturnType<typeof spawnSync>;
  try {
    r = spawnSync('npx', ['tsx', 'scripts/chaos.ts', '--jobs', '20', '--fault-rate', '1', '--disruptions', 'none', '--json', json],
      { cwd: ROOT, encoding: 'utf8', timeout: 200_000 });
  } finally {
    // chaos puts the default functions env back when it ends; this suite runs on the fake's.
    if (runningFunctionsEnv() !== 'tests/functions.env') {
      spawnSync('npx', ['tsx', 'local/cli.ts', 'start', '--functions-env', 'tests/functions.env'], { cwd: ROOT, stdio: 'pipe' });
    }
    await eventually('the API after the functions restarted', async () =>
      (await fetch(`${API_URL}/auth/v1/health`).then((x) => x.ok, () => false)) || null, 30_000, 50);
  }
  expect(r.status, `chaos exits 1 (${String(r.stderr).slice(-500)})`).toBe(1);
  const v = JSON.parse(fs.readFileSync(json, 'utf8')) as {
    jobs: number; succeeded: number; injectedPermanent: number; outside: number; belowFloor: boolean; unmatched: string[]; violations: string[];
  };
  expect(v.jobs, 'every job ran').toBe(20);
  expect(v.succeeded, 'none succeeded').toBe(0);
  expect(v.outside, 'the jobs outside injected permanent faults').toBe(20 - v.injectedPermanent);
  expect(v.belowFloor, 'below the floor').toBe(true);
  expect(v.unmatched, 'every failure matched to the fault chaos injected').toEqual([]);
  expect(v.violations, 'the floor is the only violation').toEqual([expect.stringMatching(/below the 95 % floor/)]);
  expect(String(r.stdout), 'and the table says so').toMatch(/success floor\s+0\.0 % of \d+ jobs .* BELOW/);
  expect(await settings(), 'private.settings as it was').toEqual(before);
}, 240_000);
