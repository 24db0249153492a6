// scripts/backfill.ts: the progress line (pure) and the CLI as a subprocess against the local
// stack. Only dry runs here: a real backfill would enqueue jobs for other suites' users.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { API_URL, ROOT } from '../local/config.ts';
import { renderProgress } from '../scripts/backfill.ts';

interface Run { code: number | null; stdout: string; stderr: string }

function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base = { ...process.env };
  for (const k of ['SUPABASE_URL', 'SUPABASE_SECRET_KEY', 'SUPABASE_SERVICE_ROLE_KEY']) delete base[k];
  return new Promise((resolve, reject) => {
    const child = spawn('npx', ['tsx', 'scripts/backfill.ts', ...args], { cwd: ROOT, env: { ...base, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d; });
    child.stderr.on('data', (d: Buffer) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const STACK_TRACE = /\n\s+at .+:\d+/;

describe('renderProgress', () => {
  const bar = (line: string) => /^\[([#-]+)\]/.exec(line)?.[1] ?? '';

  it('shows an empty bar and no ETA before anything finished', () => {
    const line = renderProgress({ done: 0, failed: 0, remaining: 40, rate: null }, 80);
    expect(line.length, 'fits in 80 columns without wrapping').toBeLessThan(80);
    expect(bar(line), 'bar is all empty').toMatch(/^-+$/);
    expect(line, 'percentage is 0').toContain('  0%');
    expect(line, 'remaining shown').toContain('left 40');
    expect(line, 'unknown rate gives an unknown ETA').toContain('ETA —');
  });

  it('shows half a bar and an ETA from the rate', () => {
    const line = renderProgress({ done: 18, failed: 2, remaining: 20, rate: 4 }, 80);
    const b = bar(line);
    expect(b.length, 'bar has a width').toBeGreaterThanOrEqual(10);
    expect(b.split('#').length - 1, 'half the bar is filled').toBe(b.length / 2);
    expect(line, 'percentage counts failed jobs as finished').toContain(' 50%');
    expect(line, 'done and failed shown separately').toMatch(/done 18 .*failed 2/);
    expect(line, 'rate shown').toContain('4.0 jobs/s');
    expect(line, 'ETA = 20 remaining / 4 per second').toContain('ETA 5s');
  });

  it('shows a full bar when the queue is empty', () => {
    const line = renderProgress({ done: 40, failed: 0, remaining: 0, rate: 2.5 }, 80);
    expect(bar(line), 'bar is all filled').toMatch(/^#+$/);
    expect(line, 'percentage is 100').toContain('100%');
    expect(line, 'nothing left').toContain('ETA 0s');
  });

  it('gives "—" as ETA when the rate is unknown or zero', () => {
    expect(renderProgress({ done: 3, failed: 0, remaining: 7, rate: null }), 'null rate').toContain('ETA —');
    expect(renderProgress({ done: 3, failed: 0, remaining: 7, rate: 0 }), 'zero rate').toContain('ETA —');
  });

  it('formats long ETAs in minutes and stays within narrow widths', () => {
    expect(renderProgress({ done: 1, failed: 0, remaining: 600, rate: 2 }), '300 s').toContain('ETA 5m00s');
    expect(renderProgress({ done: 1, failed: 0, remaining: 9, rate: 1 }, 60).length, 'fits 60 columns').toBeLessThan(60);
  });
});

describe('backfill CLI against the local stack', () => {
  it('prints the dry-run counts as JSON', async () => {
    const r = await cli(['--dry-run', '--json']);
    expect(r.code, `exit 0 (stderr: ${r.stderr})`).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    for (const k of ['eligible', 'enqueued', 'skipped_fresh', 'skipped_active']) {
      expect(Number.isInteger(out[k]), `${k} is an integer (got ${JSON.stringify(out[k])})`).toBe(true);
    }
    expect(out.dry_run, 'dry_run echoed as true').toBe(true);
  });

  it('says the key was refused for a wrong key, without a stack trace', async () => {
    const r = await cli(['--dry-run'], { SUPABASE_URL: API_URL, SUPABASE_SECRET_KEY: 'sb_secret_wrong' });
    expect(r.code, `exit 1 (stderr: ${r.stderr})`).toBe(1);
    expect(r.stderr, 'explains the refusal').toContain('The key was refused (HTTP 401');
    expect(r.stderr, 'no stack trace').not.toMatch(STACK_TRACE);
  });

  it('says it cannot reach a wrong URL, without a stack trace', async () => {
    const r = await cli(['--dry-run'], { SUPABASE_URL: 'http://127.0.0.1:9', SUPABASE_SECRET_KEY: 'sb_secret_whatever' });
    expect(r.code, `exit 1 (stderr: ${r.stderr})`).toBe(1);
    expect(r.stderr, 'names the unreachable URL').toContain('Cannot reach http://127.0.0.1:9/functions/v1/backfill');
    expect(r.stderr, 'no stack trace').not.toMatch(STACK_TRACE);
  });

  it('rejects an unknown flag with usage and exit 2', async () => {
    const r = await cli(['--bogus']);
    expect(r.code, 'exit 2 for a usage error').toBe(2);
    expect(r.stderr, 'names the bad flag').toContain('--bogus');
    expect(r.stderr, 'prints usage').toContain('Usage: npm run backfill');
    expect(r.stderr, 'no stack trace').not.toMatch(STACK_TRACE);
  });

  it('rejects a non-integer number with exit 2', async () => {
    const r = await cli(['--dry-run', '--limit', 'ten']);
    expect(r.code, 'exit 2 for a bad value').toBe(2);
    expect(r.stderr, 'explains the value').toContain('--limit must be a positive integer');
  });
});
