// The local runtime's log is bounded on disk: a bench run once wrote about 500 MB of request
// lines into .local/logs/runtime.log and broke the tests that read it whole. The supervisor
// writes the workers' output through local/log-file.ts; this restarts the runtime with a small
// bound (LOCAL_RUNTIME_LOG_MAX_BYTES), logs well past it, and checks both files stay bounded and
// that an offset taken before (logSize) still finds every line logged after it (logSince):
// the way the eval and the tests read the log. Restarts the runtime: alone, in tests/isolated.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { afterAll, expect, it } from 'vitest';
import { API_URL, ROOT } from '../../local/config.ts';
import { rotatedFile } from '../../local/log-file.ts';
import { logFile, logSince, logSize, stopService } from '../../local/processes.ts';
import { eventually } from '../helpers/stack.ts';
import { createUser } from '../helpers/users.ts';

const BOUND = 64 * 1024;

function startRuntime(maxBytes: number | null) {
  const env = { ...process.env };
  if (maxBytes === null) delete env.LOCAL_RUNTIME_LOG_MAX_BYTES;
  else env.LOCAL_RUNTIME_LOG_MAX_BYTES = String(maxBytes);
  execFileSync('npx', ['tsx', 'local/cli.ts', 'start', '--functions-env', 'tests/functions.env'], { cwd: ROOT, stdio: 'pipe', env });
}

afterAll(async () => {
  await stopService('runtime');
  startRuntime(null);
});

const health = (token: string) => fetch(`${API_URL}/functions/v1/health`, { headers: { authorization: `Bearer ${token}` } })
  .then(async (r) => { await r.body?.cancel(); return r.status; });

async function requests(token: string, n: number): Promise<void> {
  for (let i = 0; i < n; i += 25) {
    const statuses = await Promise.all(Array.from({ length: Math.min(25, n - i) }, () => health(token)));
    expect(statuses.every((s) => s === 200), 'every request answered 200').toBe(true);
  }
}

const linesOf = (text: string, userId: string) => text.split('\n').filter((l) => l.includes('"route":"health"') && l.includes(userId));

it('the runtime log rotates at its bound and an offset still finds what was logged after it', async () => {
  await stopService('runtime');
  startRuntime(BOUND);
  const user = await createUser();
  const marker = await createUser();
  // About 150 bytes a request line: 1,500 requests are some 225 KB, several rotations.
  await requests(user.accessToken, 1_400);
  const from = logSize('runtime');
  expect(from, 'the log is readable').not.toBeNull();
  await requests(user.accessToken, 100);
  await requests(marker.accessToken, 1);
  const since = await eventually('the marker request in the log', async () => {
    const text = logSince('runtime', from) ?? '';
    return linesOf(text, marker.id).length === 1 ? text : null;
  });
  expect(linesOf(since, user.id).length, 'every request logged after the offset, none before it').toBe(100);
  expect(logSize('runtime')!, 'the logical size grew past everything written since').toBeGreaterThan(from! + 100 * 100);
  expect(fs.statSync(logFile('runtime')).size, 'the current file stays under its bound').toBeLessThan(BOUND);
  expect(fs.statSync(rotatedFile(logFile('runtime'))).size, 'one older generation is kept, about the bound').toBeLessThan(2 * BOUND);
});
