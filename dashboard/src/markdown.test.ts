// A claim's inline emphasis (pure: no DOM, no stack). inlineDom, which turns the runs into
// nodes, is proved in the browser suite (tests/dashboard.test.ts): markup stays text there.
import { describe, expect, it } from 'vitest';
import { parseInline } from './markdown.ts';

const plain = (text: string) => ({ text, bold: false, italic: false });

describe('claim text emphasis (dashboard/src/markdown.ts)', () => {
  it('splits bold and italic out and keeps markup, HTML and snake_case as text', () => {
    expect(parseInline('A **bold** and _quiet_ person.'), 'emphasis split out').toEqual([
      plain('A '), { text: 'bold', bold: true, italic: false }, plain(' and '), { text: 'quiet', bold: false, italic: true }, plain(' person.'),
    ]);
    expect(parseInline('<b>x</b> snake_case_name'), 'HTML and snake_case stay literal text').toEqual([plain('<b>x</b> snake_case_name')]);
    expect(parseInline('**unclosed and *nested _x_*'), 'unmatched markers stay literal').toEqual([
      plain('**unclosed and '), { text: 'nested x', bold: false, italic: true },
    ]);
  });

  it('bold around italic keeps both flags', () => {
    expect(parseInline('**a _b_ c**'), 'nested emphasis').toEqual([
      { text: 'a ', bold: true, italic: false },
      { text: 'b', bold: true, italic: true },
      { text: ' c', bold: true, italic: false },
    ]);
  });

  it('an empty text has no runs', () => {
    expect(parseInline(''), 'nothing').toEqual([]);
  });
});
