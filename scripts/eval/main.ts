// `npm run eval`: faithfulness you can measure. The fixed synthetic users of fixtures.ts go
// through the running local stack once per provider, and the table says what was served:
//
//   npm run eval [-- --providers local,fake,unsupported,gemini] [--json FILE]
//
// Providers (default: local, fake and unsupported, plus gemini when GEMINI_API_KEY is set):
//   local        the functions on their default env (supabase/functions/.env): the offline writer
//                when that file sets no GEMINI_API_KEY (the table shows the model that really wrote);
//   fake         the functions on tests/functions.env: the real @google/genai client against the
//                fake Gemini, playing a careless model (`quote`, careless: local/fakes/gemini-behaviors.ts);
//   unsupported  the same, the fake adding to its honest claims a twin of each citing a line of
//                the prompt other than the one it quotes (`quote`, unsupported): validation's
//                support check must drop the twins;
//   gemini       the real Gemini API with GEMINI_API_KEY (and GEMINI_MODEL_*, GEMINI_THINKING_LEVEL,
//                GEMINI_BASE_URL, NARRATIVE_* if set) from this command's environment.
// The same code path runs them all; only the functions' env differs. The default env is put back
// when the command ends, however it ends. Every user it makes is deleted at the end.
// With GEMINI_API_KEY, every provider's claims are also judged for support by Gemini
// (./judge.ts; GEMINI_JUDGE_MODEL, else GEMINI_MODEL_INTERACTIVE): not run here (no network).
// Exit 1 when a required figure misses its target (citation validity 100 %, every served claim
// supported by what it cites, no deleted-fact leakage, pinned notes verbatim and kept), a run did
// not finish, or a fake control was not caught (report.ts, CONTROLS).
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { API_URL, DB_URL, FAKE_GEMINI_PORT, FAKE_GEMINI_URL, ROOT, RUN_DIR } from '../../local/config.ts';
import { fakeGeminiControl, startFakeGemini, type FakeGemini, type FakeGeminiControl } from '../../local/fakes/gemini.ts';
import { deleteUsers } from '../../local/fakes/users.ts';
import { DEMO_MCP_CLIENT } from '../../local/fakes/oauth.ts';
import { runningFunctionsEnv, useFunctionsEnv } from '../../local/functions-env.ts';
import { keys } from '../../tests/helpers/stack.ts';
import { checkFixtures, PERSONAS } from './fixtures.ts';
import { judgeModel } from './judge.ts';
import { failures, problems, PROVIDER_LABELS, rows, table, writeJson } from './report.ts';
import {
  evaluateProvider, type EvalContext, FAKE_MODES, poll, PROVIDERS, type ProviderKey, type ProviderRun, runPrefix,
} from './run.ts';

const { values: opts } = parseArgs({
  options: { providers: { type: 'string' }, json: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
});
if (opts.help) {
  console.log('usage: npm run eval [-- --providers local,fake,unsupported,gemini] [--json FILE]');
  process.exit(0);
}

// What the gemini run gives the functions. Taken out of this process's environment at once: the
// runtime inherits the environment of whoever restarts it, so a GEMINI_API_KEY left here would
// turn the "local" run into a Gemini run whatever its env file says.
const GEMINI_VARS = ['GEMINI_API_KEY', 'GEMINI_JUDGE_MODEL', 'GEMINI_MODEL_INTERACTIVE', 'GEMINI_MODEL_BULK', 'NARRATIVE_MODEL', 'GEMINI_THINKING_LEVEL',
  'GEMINI_BASE_URL', 'GEMINI_API_VERSION', 'NARRATIVE_LLM_TIMEOUT_MS', 'NARRATIVE_MAX_OUTPUT_TOKENS', 'NARRATIVE_RETRY_MAX_OUTPUT_TOKENS'];
const geminiEnv = Object.fromEntries(GEMINI_VARS.flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : [])));
for (const k of GEMINI_VARS) delete process.env[k];

const requested = (opts.providers ?? (geminiEnv.GEMINI_API_KEY ? 'local,fake,unsupported,gemini' : 'local,fake,unsupported')).split(',').map((s) => s.trim()).filter(Boolean);
for (const p of requested) if (!(PROVIDERS as readonly string[]).includes(p)) throw new Error(`unknown provider ${p} (${PROVIDERS.join(', ')})`);
if (requested.includes('gemini') && !geminiEnv.GEMINI_API_KEY) throw new Error('--providers gemini needs GEMINI_API_KEY in the environment');
// Run order: the default env last, so the stack ends where `npm start` leaves it.
const order: ProviderKey[] = (['fake', 'unsupported', 'gemini', 'local'] as const).filter((p) => requested.includes(p));

