// Recovery from dead processes: these stop shared services, so they run alone.
//  - generate-narrative killed mid-generation -> lease expires -> sweeper requeues -> succeeds
//  - a pg_net request lost in a Postgres crash (its queue is an unlogged table) -> sweeper
//    re-dispatches -> succeeds
//  - Postgres restarted -> pg_net's background worker delivers again and the functions carry on
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, expect, it } from 'vitest';
import { ROOT } from '../../local/config.ts';
import { startCluster, stopCluster } from '../../local/postgres.ts';
import { stopService } from '../../local/processes.ts';
import { fakeGeminiControl } from '../../local/fakes/gemini.ts';
import { addMemories, enqueue, fastForward, job, makeUser, marker, waitForJob } from '../helpers/pipeline.ts';
import { FAKE_GEMINI_URL } from '../../local/config.ts';
import { db, eventually } from '../helpers/stack.ts';

const sql = db(2);
const fake = fakeGeminiControl(FAKE_GEMINI_URL);
afterAll(() => sql.end({ timeout: 2 }));

/** Brings back whatever a test stopped, the way a developer would: npm start. */
function restartStack() {
  execFileSync('npx', ['tsx', 'local/cli.ts', 'start', '--functions-env', 'tests/functions.env'], { cwd: ROOT, stdio: 'pipe' });
}

it('a function killed mid-generation: lease expiry, requeue, then success', async () => {
  const m = marker();
  await fake.scenario(m, [{ kind: 'ok' }]);
  await fake.hold(m, 1); // the first attempt waits on the provider until the runtime is killed
  const userId = await makeUser(sql);
  await addMemories(sql, userId, 6, `I work on ${m}`);
  const { job_id } = await enqueue(sql, userId);
  await fake.waitForCalls(m, 1);
  expect((await job(sql, job_id)).status, 'claimed and generating').toBe('running');

  await stopService('runtime', 'SIGKILL');
  const orphan = await job(sql, job_id);
  expect(orphan.status, 'the killed attempt leaves the job running under its lease').toBe('running');
  restartStack();

  await sql`update narrative_jobs set locked_until = now() - interval '1 second' where id = ${job_id}`;
  await sql`select private.sweep()`;
  const requeued = await job(sql, job_id);
  expect(requeued.status, 'back to queued').toBe('queued');
  expect(requeued.last_error_code, 'the row says why').toBe('lease_expired');
  expect(requeued.attempts, 'the lost attempt was counted').toBe(1);

  await fastForward(sql, job_id);
  const done = await waitForJob(sql, job_id, (j) => j.status === 'succeeded' || j.status === 'failed', 'finish');
  expect(done.status, 'the retry succeeds').toBe('succeeded');
  expect(done.attempts, 'second attempt').toBe(2);
  const [n] = await sql`select version from user_narratives where user_id = ${userId}`;
  expect(n.version, 'stored once').toBe(1);
});

it('a request lost in a Postgres crash is re-dispatched by the sweeper', async () => {
  // pg_net takes the next batch only when every request of the current one has finished, so a
  // request held open by this server keeps the job's dispatch waiting in net.http_request_queue.
  const held: http.ServerResponse[] = [];
  const server = http.createServer((_req, res) => { held.push(res); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hold`;
  try {
    await sql`select net.http_get(${url}, timeout_milliseconds := 60000)`;
    await eventually('the worker to take the held request', async () => held.length > 0);

    const userId = await makeUser(sql);
    await addMemories(sql, userId, 5);
    const { job_id } = await enqueue(sql, userId);
    const sent = await job(sql, job_id);
    expect(sent.dispatch_count, 'dispatched by the insert trigger').toBe(1);
    const [waiting] = await sql`select id from net.http_request_queue where id = ${sent.last_request_id}`;
    expect(waiting, 'the dispatch waits in the queue behind the held request').toBeDefined();

    // A crash: recovery empties unlogged tables, so the queued request is gone.
    stopCluster('immediate');
    startCluster();
    await eventually('the database to accept queries again', async () => (await sql`select 1 as ok`)[0], 20_000, 200);
    const [gone] = await sql`select id from net.http_request_queue where id = ${sent.last_request_id}`;
    expect(gone, 'the queued request did not survive the crash').toBeUndefined();
    expect((await job(sql, job_id)).status, 'the job itself is durable').toBe('queued');

    await sql`select private.sweep()`;
    expect((await job(sql, job_id)).dispatch_count, 'inside the in-flight window nothing is re-sent').toBe(1);
    await sql`update narrative_jobs set dispatched_at = now() - interval '1 hour' where id = ${job_id}`;
    await sql`select private.sweep()`;
    const done = await waitForJob(sql, job_id, (j) => j.status === 'succeeded', 'succeed');
    expect(done.dispatch_count, 'sent twice in all').toBe(2);
    expect(done.attempts, 'one attempt: the lost request never reached the function').toBe(1);
  } finally {
    for (const res of held) res.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

it('after a Postgres restart pg_net delivers again and the functions carry on', async () => {
  stopCluster('fast');
  startCluster();
  const userId = await eventually('the database to accept queries again', async () => {
    return await makeUser(sql);
  }, 20_000, 200);
  await addMemories(sql, userId, 5);
  const { job_id } = await enqueue(sql, userId);
  const done = await waitForJob(sql, job_id, (j) => j.status === 'succeeded', 'succeed after the restart', 20_000);
  expect(done.attempts, 'delivered and generated normally').toBe(1);
});
