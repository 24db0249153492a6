// The support check's default threshold (CLAIM_SUPPORT_MIN_DEFAULT, private.settings'
// claim_support_min), calibrated on the eval's fixed users (no stack): the prompt each writer
// gets (buildPrompt over the fixture memories and notes) and the evidence behind each ref as
// validation reads it (memoryEvidence). The claims of the offline writer, of the fake's honest
// `quote` answer and hand-written paraphrases of the fixture memories (as a model words them)
// must all pass with room; the mis-cited twins of the fake's `unsupported` answer (valid refs,
// each to another line) must all fail with room. Generalisations fail too: the check's limit.
import { describe, expect, it } from 'vitest';
import { quotedClaimsJson } from '../local/fakes/gemini-behaviors.ts';
import { markerMemory, PERSONAS, type Persona } from '../scripts/eval/fixtures.ts';
import { buildPrompt, memoryEvidence, sanitizeMemoryText } from '../supabase/functions/_shared/narrative/prompt.ts';
import { writeLocalClaims } from '../supabase/functions/_shared/providers/local.ts';
import type { NarrativeInput } from '../supabase/functions/_shared/providers/types.ts';
import { CLAIM_SUPPORT_MIN_DEFAULT as MIN, contentWords, support } from './support.ts';

const NOW = Date.parse('2026-12-01T12:00:00Z');
const TARGET = '00000000-0000-4000-8000-000000000000';

/** A persona's prompt as generate-narrative builds it, and the evidence behind each ref. */
function prompt(p: Persona) {
  const t = { deletedBeforeId: TARGET, otherUsersMemoryId: TARGET };
  const fixture = [...p.facts, markerMemory(p, 'evalrunabc'), p.contradiction.old, p.contradiction.new, p.avoid.memory, p.deletedAfter,
    { content: p.hostile.content(t), daysAgo: p.hostile.daysAgo }];
  const input: NarrativeInput = {
    memories: fixture.map((m) => ({ content: m.content, created_at: new Date(NOW - m.daysAgo * 86_400_000).toISOString(), importance: m.importance ?? null })),
    notes: [{ content: p.pinned, pinned: true }, { content: p.avoid.note, pinned: false }, { content: p.contradiction.note, pinned: false }],
    omitted: 0, total: fixture.length,
  };
  const evidence = (ref: string) => {
    const i = Number(ref.slice(1)) - 1;
    const m = input.memories[i];
    return ref.startsWith('m') ? (m ? memoryEvidence(m) : '') : sanitizeMemoryText(input.notes![i]?.content ?? '');
  };
  /** The ref of the memory with this text. */
  const ref = (content: string) => `m${input.memories.findIndex((m) => m.content === content) + 1}`;
  return { input, user: buildPrompt(input).user, evidence, ref };
}

type Cited = { text: string; memory_refs: string[] };
const scores = (claims: Cited[], evidence: (ref: string) => string) =>
  claims.map((c) => support(c.text, c.memory_refs.map(evidence), MIN).score);

/** Paraphrases of fixture memories, worded as a model would (names and nouns kept, wording not),
 *  each with the memories it rests on. */
const PARAPHRASES: Record<string, [string, (p: Persona) => string[]][]> = {
  maya: [
    ['Maya Ortiz is a data engineer based in Lisbon.', (p) => [p.facts[0].content]],
    ["She is migrating Globex's Kafka consumers to Flink, due by quarter end.", (p) => [p.facts[1].content]],
    ['Keep answers brief and illustrate with SQL.', (p) => [p.facts[2].content]],
    ['Plays cello with an amateur orchestra.', (p) => [p.facts[3].content]],
    ['She recently joined Globex, where she builds streaming ingestion, after leaving Acme.', (p) => [p.contradiction.new.content, p.contradiction.old.content]],
    ['She is preparing to run a marathon in Reykjavik this August.', (p) => [p.deletedAfter.content]],
  ],
  tomas: [
    ['Tomas teaches physics at a secondary school.', (p) => [p.facts[0].content]],
    ['He is developing an optics lab curriculum for teenagers.', (p) => [p.facts[1].content]],
    ['Start explanations with a worked example.', (p) => [p.facts[2].content]],
    ['He builds model sailboats from wood as a hobby.', (p) => [p.facts[3].content]],
    ["He relocated to Berlin in March because of his partner's work.", (p) => [p.contradiction.new.content]],
  ],
  priya: [
    ['Priya co-founded Inkwell, a note-taking startup now selling to universities.', (p) => [p.facts[0].content, p.contradiction.new.content]],
    ['She is fundraising for a seed round with a pitch deck due Friday.', (p) => [p.facts[1].content]],
    ['Prefers bulleted, numeric answers to prose.', (p) => [p.facts[2].content]],
    ['She grows chili peppers and makes her own hot sauce.', (p) => [p.facts[3].content]],
    ['She plans to relocate to Nairobi this autumn to open a second office.', (p) => [p.deletedAfter.content]],
  ],
};

