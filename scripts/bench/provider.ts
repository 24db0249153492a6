// The LLM the generation steps run against: the fake Gemini that the running functions' env file
// points at (tests/functions.env: a local GEMINI_BASE_URL), started in-process with that file's
// key when its port is free; otherwise whatever the env names, said in the report.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { startFakeGemini, type FakeGemini } from '../../local/fakes/gemini.ts';
import { runningFunctionsEnv } from '../../local/functions-env.ts';
import { FUNCTIONS_DIR } from '../../local/config.ts';
import { progress } from './options.ts';

let fake: FakeGemini | undefined;

/** The bench's own fake Gemini while the generation steps run, else undefined. */
export function fakeProvider(): FakeGemini | undefined {
  return fake;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => { s.destroy(); resolve(false); });
    s.once('error', () => resolve(true));
    s.setTimeout(1000, () => { s.destroy(); resolve(true); });
  });
}

/** Starts the fake when the functions' env points at a free local port; says what generates. */
export async function ensureProvider(): Promise<string> {
  const envFile = runningFunctionsEnv() || path.join(FUNCTIONS_DIR, '.env');
  const shown = path.relative(process.cwd(), envFile);
  let env: Record<string, string | undefined> = {};
  try {
    env = parseEnv(fs.readFileSync(envFile, 'utf8'));
  } catch { /* no env file: the offline writer */ }
  if (!env.GEMINI_API_KEY) return `offline writer (functions env ${shown} has no GEMINI_API_KEY)`;
  const m = env.GEMINI_BASE_URL ? /^https?:\/\/(127\.0\.0\.1|localhost):(\d+)/.exec(env.GEMINI_BASE_URL) : null;
  if (!m) return `Gemini at ${env.GEMINI_BASE_URL ?? 'the real API'} (not a local fake — not instant)`;
  const port = Number(m[2]);
  if (!(await portFree(port))) return `fake Gemini on ${port} run by another process (its behaviour is whatever it was set to)`;
  try {
    fake = await startFakeGemini({ port, apiKey: env.GEMINI_API_KEY });
    return `fake Gemini on ${port} (${shown}), started by the bench in-process (instant 'ok' answers)`;
  } catch (err) {
    return `fake Gemini on ${port}: could not start (${(err as Error).message})`;
  }
}

export async function releaseProvider(): Promise<void> {
  if (!fake) return;
  await fake.close().catch(() => {});
  fake = undefined;
  progress('stopped the in-process fake Gemini (its port is free again)');
}
