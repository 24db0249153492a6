// Internal endpoint the dispatch trigger calls through pg_net with {"job_id"}. Authenticated by
// the narrative service secret (verify_jwt = false in config.toml), never by user tokens.
//
// It claims the job and answers 202 at once; the generation goes on in the background of the
// same invocation (EdgeRuntime.waitUntil) while it holds the job's lease. pg_net works in
// batches and starts the next batch only when every request of the current one has finished,
// so answering only after a 30 s LLM call would hold back every dispatch queued behind it.
// An invocation killed mid-generation is recovered by the lease (the sweeper requeues it); one
// the platform warns first (`beforeunload`: the wall clock, CPU or memory limit) hands its jobs
// back at once instead (_shared/narrative/shutdown.ts).
import { generateNarrativeBody } from '../../../shared/narrative.ts';
import { requiredEnv } from '../_shared/env.ts';
import { bearerToken } from '../_shared/bearer.ts';
import { allowMethods, HttpError, json, readJson, route, secretsEqual } from '../_shared/http.ts';
import { log } from '../_shared/log.ts';
import { claimJob, runClaimed } from '../_shared/narrative/generate.ts';
import { stopWorker, unloadReason } from '../_shared/narrative/shutdown.ts';

const serviceSecret = requiredEnv('NARRATIVE_SERVICE_SECRET');

/** The edge runtime's API for work that outlives the response (Supabase docs: background tasks). */
declare const EdgeRuntime: { waitUntil(promise: Promise<unknown>): void };

// Supabase documents it for edge functions: addEventListener('beforeunload', (ev) => …), with
// ev.detail.reason. The jobs' own error paths record the outcome (worker_shutdown).
addEventListener('beforeunload', (ev) => {
  const reason = unloadReason(ev);
  const running = stopWorker(reason);
  log({ level: running ? 'warn' : 'info', msg: 'worker_shutdown', reason, generations_cancelled: running });
});

export const handler = route('generate-narrative', async (req) => {
  allowMethods(req, 'POST');
  const token = bearerToken(req) ?? '';
  if (!token || !(await secretsEqual(token, serviceSecret))) {
    throw new HttpError(401, 'unauthorized', 'The narrative service secret is required');
  }
  const { job_id } = await readJson(req, generateNarrativeBody);
  const job = await claimJob(job_id);
  EdgeRuntime.waitUntil(runClaimed(job).catch((err: unknown) => {
    // Recording the outcome itself failed (database gone): the lease expires and the sweeper
    // requeues the job, so it is not lost; say so here.
    log({ level: 'error', job_id, user_id: job.userId, step: 'background', outcome: 'unrecorded', error: String(err) });
  }));
  return json({ job_id, status: 'running' }, 202);
});
