// Cache miss: orchestrate for a user with 10,000 memories and no narrative (the fallback context).
import autocannon from 'autocannon';
import { MISS_CONNS, MISS_MEMORIES, MISS_REQUESTS, WARMUP_S, progress } from './options.ts';
import { checkErrors, latencyText, notes, rows, summarize, tailWithin } from './report.ts';
import { afterHttpRun, badOf, describeBad, runAutocannon, serverTiming } from './load.ts';
import { addMemories, createApiUser, sql } from './fixtures.ts';

export const MISS_MESSAGES = [
  'How is my rust compiler project going?',
  'marathon training plan for next month',
  'what should I cook tonight, maybe pasta',
  'kubernetes cluster upgrade checklist',
  'tips for the investor meeting',
  'help me plan the japan travel budget',
  'piano practice routine',
  'postgres index advice for latency',
  'ideas for the wedding anniversary',
  'my daughter school schedule',
  'chess opening to study',
  'typescript migration deadline',
  'coffee',
  'climbing at the boulder gym with my camera',
  'review the figma design for the client',
  'remind me what I said about taxes and the invoice',
  'podcast interview prep',
  'sleep and yoga',
  'Can you help me write the next chapter of my novel? I keep getting stuck on the writing.',
  'mortgage house',
];

export async function measureMiss(): Promise<void> {
  const label = `cache-miss POST /orchestrate, ${MISS_MEMORIES.toLocaleString('en-US')} memories`;
  progress(`${label}: creating the user (Auth admin API) and ${MISS_MEMORIES} memories`);
  const u = await createApiUser('miss');
  await addMemories(sql, [u.id], MISS_MEMORIES);
  await sql`analyze public.memories`;
  // No narrative, and a held job: every call takes the whole miss path (read: no narrative,
  // request_narrative: eligible, enqueue finds the active job) and no generation can turn the
  // user into a cache hit during the measurement. The lease is the bench's; the row goes with the user.
  await sql`
    insert into public.narrative_jobs (user_id, reason, status, attempts, started_at, locked_until, lease_token)
    values (${u.id}, 'cache_miss', 'running', 1, now(), now() + interval '10 minutes', gen_random_uuid())`;
  const requestsFor = (c: number): autocannon.Request[] => MISS_MESSAGES.map((_, i) => ({
    method: 'POST', path: '/functions/v1/orchestrate',
    headers: { authorization: `Bearer ${u.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ user_message: MISS_MESSAGES[(i + c * 5) % MISS_MESSAGES.length], is_new_conversation: true }),
  }));
  const spec = { requestsFor, connections: MISS_CONNS, expect: '"source":"fallback"', countBodies: 'Related to the current message' };
  progress(`${label}: warm-up ${WARMUP_S} s at ${MISS_CONNS} connections`);
  await runAutocannon({ ...spec, duration: WARMUP_S });
  progress(`${label}: measuring ${MISS_REQUESTS} requests at ${MISS_CONNS} connections`);
  const r = await runAutocannon({ ...spec, amount: MISS_REQUESTS });
  afterHttpRun(label, r);
  const [still] = await sql<{ n: number }[]>`select count(*)::int as n from public.user_narratives where user_id = ${u.id}`;
  if (still.n !== 0) notes.push('WARNING: the cache-miss user got a narrative during the measurement; some calls may have been hits.');
  await sql`delete from public.narrative_jobs where user_id = ${u.id}`;
  const s = summarize(r.lat);
  const bad = badOf(r);
  checkErrors(label, r.total, bad, describeBad(r));
  const rate = r.ok / r.elapsedS;
  serverTiming(label, r);
  progress(`${label}: ${r.total} requests, ${latencyText(s)} ms, ${r.bodyHits} with full-text matches, bad: ${describeBad(r)}`);
  notes.push(`cache miss: ${r.bodyHits} of ${r.ok} miss answers carried full-text matches ("Related to the current message"); `
    + 'the rest had recent memories only (no match for the message, or the search hit the fallback_timeout_ms budget). '
    + 'The user had no narrative and an active (held) job, so each call ran read → request_narrative → enqueue (finds the active job) → memory context.');
  const t = tailWithin(s, 300);
  rows.push({
    key: 'miss_orchestrate', measurement: `${label}, ${MISS_CONNS} conns`, n: r.total, errors: bad, latency: s, rate,
    measured: t.measured, target: t.target, verdict: t.ok ? 'PASS' : 'MISS',
    detail: { fts_answers: r.bodyHits, statuses: r.statuses },
  });
}
