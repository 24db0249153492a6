// Building the page from data with createElement and text nodes only: nothing here parses
// HTML, so a memory, a note or a claim can never become markup.

type Attrs = Record<string, string | boolean | undefined>;
type Child = Node | string | null | undefined | false;

/** An element with attributes (`class`, `id`, aria-*, data-*; true is an empty attribute,
 *  false/undefined none) and children (strings become text nodes). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? '' : value);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

let ids = 0;
/** A page-unique id for aria-controls / aria-labelledby pairs. */
export const uid = (prefix: string) => `${prefix}-${++ids}`;

/** <time> with the date (and the full local time as its title). */
export function timeEl(iso: string, withTime = false): HTMLTimeElement {
  const d = new Date(iso);
  const t = h('time', { datetime: iso, title: d.toLocaleString() });
  t.textContent = withTime
    ? d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })
    : d.toLocaleDateString(undefined, { dateStyle: 'medium' });
  return t;
}

/** Where a long text is cut until "Show all" (a memory may be 20,000 characters). */
const CLAMP_CHARS = 320;

/** A paragraph of plain text; past CLAMP_CHARS it is cut at a word with a Show all / Show less toggle. */
export function longText(text: string, className: string): HTMLElement {
  const p = h('p', { class: className });
  if (text.length <= CLAMP_CHARS) {
    p.textContent = text;
    return p;
  }
  const cut = text.slice(0, CLAMP_CHARS).replace(/\s+\S*$/, '');
  const body = h('span', {}, `${cut}…`);
  const toggle = h('button', { type: 'button', class: 'link-button', 'aria-expanded': 'false' }, 'Show all');
  toggle.addEventListener('click', () => {
    const open = toggle.getAttribute('aria-expanded') !== 'true';
    body.textContent = open ? text : `${cut}…`;
    toggle.setAttribute('aria-expanded', String(open));
    toggle.textContent = open ? 'Show less' : 'Show all';
  });
  p.append(body, ' ', toggle);
  return p;
}

/** "1 claim", "2 claims". */
export const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** A status region's text: a bold title and an optional detail, or nothing (it collapses). The
 *  region itself stays in the page, so screen readers keep watching it. */
export function setStatus(status: HTMLElement, tone: 'info' | 'warn' | 'error' | null, title: string, detail = ''): void {
  status.className = tone ? `status status-${tone}` : 'status';
  status.replaceChildren(...(title ? [h('strong', {}, title)] : []), ...(detail ? [h('span', {}, detail)] : []));
}