describe('support threshold (claim_support_min default)', () => {
  const all = PERSONAS.map((p) => ({ p, ...prompt(p) }));
  const local = all.flatMap((x) => scores(writeLocalClaims(x.input), x.evidence));
  const quote = all.flatMap((x) => scores(JSON.parse(quotedClaimsJson(x.user)).claims, x.evidence));
  // The unsupported answer is the honest one followed by a mis-cited twin of each claim.
  const twins = all.flatMap((x) => {
    const honest = (JSON.parse(quotedClaimsJson(x.user)).claims as Cited[]).length;
    return scores((JSON.parse(quotedClaimsJson(x.user, { unsupported: true })).claims as Cited[]).slice(honest), x.evidence);
  });
  const paraphrases = all.flatMap((x) => scores(PARAPHRASES[x.p.key].map(([text, cites]) =>
    ({ text, memory_refs: cites(x.p).map(x.ref) })), x.evidence));

  it('keeps every claim of the offline writer, of the honest quote fake and of a paraphrasing model, with room', () => {
    expect(local.length, 'the local writer wrote claims').toBeGreaterThan(30);
    expect(paraphrases.length, 'every paraphrase found its memories').toBe(16);
    expect(Math.min(...local), 'the local writer\'s weakest claim (1.00 on 2026-12-07)').toBeGreaterThanOrEqual(MIN + 0.6);
    expect(Math.min(...quote), 'the honest quote fake\'s weakest claim (0.67 on 2026-12-07: "The user notes: Never mention my health.")')
      .toBeGreaterThanOrEqual(MIN + 0.3);
    expect(Math.min(...paraphrases), 'the weakest paraphrase (0.40 on 2026-12-07: "Keep answers brief and illustrate with SQL.")')
      .toBeGreaterThanOrEqual(MIN + 0.05);
  });

  it('drops every mis-cited twin of the unsupported fake, with room', () => {
    expect(twins.length, 'one per memory line and unpinned note').toBe(36);
    expect(Math.max(...twins), 'its best twin (0.17 on 2026-12-07: the Quill memory quoted under the Inkwell memory\'s ref shares "sell")').toBeLessThanOrEqual(MIN - 0.15);
  });

  it('drops a generalisation: word overlap cannot see that "music" covers the cello (the check\'s limit)', () => {
    const [maya] = PERSONAS;
    expect(support('Her hobbies include music.', [maya.facts[3].content], MIN).supported, 'a generalisation').toBe(false);
    expect(support('An endurance runner.', [maya.deletedAfter.content], MIN).supported, 'another').toBe(false);
  });

  it('compares content words, not framing or counts', () => {
    expect([...contentWords('They ask to be called Maya (3 memories).')].sort(), 'framing and small counts out').toEqual(['call', 'maya']);
    expect(support('A diabetic engineer.', ['Diabetes; engineering work.'], MIN).supported, 'stems: diabetic ~ diabetes, engineer ~ engineering').toBe(true);
    expect([...contentWords('Lives, lived, live; uses, use; classes, class; sing, sings.')].sort(), 'inflections meet')
      .toEqual(['class', 'liv', 'sing', 'use']);
    expect(support('Runs from 2026-01-02 to 2026-03-04.', ['2026-01-02 a', '2026-03-04 b'], MIN).score, 'dates whole').toBe(1);
    expect(support('Several memories share a thread.', ['I live in Porto.'], MIN).supported, 'nothing in common').toBe(false);
    expect(support('Memories.', ['Memories.'], MIN).supported, 'a claim with no content word rests on nothing').toBe(false);
    expect(support('Lisbon and Porto and Berlin.', ['Lisbon'], 0.34).supported, 'one of three words: under a third').toBe(false);
    expect(support('Lisbon and Porto and Berlin.', ['Lisbon'], 0).supported, 'at 0 one shared word is enough').toBe(true);
  });
});
