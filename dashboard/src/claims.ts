// The narrative as its claims: one item per claim under its section, each a button that opens
// the claim's sources (the memories it cites, with their text and date, and the notes it
// rests on), each source with a Delete button. What a delete does to the narrative is the
// panel's business (actions); this only renders and loads sources.
import type { MemoryItem } from '../../shared/memories.ts';
import { NARRATIVE_SECTIONS, NO_CLAIMS, PINNED_SECTION, type NarrativeClaim, type NarrativeNote } from '../../shared/narrative.ts';
import { map, type Failure, type NarrativeApi, type Result } from './api.ts';
import { h, longText, plural, timeEl, uid } from './dom.ts';
import { failureText } from './format.ts';
import { inlineDom } from './markdown.ts';

/** Where a claim was: its section and its index there, to put the focus back near it. */
export interface ClaimPlace { section: string; index: number }

export interface SourceActions {
  deleteMemory(memory: MemoryItem, at: ClaimPlace, button: HTMLButtonElement): void;
  deleteNote(note: NarrativeNote, at: ClaimPlace, button: HTMLButtonElement): void;
  unauthorized(): void;
}

const none = <T>(): Result<T[]> => ({ kind: 'ok', data: [] });

export class ClaimsView {
  constructor(private readonly body: HTMLElement, private readonly api: NarrativeApi, private readonly actions: SourceActions) {}

  /** Sections in the stored order (pinned notes first when there are any), every claim its own item. */
  render(claims: readonly NarrativeClaim[]): void {
    const sections: readonly string[] = claims.some((c) => c.section === PINNED_SECTION)
      ? [PINNED_SECTION, ...NARRATIVE_SECTIONS] : NARRATIVE_SECTIONS;
    this.body.replaceChildren(...sections.map((title) => {
      const mine = claims.filter((c) => c.section === title);
      return h('div', { class: 'claim-section', 'data-section': title },
        h('h2', { tabindex: '-1' }, title),
        mine.length
          ? h('ul', { class: 'claims' }, ...mine.map((c, index) => this.claim(c, { section: title, index })))
          : h('p', { class: 'empty' }, NO_CLAIMS));
    }));
  }

  /** Focus near where a removed claim was: the claim now at its place, the one before, the
   *  section heading, or nothing (the caller's fallback) when the section is gone. */
  focusNear(at: ClaimPlace): boolean {
    const section = [...this.body.querySelectorAll<HTMLElement>('.claim-section')].find((s) => s.dataset.section === at.section);
    if (!section) return false;
    const claims = section.querySelectorAll<HTMLElement>('.claim-toggle');
    (claims[at.index] ?? claims[at.index - 1] ?? section.querySelector('h2'))?.focus();
    return true;
  }

  private claim(c: NarrativeClaim, at: ClaimPlace): HTMLLIElement {
    const sourcesId = uid('sources');
    const notes = c.note_ids?.length ?? 0;
    const cue = c.section === PINNED_SECTION ? 'your pinned note'
      : [c.memory_ids.length && plural(c.memory_ids.length, 'memory', 'memories'), notes && plural(notes, 'note')].filter(Boolean).join(' and ');
    const toggle = h('button', { type: 'button', class: 'claim-toggle', 'aria-expanded': 'false', 'aria-controls': sourcesId },
      h('span', { class: 'claim-text' }, ...inlineDom(document, c.text)),
      h('span', { class: 'claim-cue' }, `Sources: ${cue}`));
    const sources = h('div', { id: sourcesId, class: 'sources', hidden: true });
    let loaded = false;
    toggle.addEventListener('click', () => {
      const open = toggle.getAttribute('aria-expanded') !== 'true';
      toggle.setAttribute('aria-expanded', String(open));
      sources.hidden = !open;
      if (open && !loaded) {
        loaded = true;
        void this.load(c, at, sources).then((ok) => { loaded = ok; });
      }
    });
    return h('li', { class: 'claim' }, toggle, sources);
  }

  /** Fills a claim's sources; false when they could not be read (opening again retries). */
  private async load(c: NarrativeClaim, at: ClaimPlace, box: HTMLElement): Promise<boolean> {
    box.replaceChildren(h('p', { class: 'sources-status', role: 'status' }, 'Loading sources…'));
    const [memories, notes] = await Promise.all([
      c.memory_ids.length ? this.api.openMemories(c.memory_ids) : none<MemoryItem>(),
      c.note_ids?.length ? this.api.notes().then((r) => map(r, (d) => d.notes)) : none<NarrativeNote>(),
    ]);
    if (memories.kind !== 'ok' || notes.kind !== 'ok') {
      const f = (memories.kind !== 'ok' ? memories : notes) as Failure;
      if (f.kind === 'unauthorized') {
        this.actions.unauthorized();
        return false;
      }
      const { title } = failureText(f);
      box.replaceChildren(h('p', { class: 'sources-status status-error', role: 'status' },
        `The sources could not be loaded. ${title}. Close and open the statement to try again.`));
      return false;
    }
    const cited = (c.note_ids ?? []).flatMap((id) => notes.data.filter((n) => n.id === id));
    const items = [...cited.map((n) => this.noteSource(n, at)), ...memories.data.map((m) => this.memorySource(m, at))];
    const gone = c.memory_ids.length + (c.note_ids?.length ?? 0) - items.length;
    if (gone > 0) {
      items.push(h('li', { class: 'source source-gone' },
        `${gone === 1 ? 'One source is' : `${gone} sources are`} no longer there (deleted or changed); this statement leaves your narrative with the next refresh.`));
    }
    box.replaceChildren(h('ul', { class: 'source-list', 'aria-label': 'Sources' }, ...items));
    return true;
  }

  private memorySource(m: MemoryItem, at: ClaimPlace): HTMLLIElement {
    const text = longText(m.content, 'source-text');
    text.id = uid('source-text');
    const del = h('button', { type: 'button', class: 'button button-danger-quiet button-small', 'aria-describedby': text.id }, 'Delete memory');
    del.addEventListener('click', () => this.actions.deleteMemory(m, at, del));
    return h('li', { class: 'source' },
      h('p', { class: 'source-meta' }, h('span', { class: 'source-kind' }, 'Memory'), ' · ', timeEl(m.created_at),
        m.state === 'archived' ? ' · archived' : ''),
      text, h('div', { class: 'source-actions' }, del));
  }

  private noteSource(n: NarrativeNote, at: ClaimPlace): HTMLLIElement {
    const text = longText(n.content, 'source-text');
    text.id = uid('source-text');
    const del = h('button', { type: 'button', class: 'button button-danger-quiet button-small', 'aria-describedby': text.id }, 'Delete note');
    del.addEventListener('click', () => this.actions.deleteNote(n, at, del));
    return h('li', { class: 'source source-note' },
      h('p', { class: 'source-meta' }, h('span', { class: 'source-kind' }, n.pinned ? 'Your pinned note' : 'Your note'), ' · ', timeEl(n.created_at)),
      text, h('div', { class: 'source-actions' }, del));
  }
}
