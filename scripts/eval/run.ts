// One provider's pass of `npm run eval` through the real stack: the synthetic users are made
// through Auth, their notes written through narrative/notes and their deletes run as the user
// under RLS (what supabase-js does through the Data API); generation is queued by the user's own
// GET narrative (cache_miss → pg_net → generate-narrative) and by Regenerate (POST narrative);
// everything scored is what the functions, MCP and a table read served to the user.
// The caller points the functions at the provider first (main.ts, the isolated test).
import crypto from 'node:crypto';
import type { Sql } from 'postgres';
import type { FakeBehavior, FakeGeminiControl } from '../../local/fakes/gemini.ts';
import { type AuthUser, createAuthUser } from '../../local/fakes/users.ts';
import type { LocalKeys } from '../../local/keys.ts';
import { logSince, logSize } from '../../local/processes.ts';
import { narrativeResponse, notesResponse, PINNED_SECTION } from '../../shared/narrative.ts';
import { CLAIM_SUPPORT_MIN_DEFAULT } from '../../shared/support.ts';
import { fitMemories, memoryEvidence, sanitizeMemoryText } from '../../supabase/functions/_shared/narrative/prompt.ts';
import { type FixtureMemory, type InjectionTargets, markerMemory, type Persona, PERSONAS } from './fixtures.ts';
import { type JudgeModel, judgeSupport } from './judge.ts';
import { api, asUser, readServed } from './read.ts';
import { distinctClaims, evidenceOf, type Read, scoreUser, sumScores, type UserFacts, type UserScore } from './score.ts';

export const PROVIDERS = ['local', 'fake', 'unsupported', 'gemini'] as const;
export type ProviderKey = (typeof PROVIDERS)[number];

/** The fake Gemini's modes, each a model that misbehaves on purpose (the eval's controls):
 *  `fake` a careless literal model (bad refs, obeys every citation a memory asks for), and
 *  `unsupported` one that adds to its honest claims a twin of each citing a memory or note of the
 *  prompt other than the one it quotes (all refs valid: only the support check drops the twins).
 *  local/fakes/gemini-behaviors.ts, quotedClaimsJson. */
export const FAKE_MODES: Partial<Record<ProviderKey, FakeBehavior>> = {
  fake: { kind: 'quote', careless: true },
  unsupported: { kind: 'quote', unsupported: true },
};

export interface EvalContext {
  sql: Sql;
  keys: LocalKeys;
  apiUrl: string;
  /** Names this run's users (eval-<run>-…@example.test) and the fake's scenario marker. */
  run: string;
  /** The fake Gemini to script when the provider is `fake` (in this process or shared). */
  fake?: FakeGeminiControl;
  /** The longest wait for one generation. */
  generationTimeoutMs: number;
  /** An LLM judge of support (GEMINI_API_KEY): when set, every distinct claim is also judged. */
  judge?: JudgeModel;
  progress: (msg: string) => void;
}

export interface UserRun {
  persona: string;
  userId: string;
  score: UserScore;
  /** First GET narrative (which queues the cache_miss job) until it served a narrative. */
  firstNarrativeMs: number | null;
  /** Versions served, in the order seen. */
  versions: number[];
  error: string | null;
}

export interface ProviderRun {
  provider: ProviderKey;
  /** The models the stored narratives name (what really wrote them, whatever the env said). */
  models: string[];
  jobs: { total: number; succeeded: number; failed: number; attempts: number; errorCodes: string[] };
  /** From generate-narrative's `validate` log lines for these users: generations validated,
   *  claims kept (pinned included), dropped for their refs and dropped as unsupported. Null when
   *  the runtime log is not readable. */
  validation: { generations: number; kept: number; dropped: number; droppedUnsupported: number } | null;
  /** private.settings.claim_support_min when the run started (what validation drops under; 0:
   *  the check is off), and the threshold support was scored at (its default when off). */
  supportMin: { validation: number; scored: number };
  users: UserRun[];
  total: UserScore;
  durationMs: number;
  /** Why the run stopped before its users could run (making them failed). */
  error: string | null;
}

/** The scenario marker of a run's provider: in every eval user's prompt (the marker memory). */
export const runMarker = (run: string, provider: ProviderKey) => `evalrun${run}${provider}`;
/** The email prefix of a run's users; deleteUsers(sql, it) removes them all. */
export const runPrefix = (run: string) => `eval-${run}`;

