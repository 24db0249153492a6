// `npm run soak` can fail on a 429: with the per-user request limits at 1 a minute, the cache
// misses and the MCP calls are refused after their first request, and the soak must count those
// answers as limited, never as successes, and exit 1 for them. A few seconds of traffic; the
// settings are put back however it ends. Isolated: it lowers private.settings, which every suite reads.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { ROOT } from '../../local/config.ts';
import { overrideSettings } from '../../local/settings.ts';
import { db } from '../helpers/stack.ts';

const sql = db(2);
afterAll(() => sql.end({ timeout: 2 }));

interface Traffic { name: string; total: number; outcomes: { ok: number; limited: number; error: number }; unanswered: number; statuses: Record<string, number> }

it('a 429 in the soak is counted as limited, not as a success, and fails the run', async () => {
  const restore = await overrideSettings(sql, { orchestrate_requests_per_minute: 1, mcp_requests_per_minute: 1 });
  const json = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'soak-')), 'soak.json');
  let r: ReturnType<typeof spawnSync>;
  try {
    r = spawnSync('npx', ['tsx', 'scripts/soak.ts', '--duration', '4', '--rate', '20', '--json', json], { cwd: ROOT, encoding: 'utf8', timeout: 90_000 });
  } finally {
    await restore();
  }
  expect(r.status, `soak exits 1 (${String(r.stdout).slice(-800)} ${String(r.stderr).slice(-300)})`).toBe(1);
  const out = JSON.parse(fs.readFileSync(json, 'utf8')) as { traffic: Traffic[]; failures: string[] };
  const by = (name: string) => out.traffic.find((t) => t.name.startsWith(name))!;
  for (const name of ['cache miss', 'MCP']) {
    const t = by(name);
    expect(t.statuses['429'], `${name}: refused by the limit`).toBeGreaterThan(0);
    expect(t.outcomes.limited, `${name}: every 429 counted as limited`).toBe(t.statuses['429']);
    expect(t.outcomes.ok, `${name}: successes are the 200s only`).toBe(t.statuses['200'] ?? 0);
    expect(out.failures, `${name}: the run fails for it`).toContain(`${t.name}: ${t.outcomes.limited} limited (429)`);
  }
  expect(by('cache hit').outcomes.limited, 'fresh cache hits are not counted against the limit').toBe(0);
  expect(String(r.stdout), 'the verdict').toMatch(/^FAIL: .*limited \(429\)/m);
}, 120_000);
