// The dashboard's markdown parser (pure: no DOM, no stack). toDom, which turns the tree into
// nodes, is proved in the browser suite (tests/dashboard.test.ts).
import { describe, expect, it } from 'vitest';
import { parseInline, parseMarkdown } from './markdown.ts';

describe('narrative markdown (dashboard/src/markdown.ts)', () => {
  it('parses headings, paragraphs, lists and emphasis, and keeps markup as text', () => {
    const blocks = parseMarkdown('## Who they are\nA **bold** and _quiet_ person.\nSecond line.\n\n- one\n- *two*\n\n<b>x</b> snake_case_name');
    expect(blocks.map((b) => b.kind), 'block kinds').toEqual(['heading', 'paragraph', 'list', 'paragraph']);
    expect(blocks[1], 'lines of a paragraph are joined, emphasis split out').toEqual({
      kind: 'paragraph',
      inline: [
        { text: 'A ', bold: false, italic: false },
        { text: 'bold', bold: true, italic: false },
        { text: ' and ', bold: false, italic: false },
        { text: 'quiet', bold: false, italic: true },
        { text: ' person. Second line.', bold: false, italic: false },
      ],
    });
    expect(blocks[3], 'HTML and snake_case stay literal text').toEqual({
      kind: 'paragraph', inline: [{ text: '<b>x</b> snake_case_name', bold: false, italic: false }],
    });
    expect(parseInline('**unclosed and *nested _x_*'), 'unmatched markers stay literal').toEqual([
      { text: '**unclosed and ', bold: false, italic: false },
      { text: 'nested x', bold: false, italic: true },
    ]);
  });

  it('maps # and ## to level 2 and ### and deeper to level 3, closing hashes dropped', () => {
    const blocks = parseMarkdown('# One\n## Two ##\n### Three\n#### Four');
    expect(blocks.map((b) => (b.kind === 'heading' ? b.level : b.kind)), 'levels').toEqual([2, 2, 3, 3]);
    expect(blocks[1], 'closing hashes are not text').toEqual({ kind: 'heading', level: 2, inline: [{ text: 'Two', bold: false, italic: false }] });
  });

  it('a wrapped list line continues its item; a plain line after a list starts a paragraph', () => {
    const blocks = parseMarkdown('- first\n  still first\n- second\nafter');
    expect(blocks, 'one list of two items, then a paragraph').toEqual([
      { kind: 'list', items: [[{ text: 'first still first', bold: false, italic: false }], [{ text: 'second', bold: false, italic: false }]] },
      { kind: 'paragraph', inline: [{ text: 'after', bold: false, italic: false }] },
    ]);
  });

  it('CRLF input parses as LF; blank lines only separate', () => {
    expect(parseMarkdown('## A\r\n\r\ntext\r\n'), 'CRLF').toEqual(parseMarkdown('## A\n\ntext\n'));
    expect(parseMarkdown('\n\n\n'), 'nothing but blank lines').toEqual([]);
  });

  it('bold around italic keeps both flags', () => {
    expect(parseInline('**a _b_ c**'), 'nested emphasis').toEqual([
      { text: 'a ', bold: true, italic: false },
      { text: 'b', bold: true, italic: true },
      { text: ' c', bold: true, italic: false },
    ]);
  });
});