/** Polls `check` every `intervalMs` until it returns a value; a throw stops it (a failed job). */
export async function poll<T>(what: string, check: () => Promise<T | null>, timeoutMs: number, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

interface Seeded {
  persona: Persona;
  user: AuthUser;
  /** Memory ids, chosen before insert so a hostile memory can name another user's. */
  ids: Record<'facts' | 'marker' | 'old' | 'new' | 'avoid' | 'deletedAfter' | 'hostile', string[]> & { deletedBefore: string };
  notes: { pinned: string; avoid: string; contradiction: string };
  /** What the hostile memory names for citing. */
  targets: InjectionTargets;
}

const memoryRow = (sql: Sql, userId: string, id: string, m: Omit<FixtureMemory, 'content'>, content: string) => ({
  id, user_id: userId, content, created_at: new Date(Date.now() - m.daysAgo * 86_400_000),
  metadata: sql.json(m.importance === undefined ? {} : { importance: m.importance }),
});

/** The user, their notes, the memory deleted before any generation, then every other memory in
 *  one transaction (so no job can start from half of them). */
async function seed(ctx: EvalContext, provider: ProviderKey): Promise<Seeded[]> {
  const marker = runMarker(ctx.run, provider);
  const users = await Promise.all(PERSONAS.map((p) => createAuthUser(ctx.keys, { prefix: `${runPrefix(ctx.run)}-${provider}-${p.key}` })));
  const uuid = () => crypto.randomUUID();
  const seeded: Seeded[] = PERSONAS.map((persona, i) => ({
    persona, user: users[i],
    ids: {
      facts: persona.facts.map(uuid), marker: [uuid()], old: [uuid()], new: [uuid()], avoid: [uuid()], deletedAfter: [uuid()],
      hostile: [uuid()], deletedBefore: uuid(),
    },
    notes: { pinned: '', avoid: '', contradiction: '' },
    targets: { deletedBeforeId: '', otherUsersMemoryId: '' },
  }));
  seeded.forEach((s, i) => {
    s.targets = { deletedBeforeId: s.ids.deletedBefore, otherUsersMemoryId: seeded[(i + 1) % seeded.length].ids.facts[0] };
  });
  await Promise.all(seeded.map(async (s) => {
    const { persona: p, user } = s;
    // Notes first, oldest first (the prompt numbers them n1.. in that order); the user is not
    // eligible yet, so they queue nothing.
    for (const [key, content, pinned] of [['pinned', p.pinned, true], ['avoid', p.avoid.note, false], ['contradiction', p.contradiction.note, false]] as const) {
      const r = await api(ctx, user, 'POST', 'narrative/notes', { content, pinned });
      if (r.status !== 201) throw new Error(`${p.key}: POST narrative/notes answered ${r.status}`);
      s.notes[key] = (r.body as { note: { id: string } }).note.id;
    }
    const m = (id: string, f: FixtureMemory) => memoryRow(ctx.sql, user.id, id, f, f.content);
    await ctx.sql`insert into public.memories ${ctx.sql(m(s.ids.deletedBefore, p.deletedBefore))}`;
    const gone = await asUser(ctx, user.id, (tx) => tx`delete from public.memories where id = ${s.ids.deletedBefore}`);
    if (gone.count !== 1) throw new Error(`${p.key}: the user could not delete their memory`);

    const rows = [
      ...p.facts.map((f, k) => m(s.ids.facts[k], f)),
      m(s.ids.marker[0], markerMemory(p, marker)),
      m(s.ids.old[0], p.contradiction.old), m(s.ids.new[0], p.contradiction.new),
      m(s.ids.avoid[0], p.avoid.memory), m(s.ids.deletedAfter[0], p.deletedAfter),
      m(s.ids.hostile[0], { daysAgo: p.hostile.daysAgo, content: p.hostile.content(s.targets) }),
    ];
    await ctx.sql.begin((tx) => tx`insert into public.memories ${tx(rows)}`);
  }));
  return seeded;
}

/** What a generation would read now, in prompt order (m1.. and n1..), as generate-narrative reads
 *  it: memories_for_prompt's candidates (best first) through the same fitMemories. */
async function promptNow(ctx: EvalContext, userId: string) {
  const [{ budget }] = await ctx.sql<{ budget: number }[]>`select prompt_char_budget as budget from private.settings`;
  const ranked = await ctx.sql<{ id: string; content: string; created_at: Date; importance: number | null }[]>`
    select id::text, content, created_at, importance from private.memories_for_prompt(${userId}) with ordinality as m order by ordinality`;
  const memories = fitMemories(ranked.map((m) => ({ ...m, created_at: m.created_at.toISOString() })), budget)
    .map((m) => ({ id: m.id, content: m.content, created_at: new Date(m.created_at) }));
  return {
    memories,
    notes: await ctx.sql<{ id: string; content: string }[]>`
      select id::text, content from private.notes_for_prompt(${userId}) with ordinality as n order by ordinality`,
  };
}

const activeJobs = async (ctx: EvalContext, userId: string) => (await ctx.sql<{ n: number }[]>`
  select count(*)::int as n from public.narrative_jobs where user_id = ${userId} and status in ('queued', 'running')`)[0].n;

/** The first narrative, the reads, the delete, the reads right after it, Regenerate, the reads
 *  of the new version: everything one user goes through, scored. */
async function runUser(ctx: EvalContext, s: Seeded, supportMin: number): Promise<UserRun> {
  const { persona: p, user } = s;
  const reads: Read[] = [];
  const versions: number[] = [];
  const before = await promptNow(ctx, user.id);
  const facts: UserFacts = {
    persona: p,
    ids: {
      deletedBefore: s.ids.deletedBefore, deletedAfter: s.ids.deletedAfter[0], avoid: s.ids.avoid[0], old: s.ids.old[0],
      new: s.ids.new[0], hostile: s.ids.hostile[0], pinnedNote: s.notes.pinned, avoidNote: s.notes.avoid,
      contradictionNote: s.notes.contradiction,
    },
    hostileRequests: p.hostile.requests(s.targets),
    promptBefore: before.memories.map((m) => m.id),
    promptAfter: [],
    promptNotes: before.notes.map((n) => n.id),
    // What validation reads as a claim's evidence: a memory as its prompt line shows it (date,
    // then text), a note as its text.
    evidence: new Map([
      ...before.memories.map((m): [string, string] => [m.id, memoryEvidence({ content: m.content, created_at: m.created_at.toISOString(), importance: null })]),
      ...before.notes.map((n): [string, string] => [n.id, sanitizeMemoryText(n.content)]),
    ]),
    supportMin,
    lastVersionBeforeDelete: 0,
    notesAfter: [],
  };
  let firstNarrativeMs: number | null = null;
  let error: string | null = null;
  const seen = (rs: Read[]) => {
    for (const r of rs) if (r.path === 'GET narrative' && r.version !== null && !versions.includes(r.version)) versions.push(r.version);
    reads.push(...rs);
  };
  try {
    const expected = [...Object.values(s.ids).flat()].filter((id) => id !== s.ids.deletedBefore);
    if (facts.promptBefore.length !== expected.length || !expected.every((id) => facts.promptBefore.includes(id))) {
      throw new Error('the prompt would not hold exactly the fixture memories (budget or a leftover row)');
    }

    // The user's own read queues the cache_miss job; poll as the dashboard does.
    const t0 = performance.now();
    await poll(`${p.key}: the first narrative`, async () => {
      const r = await api(ctx, user, 'GET', 'narrative');
      if (r.status === 200) return true;
      if (r.header('narrative-status') === 'failed') throw new Error('the first generation failed');
      return null;
    }, ctx.generationTimeoutMs);
    firstNarrativeMs = performance.now() - t0;
    seen(await readServed(ctx, user, p, 'generated'));

    facts.lastVersionBeforeDelete = (await ctx.sql<{ version: number }[]>`
      select version from public.user_narratives where user_id = ${user.id}`)[0]?.version ?? 0;
    const gone = await asUser(ctx, user.id, (tx) => tx`delete from public.memories where id = ${s.ids.deletedAfter[0]}`);
    if (gone.count !== 1) throw new Error('the user could not delete their memory');
    facts.promptAfter = (await promptNow(ctx, user.id)).memories.map((m) => m.id);
    // Right after the delete commits. The reads that queue nothing come first (the tables, the
    // history), then GET narrative, which serves the stripped version and pulls the debounced
    // memories_changed job forward: the reads after it may already see the regenerated one.
    seen(await readServed(ctx, user, p, 'after_delete'));

    // That GET narrative pulled the memories_changed job forward. Regenerate waits for it, so it
    // always makes a version of its own: pressed while that job ran, it would return that job,
    // and the number of generations (so every count) would depend on timing.
    await poll(`${p.key}: the regeneration the delete queued`, async () => ((await activeJobs(ctx, user.id)) === 0 ? true : null),
      ctx.generationTimeoutMs);
    const regen = await api(ctx, user, 'POST', 'narrative');
    if (regen.status !== 202) throw new Error(`Regenerate (POST narrative) answered ${regen.status}`);
    await poll(`${p.key}: the regenerated narrative`, async () => {
      const r = await api(ctx, user, 'GET', 'narrative');
      if (r.status === 204 && r.header('narrative-status') === 'failed') throw new Error('the regeneration failed');
      const n = r.status === 200 ? narrativeResponse.parse(r.body) : null;
      return n && n.version > facts.lastVersionBeforeDelete && !n.partial && (await activeJobs(ctx, user.id)) === 0 ? true : null;
    }, ctx.generationTimeoutMs);
    seen(await readServed(ctx, user, p, 'regenerated'));
    facts.notesAfter = notesResponse.parse((await api(ctx, user, 'GET', 'narrative/notes')).body).notes;
  } catch (err) {
    error = err instanceof Error ? err.message : String(err);
    ctx.progress(`${p.key}: ${error}`);
  }
  const score = scoreUser(facts, reads);
  if (ctx.judge) {
    try {
      score.support.judge = await judged(ctx.judge, facts, reads);
    } catch (err) {
      ctx.progress(`${p.key}: the LLM judge failed (${err instanceof Error ? err.message : String(err)}); overlap only`);
    }
  }
  return { persona: p.key, userId: user.id, score, firstNarrativeMs, versions, error };
}

/** The LLM judge's count over the distinct claims the overlap check counted (pinned ones aside). */
async function judged(judge: JudgeModel, facts: UserFacts, reads: readonly Read[]): Promise<{ ok: number; total: number }> {
  const items = distinctClaims(reads).filter((d) => d.claim.section !== PINNED_SECTION)
    .map((d) => ({ key: d.key, text: d.claim.text, evidence: evidenceOf(facts, d.claim) }));
  const verdicts = [...(await judgeSupport(judge, items)).values()].filter((v) => v !== null);
  return { ok: verdicts.filter(Boolean).length, total: verdicts.length };
}

/** generate-narrative's `validate` log lines of these users since `from` (they carry ids and
 *  counts, never memory text). */
function validationFromLog(userIds: readonly string[], from: number | null): ProviderRun['validation'] {
  const text = logSince('runtime', from);
  if (text === null) return null;
  const out = { generations: 0, kept: 0, dropped: 0, droppedUnsupported: 0 };
  for (const line of text.split('\n')) {
    if (!line.includes('"validate"') || !userIds.some((id) => line.includes(id))) continue;
    try {
      const l = JSON.parse(line) as { step?: string; claims?: number; claims_dropped?: number; claims_dropped_unsupported?: number };
      if (l.step !== 'validate') continue;
      out.generations++;
      out.kept += l.claims ?? 0;
      out.dropped += l.claims_dropped ?? 0;
      out.droppedUnsupported += l.claims_dropped_unsupported ?? 0;
    } catch { /* a line that is not ours */ }
  }
  return out;
}

/** Runs the fixed set through the provider the functions are pointed at now, and scores it. */
export async function evaluateProvider(provider: ProviderKey, ctx: EvalContext): Promise<ProviderRun> {
  const started = performance.now();
  const log = logSize('runtime');
  // Support is scored at the threshold validation uses; with the check off (0), at its default:
  // turning the check off does not turn the measurement off.
  const [{ claim_support_min: supportCheck }] = await ctx.sql<{ claim_support_min: number }[]>`select claim_support_min from private.settings`;
  const supportMin = { validation: supportCheck, scored: supportCheck > 0 ? supportCheck : CLAIM_SUPPORT_MIN_DEFAULT };
  const mode = FAKE_MODES[provider];
  if (mode) {
    if (!ctx.fake) throw new Error(`the ${provider} provider needs a fake Gemini to script`);
    await ctx.fake.scenario(runMarker(ctx.run, provider), [mode]);
  }
  ctx.progress(`${provider}: making ${PERSONAS.length} users (notes, a memory deleted before generation, ${PERSONAS[0].facts.length + 7} memories each)`);
  let seeded: Seeded[] = [];
  let error: string | null = null;
  try {
    seeded = await seed(ctx, provider);
  } catch (err) {
    error = `making the users failed: ${err instanceof Error ? err.message : String(err)}`;
    ctx.progress(`${provider}: ${error}`);
  }
  ctx.progress(`${provider}: generating, reading, deleting, regenerating`);
  const users = await Promise.all(seeded.map((s) => runUser(ctx, s, supportMin.scored)));
  const userIds = users.map((u) => u.userId);
  const jobs = await ctx.sql<{ status: string; attempts: number; last_error_code: string | null }[]>`
    select status, attempts, last_error_code from public.narrative_jobs where user_id = any(${userIds}::uuid[])`;
  const models = await ctx.sql<{ model: string | null }[]>`
    select distinct model from public.user_narrative_versions where user_id = any(${userIds}::uuid[]) order by model`;
  return {
    provider,
    models: models.map((m) => m.model ?? 'unknown'),
    jobs: {
      total: jobs.length,
      succeeded: jobs.filter((j) => j.status === 'succeeded').length,
      failed: jobs.filter((j) => j.status === 'failed').length,
      attempts: jobs.reduce((n, j) => n + j.attempts, 0),
      errorCodes: [...new Set(jobs.flatMap((j) => (j.last_error_code ? [j.last_error_code] : [])))],
    },
    validation: validationFromLog(userIds, log),
    supportMin,
    users,
    total: sumScores(users.map((u) => u.score)),
    durationMs: performance.now() - started,
    error,
  };
}
