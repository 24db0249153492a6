// The narrative's markdown, rendered safely: `#`/`##`/`###` headings, paragraphs, `- ` lists,
// **bold**, _italic_ and *italic*. Parsing gives a small tree; toDom builds it with
// createElement and text nodes only, so model-written text can never become markup.

export interface Inline {
  text: string;
  bold: boolean;
  italic: boolean;
}

export type Block =
  | { kind: 'heading'; level: 2 | 3; inline: Inline[] }
  | { kind: 'paragraph'; inline: Inline[] }
  | { kind: 'list'; items: Inline[][] };

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

const HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/;
const ITEM = /^\s{0,3}[-*+]\s+(.*)$/;

export function parseMarkdown(source: string): Block[] {
  const blocks: Block[] = [];
  let paragraph: string[] = [];
  let items: string[] | null = null;
  const flush = () => {
    if (paragraph.length) blocks.push({ kind: 'paragraph', inline: parseInline(paragraph.join(' ')) });
    if (items) blocks.push({ kind: 'list', items: items.map((i) => parseInline(i)) });
    paragraph = [];
    items = null;
  };
  for (const raw of source.replace(/\r\n?/g, '\n').split('\n')) {
    const line = raw.trim();
    if (!line) {
      flush();
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      flush();
      blocks.push({ kind: 'heading', level: heading[1].length >= 3 ? 3 : 2, inline: parseInline(heading[2]) });
      continue;
    }
    const item = ITEM.exec(raw);
    if (item) {
      if (paragraph.length) flush();
      (items ??= []).push(item[1].trim());
      continue;
    }
    // A plain line right after a list item continues that item (a wrapped line).
    if (items && /^\s/.test(raw)) items[items.length - 1] += ` ${line}`;
    else {
      if (items) flush();
      paragraph.push(line);
    }
  }
  flush();
  return blocks;
}

function inlineNodes(doc: Document, inline: Inline[]): Node[] {
  return inline.map((s) => {
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

export function toDom(doc: Document, blocks: Block[]): DocumentFragment {
  const frag = doc.createDocumentFragment();
  for (const b of blocks) {
    if (b.kind === 'list') {
      const ul = doc.createElement('ul');
      for (const item of b.items) {
        const li = doc.createElement('li');
        li.append(...inlineNodes(doc, item));
        ul.append(li);
      }
      frag.append(ul);
    } else {
      const el = doc.createElement(b.kind === 'heading' ? `h${b.level}` : 'p');
      el.append(...inlineNodes(doc, b.inline));
      frag.append(el);
    }
  }
  return frag;
}
