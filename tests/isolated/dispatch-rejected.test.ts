// A dispatch that generate-narrative refuses (wrong service secret: 401; function not there:
// 404) is never silent: the sweeper records `dispatch_rejected` with the HTTP status on the job,
// counts it as a failed attempt and gives up at max_attempts. Changes the Vault secrets every
// dispatch reads, so it runs alone (tests/isolated) and puts them back however it ends.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { addMemories, enqueue, fastForward, job, makeUser, waitForJob } from '../helpers/pipeline.ts';
import { db, eventually } from '../helpers/stack.ts';

const sql = db(2);
const saved = new Map<string, string>();

async function setSecret(name: string, value: string): Promise<void> {
  await sql`select vault.update_secret(id, ${value}) from vault.secrets where name = ${name}`;
}

/** Waits for pg_net's response to the job's latest dispatch and returns its HTTP status. */
async function dispatchAnswered(jobId: number): Promise<number> {
  return await eventually(`pg_net's response to job ${jobId}'s dispatch`, async () => {
    const [r] = await sql<{ status_code: number }[]>`
      select r.status_code from net._http_response r
      join public.narrative_jobs j on j.last_request_id = r.id where j.id = ${jobId}`;
    return r?.status_code;
  });
}

beforeAll(async () => {
  for (const r of await sql<{ name: string; decrypted_secret: string }[]>`
    select name, decrypted_secret from vault.decrypted_secrets where name in ('project_url', 'narrative_service_secret')`) {
    saved.set(r.name, r.decrypted_secret);
  }
  expect(saved.size, 'both dispatch secrets are in Vault').toBe(2);
});

afterAll(async () => {
  for (const [name, value] of saved) await setSecret(name, value);
  await sql.end({ timeout: 2 });
});

it('a wrong service secret: 401 recorded as dispatch_rejected, counted, then failed at max_attempts', async () => {
  await setSecret('narrative_service_secret', 'not-the-service-secret');
  const userId = await makeUser(sql);
  await addMemories(sql, userId, 5);
  const { job_id } = await enqueue(sql, userId);
  await sql`update public.narrative_jobs set max_attempts = 2 where id = ${job_id}`;

  expect(await dispatchAnswered(job_id), 'generate-narrative refused the request').toBe(401);
  await sql`select private.sweep()`;
  const first = await job(sql, job_id);
  expect(first.status, 'back in the queue for another try').toBe('queued');
  expect(first.attempts, 'the rejected dispatch counts as an attempt').toBe(1);
  expect(first.last_error_code, 'error code').toBe('dispatch_rejected');
  expect(first.last_error, 'the HTTP status is on the row').toMatch(/^dispatch_rejected: generate-narrative answered HTTP 401/);
  const [{ later }] = await sql<{ later: boolean }[]>`
    select j.run_after > r.created as later from narrative_jobs j join net._http_response r on r.id = j.last_request_id
    where j.id = ${job_id}`;
  expect(later, 'retried after a backoff: due after the refusal came back').toBe(true);

  await fastForward(sql, job_id); // due now: the sweeper inside sends it again
  await eventually('the second dispatch to be sent', async () => (await job(sql, job_id)).dispatch_count >= 2);
  expect(await dispatchAnswered(job_id), 'refused again').toBe(401);
  await sql`select private.sweep()`;
  const last = await job(sql, job_id);
  expect(last.status, 'gives up at max_attempts').toBe('failed');
  expect(last.attempts, 'two attempts').toBe(2);
  expect(last.finished_at, 'finished').not.toBeNull();
  expect(last.last_error, 'says it gave up').toMatch(/HTTP 401.*gave up after 2 attempts/);
});

it('a project URL without the function: 404 recorded as dispatch_rejected', async () => {
  await setSecret('narrative_service_secret', saved.get('narrative_service_secret')!);
  await setSecret('project_url', `${saved.get('project_url')}/not-a-project`);
  const userId = await makeUser(sql);
  await addMemories(sql, userId, 5);
  const { job_id } = await enqueue(sql, userId);
  expect(await dispatchAnswered(job_id), 'nothing is deployed there').toBe(404);
  await sql`select private.sweep()`;
  const j = await job(sql, job_id);
  expect(j.last_error_code, 'error code').toBe('dispatch_rejected');
  expect(j.last_error, 'status on the row').toMatch(/HTTP 404/);
  expect(j.attempts, 'counted').toBe(1);

  // Fixed configuration: the same job goes through.
  await setSecret('project_url', saved.get('project_url')!);
  await fastForward(sql, job_id);
  const done = await waitForJob(sql, job_id, (x) => x.status === 'succeeded', 'succeed once the URL is right');
  expect(done.attempts, 'one rejected dispatch plus the real attempt').toBe(2);
});

it('Vault without project_url: dispatch_not_configured on the row, no request, nothing counted; the job runs once it is set', async () => {
  await setSecret('narrative_service_secret', saved.get('narrative_service_secret')!);
  await setSecret('project_url', saved.get('project_url')!);
  // Renamed away, as on a project where nobody has created the secret yet.
  await sql`select vault.update_secret(id, new_name => 'project_url_unset') from vault.secrets where name = 'project_url'`;
  try {
    const userId = await makeUser(sql);
    await addMemories(sql, userId, 5);
    const { job_id } = await enqueue(sql, userId);
    await sql`select private.sweep()`;
    const j = await job(sql, job_id);
    expect(j.status, 'still queued: the sweeper tries again once Vault is set up').toBe('queued');
    expect(j.last_error_code, 'error code on the row').toBe('dispatch_not_configured');
    expect(j.last_error, 'names the secrets').toMatch(/project_url and narrative_service_secret are required/);
    expect(j.dispatch_count, 'no request sent').toBe(0);
    expect(j.last_request_id, 'no pg_net request').toBeNull();
    expect(j.attempts, 'not counted as an attempt').toBe(0);

    await sql`select vault.update_secret(id, new_name => 'project_url') from vault.secrets where name = 'project_url_unset'`;
    await fastForward(sql, job_id);
    const done = await waitForJob(sql, job_id, (x) => x.status === 'succeeded' || x.status === 'failed', 'finish once configured');
    expect(done.status, `succeeded (${done.last_error})`).toBe('succeeded');
    expect(done.attempts, 'one real attempt').toBe(1);
  } finally {
    await sql`select vault.update_secret(id, new_name => 'project_url') from vault.secrets where name = 'project_url_unset'`;
  }
});