const run = crypto.randomBytes(4).toString('hex');
const started = new Date();
const t0 = performance.now();
const progress = (msg: string) => process.stderr.write(`[eval +${((performance.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});

const sql = postgres(DB_URL, { max: 8, onnotice: () => {}, connection: { application_name: 'eval' } });
let fake: FakeGemini | null = null;
let cleaned = false;
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  try {
    progress(`deleted ${await deleteUsers(sql, runPrefix(run))} eval users`);
  } catch (err) {
    progress(`cleanup failed (${(err as Error).message}): delete users with email like '${runPrefix(run)}-%' by hand`);
  }
  await fake?.close().catch(() => {});
  await sql.end({ timeout: 5 }).catch(() => {});
}
// Registered before useFunctionsEnv, which then leaves signals to us: users first, then exit
// (the exit hook puts the default env back).
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => void cleanup().finally(() => process.exit(130)));

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => { s.destroy(); resolve(false); });
    s.once('error', () => resolve(true));
  });
}

/** The fake Gemini tests/functions.env points at: ours, or a test run's already listening there. */
async function fakeControl(): Promise<FakeGeminiControl> {
  if (await portFree(FAKE_GEMINI_PORT)) {
    fake = await startFakeGemini({ port: FAKE_GEMINI_PORT });
    return fakeGeminiControl(fake.url);
  }
  progress(`port ${FAKE_GEMINI_PORT} has a fake Gemini already (a test run?): scripting this run's marker on it`);
  return fakeGeminiControl(FAKE_GEMINI_URL);
}

/** Points the functions at the provider; the default env comes back at exit (useFunctionsEnv). */
async function point(provider: ProviderKey, ctx: EvalContext): Promise<string> {
  if (FAKE_MODES[provider]) {
    ctx.fake ??= await fakeControl();
    useFunctionsEnv('tests/functions.env');
    return 'tests/functions.env';
  }
  if (provider === 'gemini') {
    // The key goes to the runtime in an env file, like supabase functions serve --env-file; the
    // file lives only until the runtime has read it.
    const file = path.join(RUN_DIR, `eval-gemini-${run}.env`);
    fs.mkdirSync(RUN_DIR, { recursive: true });
    // The demo MCP client is allowed as in the other two envs: the MCP reads need its tokens.
    const vars = { ...geminiEnv, MCP_ALLOWED_CLIENT_IDS: DEMO_MCP_CLIENT.id };
    fs.writeFileSync(file, Object.entries(vars).map(([k, v]) => `${k}=${v}`).join('\n') + '\n', { mode: 0o600 });
    try {
      useFunctionsEnv(file);
    } finally {
      fs.rmSync(file, { force: true });
    }
    return `GEMINI_* from the environment${geminiEnv.GEMINI_BASE_URL ? ` (GEMINI_BASE_URL ${geminiEnv.GEMINI_BASE_URL})` : ''}`;
  }
  if (runningFunctionsEnv() !== '') {
    execFileSync(process.execPath, ['--import', 'tsx', path.join('local', 'cli.ts'), 'start'], { cwd: ROOT, stdio: 'pipe' });
  }
  return 'supabase/functions/.env (the default)';
}

async function main(): Promise<number> {
  checkFixtures();
  await sql`select 1`;
  const health = await fetch(`${API_URL}/auth/v1/health`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status, () => 0);
  if (health !== 200) throw new Error(`the API does not answer on ${API_URL} (npm start)`);
  progress(`run ${run}: ${PERSONAS.length} synthetic users per provider; providers ${order.join(', ')}`);

  const runs: ProviderRun[] = [];
  const envs: string[] = [];
  const judge = geminiEnv.GEMINI_API_KEY ? judgeModel(geminiEnv) : undefined;
  if (judge) progress(`support is also judged by ${judge.models.interactive}`);
  let fakeCtl: FakeGeminiControl | undefined;
  for (const provider of order) {
    const ctx: EvalContext = {
      sql, keys: keys(), apiUrl: API_URL, run, progress, judge, fake: fakeCtl,
      generationTimeoutMs: provider === 'gemini' ? 300_000 : 60_000,
    };
    const env = await point(provider, ctx);
    // The restart closed this process's pooled connections to the old runtime; the first request
    // on one of them fails. Wait for an answer on a live connection before going on.
    await poll('the API after the functions restarted', async () =>
      (await fetch(`${API_URL}/auth/v1/health`).then((r) => r.ok, () => false)) || null, 30_000);
    envs.push(`${PROVIDER_LABELS[provider]}: functions env ${env}`);
    progress(`${provider}: functions env ${env}`);
    fakeCtl = ctx.fake;
    runs.push(await evaluateProvider(provider, ctx));
  }
  runs.sort((a, b) => PROVIDERS.indexOf(a.provider) - PROVIDERS.indexOf(b.provider));

  const rs = rows(runs);
  const failed = failures(rs);
  const ok = failed.length === 0;
  process.stdout.write([
    '', `faithfulness eval, run ${run} (${started.toISOString()}): ${PERSONAS.length} synthetic users per provider`, '',
    table(runs, rs), '',
    ...envs,
    'by: validation = acceptClaims drops it whatever the model says; pipeline = the database and the functions guarantee it (both required: PASS/FAIL);',
    'model = what the writer chose to say (ok/MISS, reported, not required); the fake columns are controls that must be caught: MISS their row, or validation drops their faults ("caught").',
    ok ? 'Every required figure met its target and every control was caught.' : `FAILED: ${failed.join('; ')}.`,
    // A control's problems are what it is built to have: listed only when something failed.
    ...problems(ok ? runs.filter((r) => !FAKE_MODES[r.provider]) : runs).map((p) => `  ${p}`),
    ...(ok && runs.some((r) => FAKE_MODES[r.provider]) ? ['  (the controls\' own problems: --json FILE)'] : []),
    '',
  ].join('\n'));
  if (opts.json) {
    writeJson(opts.json, { run, startedAt: started }, runs, rs);
    progress(`wrote ${opts.json}`);
  }
  return ok ? 0 : 1;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  progress(`eval failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
} finally {
  await cleanup();
}
process.exit(code);
