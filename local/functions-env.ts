// For scripts that need the functions on another env file for a while (chaos, bench, soak
// point Gemini at a fake they run): switch the running stack to FILE, and put the default env
// back when the script ends, however it ends — normal exit, an exception, Ctrl-C or SIGTERM.
// Without this a README command would leave every later job failing against a fake that is gone.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, RUN_DIR } from './config.ts';

const cli = (args: string[]) => execFileSync(process.execPath, ['--import', 'tsx', path.join('local', 'cli.ts'), ...args], {
  cwd: ROOT, stdio: 'pipe', encoding: 'utf8',
});

/** The env file the running functions were started with ('' for supabase/functions/.env). */
export function runningFunctionsEnv(): string {
  try {
    return fs.readFileSync(path.join(RUN_DIR, 'runtime.functions-env'), 'utf8').trim();
  } catch {
    return '';
  }
}

let restoreArmed = false;

/** Restarts the functions on the default env (synchronous, so it also works in an exit hook). */
export function restoreDefaultFunctionsEnv(): void {
  if (!restoreArmed) return;
  restoreArmed = false;
  try {
    cli(['start']);
    process.stderr.write('functions are back on the default env (supabase/functions/.env)\n');
  } catch (err) {
    process.stderr.write(`could not put the functions back on the default env: ${(err as Error).message}\nRun npm start.\n`);
  }
}

/**
 * Starts (or reuses) the stack with the functions on `file` and arms the restore. Idempotent.
 * A script with its own signal handlers must end with process.exit (the exit hook restores);
 * otherwise signals end the process after restoring (exit code 130), like an interrupted command.
 */
export function useFunctionsEnv(file: string): void {
  cli(['start', '--functions-env', file]);
  if (restoreArmed) return;
  restoreArmed = true;
  process.once('exit', restoreDefaultFunctionsEnv);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    if (process.listenerCount(sig) > 0) continue;
    process.once(sig, () => {
      restoreDefaultFunctionsEnv();
      process.exit(130);
    });
  }
}
