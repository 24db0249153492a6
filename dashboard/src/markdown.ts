// A claim's text, rendered safely: **bold**, _italic_ and *italic* (the emphasis a provider
// writes inside a sentence). Parsing gives a small list of runs; inlineDom builds them with
// createElement and text nodes only, so model- or user-written text can never become markup.
// Headings and lists come from the claims' structure (sections, one item per claim), not text.

export interface Inline {
  text: string;
  bold: boolean;
  italic: boolean;
}

// **bold** | _italic_ (not inside a word, so snake_case stays as it is) | *italic*
const EMPHASIS = /\*\*(?=\S)([\s\S]*?\S)\*\*|(?<![\p{L}\p{N}_])_(?=\S)([\s\S]*?\S)_(?![\p{L}\p{N}_])|\*(?=[^\s*])([^*]*?[^\s*])\*/u;

export function parseInline(text: string, bold = false, italic = false): Inline[] {
  const out: Inline[] = [];
  const push = (t: string, b: boolean, i: boolean) => {
    if (!t) return;
    const last = out[out.length - 1];
    if (last && last.bold === b && last.italic === i) last.text += t;
    else out.push({ text: t, bold: b, italic: i });
  };
  let rest = text;
  while (rest) {
    const m = EMPHASIS.exec(rest);
    if (!m) {
      push(rest, bold, italic);
      break;
    }
    push(rest.slice(0, m.index), bold, italic);
    const inner = m[1] !== undefined ? parseInline(m[1], true, italic) : parseInline(m[2] ?? m[3], bold, true);
    for (const s of inner) push(s.text, s.bold, s.italic);
    rest = rest.slice(m.index + m[0].length);
  }
  return out;
}

/** Text with its emphasis as nodes: text nodes, <strong> and <em>, nothing else. */
export function inlineDom(doc: Document, text: string): Node[] {
  return parseInline(text).map((s) => {
    let node: Node = doc.createTextNode(s.text);
    if (s.italic) {
      const em = doc.createElement('em');
      em.append(node);
      node = em;
    }
    if (s.bold) {
      const strong = doc.createElement('strong');
      strong.append(node);
      node = strong;
    }
    return node;
  });
}
