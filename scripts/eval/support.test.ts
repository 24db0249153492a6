// The support check's threshold, calibrated on the fixed users (no stack): the prompt each
// writer gets (buildPrompt over the fixture memories and notes), then the claims of the offline
// writer (writeLocalClaims) and of the fake's honest `quote` answer must all be supported, and
// the fake's `unsupported` answer (valid refs, each to another line) must all fail — with room
// on both sides of SUPPORT_THRESHOLD.
import { describe, expect, it } from 'vitest';
import { quotedClaimsJson } from '../../local/fakes/gemini-behaviors.ts';
import { buildPrompt } from '../../supabase/functions/_shared/narrative/prompt.ts';
import { writeLocalClaims } from '../../supabase/functions/_shared/providers/local.ts';
import type { NarrativeInput } from '../../supabase/functions/_shared/providers/types.ts';
import { markerMemory, PERSONAS, type Persona } from './fixtures.ts';
import { contentWords, support, SUPPORT_THRESHOLD } from './support.ts';

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
    return ref.startsWith('m') ? (m ? `${m.created_at.slice(0, 10)} ${m.content}` : '') : input.notes![i]?.content ?? '';
  };
  return { input, user: buildPrompt(input).user, evidence };
}

const scores = (claims: { text: string; memory_refs: string[] }[], evidence: (ref: string) => string) =>
  claims.map((c) => support(c.text, c.memory_refs.map(evidence)).score);

describe('support threshold', () => {
  const all = PERSONAS.map(prompt);
  const local = all.flatMap((p) => scores(writeLocalClaims(p.input), p.evidence));
  const quote = all.flatMap((p) => scores(JSON.parse(quotedClaimsJson(p.user)).claims, p.evidence));
  const unsupported = all.flatMap((p) => scores(JSON.parse(quotedClaimsJson(p.user, { unsupported: true })).claims, p.evidence));

  it('passes every claim of the offline writer and of the honest quote fake', () => {
    expect(local.length, 'the local writer wrote claims').toBeGreaterThan(30);
    expect(Math.min(...local), 'the local writer\'s weakest claim (1.00 on 2026-12-07)').toBeGreaterThanOrEqual(SUPPORT_THRESHOLD + 0.15);
    expect(Math.min(...quote), 'the honest quote fake\'s weakest claim (0.67 on 2026-12-07: "The user notes: Never mention my health.")').toBeGreaterThanOrEqual(SUPPORT_THRESHOLD + 0.15);
  });

  it('fails every claim of the unsupported fake', () => {
    expect(unsupported.length, 'one per memory line and unpinned note').toBe(36);
    expect(Math.max(...unsupported), 'its best claim (0.20 on 2026-12-07: two Inkwell/Quill memories share "startup")').toBeLessThanOrEqual(SUPPORT_THRESHOLD - 0.25);
  });

  it('compares content words, not framing or counts', () => {
    expect([...contentWords('They ask to be called Maya (3 memories).')].sort(), 'framing and small counts out').toEqual(['call', 'maya']);
    expect(support('A diabetic engineer.', ['Diabetes; engineering work.']).supported, 'stems: diabetic ~ diabetes, engineer ~ engineering').toBe(true);
    expect(support('Runs from 2026-01-02 to 2026-03-04.', ['2026-01-02 a', '2026-03-04 b']).score, 'dates whole').toBe(1);
    expect(support('Several memories share a thread.', ['I live in Porto.']).supported, 'nothing in common').toBe(false);
    expect(support('Memories.', ['Memories.']).supported, 'a claim with no content word rests on nothing').toBe(false);
  });
});
