// Output validation (pure: no stack): what a provider's text must be before it may replace a
// stored narrative, and the contract constants the SQL and the dashboard rely on.
import { describe, expect, it } from 'vitest';
import {
  generateNarrativeBody, laneOf, NARRATIVE_MAX_CHARS, NARRATIVE_MIN_CHARS, NARRATIVE_SECTIONS, narrativeText,
} from './narrative.ts';

const body = (filler = 'They keep careful notes and like concrete answers. ') =>
  NARRATIVE_SECTIONS.map((s) => `## ${s}\n${filler.repeat(2)}`).join('\n\n');

describe('narrativeText', () => {
  it('accepts the four sections and gives the text back trimmed', () => {
    const text = body().trim();
    const r = narrativeText.safeParse(`\n  ${text}  \n`);
    expect(r.success, 'valid').toBe(true);
    expect(r.data, 'trimmed').toBe(text);
  });

  it('refuses a narrative missing any one section', () => {
    for (const missing of NARRATIVE_SECTIONS) {
      const text = body().replace(`## ${missing}`, '## Something else');
      expect(narrativeText.safeParse(text).success, `without "${missing}"`).toBe(false);
    }
  });

  it('a section title must be a heading line of its own, not text that mentions it', () => {
    const inline = body().replace(`## ${NARRATIVE_SECTIONS[2]}`, `Note: ${NARRATIVE_SECTIONS[2]}`);
    expect(narrativeText.safeParse(inline).success, 'mentioned, not a heading').toBe(false);
    const loose = body().replace(`## ${NARRATIVE_SECTIONS[2]}`, `##   ${NARRATIVE_SECTIONS[2].toUpperCase()}   `);
    expect(narrativeText.safeParse(loose).success, 'spacing and case around a heading are tolerated').toBe(true);
  });

  it('refuses text shorter than the minimum or longer than the maximum, after trimming', () => {
    const short = NARRATIVE_SECTIONS.map((s) => `## ${s}`).join('\n');
    expect(short.length, 'the fixture is under the minimum').toBeLessThan(NARRATIVE_MIN_CHARS);
    expect(narrativeText.safeParse(short + ' '.repeat(NARRATIVE_MIN_CHARS)).success, 'padding with spaces does not count').toBe(false);
    const long = body('x'.repeat(NARRATIVE_MAX_CHARS / 4));
    expect(long.length, 'the fixture is over the maximum').toBeGreaterThan(NARRATIVE_MAX_CHARS);
    expect(narrativeText.safeParse(long).success, 'too long').toBe(false);
  });

  it('refuses what is not a string', () => {
    expect(narrativeText.safeParse(null).success, 'null').toBe(false);
    expect(narrativeText.safeParse({ text: body() }).success, 'an object').toBe(false);
  });
});

describe('contract shapes', () => {
  it('generate-narrative takes exactly a positive integer job_id', () => {
    expect(generateNarrativeBody.safeParse({ job_id: 3 }).success, 'valid').toBe(true);
    expect(generateNarrativeBody.safeParse({ job_id: 0 }).success, 'zero').toBe(false);
    expect(generateNarrativeBody.safeParse({ job_id: 1.5 }).success, 'fraction').toBe(false);
    expect(generateNarrativeBody.safeParse({ job_id: 1, extra: true }).success, 'unknown field').toBe(false);
  });

  it('user-facing reasons run in the interactive lane, bulk ones in the bulk lane', () => {
    expect(laneOf('manual'), 'manual').toBe('interactive');
    expect(laneOf('cache_miss'), 'cache_miss').toBe('interactive');
    expect(laneOf('backfill'), 'backfill').toBe('bulk');
    expect(laneOf('weekly'), 'weekly').toBe('bulk');
  });
});
