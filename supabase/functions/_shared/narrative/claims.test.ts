// acceptClaims' support check: a claim must rest on what it cites (shared/support.ts), read from
// the prompt text of the cited memories (date and sanitised text) and notes. A mis-cited claim is
// dropped and counted apart from the ones with bad refs; pinned notes are not the model's and are
// not checked; claim_support_min 0 turns the check off.
import { describe, expect, it } from 'vitest';
import { NARRATIVE_SECTIONS } from '../../../../shared/narrative.ts';
import { CLAIM_SUPPORT_MIN_DEFAULT } from '../../../../shared/support.ts';
import { ProviderError } from '../providers/types.ts';
import { acceptClaims, type PromptMemoryRow, type PromptNoteRow } from './claims.ts';

const [WHO, WORK, HOW, THEMES] = NARRATIVE_SECTIONS;
const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const memories: PromptMemoryRow[] = [
  "I'm training for the Reykjavik marathon in August.",
  'Plays the cello in an amateur orchestra on Thursday evenings.',
  'Prefers short answers with <b>SQL</b> examples over long explanations.',
].map((content, i) => ({ id: id(i + 1), content, created_at: `2026-0${i + 1}-15T10:00:00Z`, importance: 0.5 }));
const notes: PromptNoteRow[] = [
  { id: id(11), content: 'Pinned: a line no claim words match', pinned: true },
  { id: id(12), content: 'I left Acme in May; I work at Globex now.', pinned: false },
];
const answer = (claims: [string, string, string[]][]) =>
  JSON.stringify({ claims: claims.map(([section, text, memory_refs]) => ({ section, text, memory_refs })) });
const rules = { minClaims: 2, supportMin: CLAIM_SUPPORT_MIN_DEFAULT };

describe('acceptClaims: claims rest on what they cite', () => {
  const text = answer([
    [WHO, 'She is preparing to run a marathon in Reykjavik this August.', ['m1']],
    [WORK, 'Plays cello with an amateur orchestra.', ['m2']],
    // Memory 1's fact under memory 2's ref: every ref valid.
    [THEMES, "I'm training for the Reykjavik marathon in August.", ['m2']],
    [HOW, 'Keep answers short, with SQL.', ['m3']],
    [WHO, 'Works at Globex now, having left Acme.', ['n2']],
    [WORK, 'Bogus ref.', ['m4']],
  ]);

  it('drops a claim quoting one memory while citing another, and counts it apart', () => {
    const a = acceptClaims(text, 'STOP', { memories, notes }, rules);
    expect(a.claims.map((c) => c.text), 'pinned first, then the supported claims; the mis-cited one is gone').toEqual([
      notes[0].content, 'She is preparing to run a marathon in Reykjavik this August.', 'Plays cello with an amateur orchestra.',
      'Keep answers short, with SQL.', 'Works at Globex now, having left Acme.']);
    expect(a.droppedUnsupported, 'one claim dropped as unsupported').toBe(1);
    expect(a.dropped, 'the bad ref counted as before, not as unsupported').toBe(1);
    expect(a.claims.some((c) => c.section === THEMES), 'nothing of the dropped claim kept').toBe(false);
  });

  it('reads what the prompt showed: a memory\'s date and text, a note\'s text (every word found at min 1)', () => {
    const a = acceptClaims(answer([
      [WHO, 'Since 2026-01-15 training for Reykjavik.', ['m1']],
      [WORK, 'Left Acme; Globex now.', ['n2']],
      [HOW, 'Since 2026-02-15 plays the cello.', ['m1']],
    ]), 'STOP', { memories, notes }, { minClaims: 2, supportMin: 1 });
    expect(a.claims.map((c) => c.text), 'the pinned note unchecked, the two claims whose every word is cited').toEqual([
      notes[0].content, 'Since 2026-01-15 training for Reykjavik.', 'Left Acme; Globex now.']);
    expect(a.droppedUnsupported, 'the claim with another memory\'s date and fact').toBe(1);
  });

  it('with claim_support_min 0 the check is off', () => {
    const a = acceptClaims(text, 'STOP', { memories, notes }, { ...rules, supportMin: 0 });
    expect(a.droppedUnsupported, 'nothing dropped as unsupported').toBe(0);
    expect(a.claims.filter((c) => c.section === THEMES).map((c) => c.memory_ids), 'the mis-cited claim kept, citing memory 2')
      .toEqual([[memories[1].id]]);
  });

  it('fewer than min_claims supported is invalid_output (retryable), saying why', () => {
    const err = (() => {
      try {
        acceptClaims(answer([[WHO, 'Enjoys music.', ['m2']], [WORK, 'An endurance runner.', ['m1']], [HOW, 'Plays the cello.', ['m2']]]),
          'STOP', { memories }, rules);
      } catch (e) {
        return e;
      }
    })();
    expect(err, 'a ProviderError').toBeInstanceOf(ProviderError);
    expect((err as ProviderError).code, 'invalid_output').toBe('invalid_output');
    expect((err as ProviderError).retryable, 'retryable: the next answer may cite better').toBe(true);
    expect((err as ProviderError).message, 'the counts, no text').toBe(
      'only 1 claims with valid citations that rest on what they cite (at least 2 needed; 0 dropped for their citations, 2 for not resting on them)');
  });
});
