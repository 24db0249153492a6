// The memories list: the user's active memories newest first, searched as they type (every
// word, as a prefix, through the full-text index), paged with "Show more", each with a Delete
// that says what it did to the narrative (the claims resting on the memory leave it at once).
import type { MemoryDeleted, MemoryItem } from '../../shared/memories.ts';
import type { Failure, NarrativeApi } from './api.ts';
import { confirmDelete } from './confirm.ts';
import { h, longText, plural, setStatus, timeEl, uid } from './dom.ts';
import { changes } from './events.ts';
import { failureText } from './format.ts';

export interface MemoriesElements {
  form: HTMLFormElement;
  search: HTMLInputElement;
  status: HTMLElement;
  list: HTMLUListElement;
  more: HTMLButtonElement;
}

// Wait for a pause in typing before searching, so each keystroke is not a request.
const TYPING_PAUSE_MS = 300;

export class MemoriesView {
  private query = '';
  private cursor: string | null = null;
  private count = 0;
  private run = 0;
  private loaded = false;
  private typing: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly el: MemoriesElements, private readonly api: NarrativeApi, private readonly onUnauthorized: () => void) {
    el.form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.search(el.search.value);
    });
    el.search.addEventListener('input', () => {
      clearTimeout(this.typing);
      if (el.search.value.trim() !== this.query) this.typing = setTimeout(() => void this.search(el.search.value), TYPING_PAUSE_MS);
    });
    el.more.addEventListener('click', () => void this.more());
    // A memory deleted from a claim's sources leaves this list too.
    changes.on((c) => {
      if (c.kind !== 'memory-deleted') return;
      const li = this.el.list.querySelector(`[data-id="${c.id}"]`);
      if (li) {
        li.remove();
        this.count--;
      }
    });
  }

  show(): void {
    if (!this.loaded) void this.search(this.el.search.value);
  }

  reset(): void {
    this.run++;
    clearTimeout(this.typing);
    this.loaded = false;
    this.query = '';
    this.cursor = null;
    this.count = 0;
    this.el.search.value = '';
    this.el.list.replaceChildren();
    this.el.more.hidden = true;
    setStatus(this.el.status, null, '');
  }

  private async search(text: string): Promise<void> {
    clearTimeout(this.typing);
    const q = text.trim();
    const run = ++this.run;
    this.el.list.setAttribute('aria-busy', 'true');
    setStatus(this.el.status, 'info', q ? `Searching for “${q}”…` : 'Loading your memories…');
    const r = await this.api.memories({ q });
    if (run !== this.run) return;
    this.el.list.setAttribute('aria-busy', 'false');
    if (r.kind !== 'ok') return this.failed(q ? 'The search failed' : 'Your memories could not be loaded', r);
    this.loaded = true;
    this.query = q;
    this.cursor = r.data.next_cursor;
    this.count = r.data.memories.length;
    this.el.list.replaceChildren(...r.data.memories.map((m) => this.item(m)));
    this.el.more.hidden = this.cursor === null;
    this.summary();
  }

  private async more(): Promise<void> {
    if (!this.cursor) return;
    const run = ++this.run;
    this.el.more.disabled = true;
    const r = await this.api.memories({ q: this.query, cursor: this.cursor });
    if (run !== this.run) return;
    this.el.more.disabled = false;
    if (r.kind !== 'ok') return this.failed('More memories could not be loaded', r);
    const items = r.data.memories.map((m) => this.item(m));
    this.el.list.append(...items);
    this.cursor = r.data.next_cursor;
    this.count += items.length;
    this.el.more.hidden = this.cursor === null;
    // The button may be gone; the first new memory's Delete keeps the keyboard where the list grew.
    if (this.el.more.hidden) items[0]?.querySelector<HTMLElement>('button[data-action="delete"]')?.focus();
    this.summary();
  }

  private summary(): void {
    const n = this.count;
    const more = this.cursor !== null;
    if (this.query) {
      setStatus(this.el.status, null, n ? `${more ? `${n}+` : n} ${n === 1 && !more ? 'memory matches' : 'memories match'} “${this.query}”`
        : `No memories match “${this.query}”`, n ? '' : 'Try fewer or shorter words.');
    } else {
      setStatus(this.el.status, null, n ? `${plural(n, 'memory', 'memories')}, newest first${more ? ' — more below' : ''}` : 'You have no memories yet');
    }
  }

  private item(m: MemoryItem): HTMLLIElement {
    const text = longText(m.content, 'item-text');
    text.id = uid('memory-text');
    const del = h('button', { type: 'button', class: 'button button-danger-quiet button-small', 'data-action': 'delete', 'aria-describedby': text.id }, 'Delete');
    const li = h('li', { class: 'item memory', 'data-id': m.id }, text,
      h('div', { class: 'item-foot' }, h('p', { class: 'item-meta' }, 'Added ', timeEl(m.created_at)), del));
    del.addEventListener('click', () => void this.remove(m, li, del));
    return li;
  }

  private async remove(m: MemoryItem, li: HTMLLIElement, button: HTMLButtonElement): Promise<void> {
    const yes = await confirmDelete({
      title: 'Delete this memory?', quote: m.content, confirm: 'Delete memory',
      detail: 'It is deleted from your memories, and every statement of your narrative resting on it is removed now. A new version is then written without it.',
    });
    if (!yes) return;
    button.disabled = true;
    const r = await this.api.deleteMemory(m.id);
    const gone = r.kind === 'http' && r.status === 404;
    if (r.kind !== 'ok' && !gone) {
      button.disabled = false;
      return this.failed('The memory was not deleted', r);
    }
    const next = (li.nextElementSibling ?? li.previousElementSibling)?.querySelector<HTMLElement>('button[data-action="delete"]');
    changes.emit({ kind: 'memory-deleted', id: m.id });
    li.remove();
    (next ?? this.el.search).focus();
    setStatus(this.el.status, 'info', gone ? 'That memory was already deleted.' : 'Memory deleted.', r.kind === 'ok' ? effect(r.data) : '');
  }

  private failed(what: string, f: Failure): void {
    this.el.list.setAttribute('aria-busy', 'false');
    if (f.kind === 'unauthorized') return this.onUnauthorized();
    const { title, detail } = failureText(f);
    setStatus(this.el.status, 'error', `${what}: ${title}`, detail);
  }
}

/** What a delete did to the narrative, in words. */
function effect(d: MemoryDeleted): string {
  if (d.narrative_removed) return 'You now have too few memories for a narrative, so it was removed along with its history.';
  if (d.claims_removed === 0) return 'Your narrative did not rest on it.';
  return `${plural(d.claims_removed, 'statement')} of your narrative resting on it ${d.claims_removed === 1 ? 'was' : 'were'} removed; a new version is being written.`;
}
