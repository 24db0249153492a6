// The notes editor: what the user tells the writer (notes outrank memories; pinned ones are
// quoted word for word under "Pinned by you"). List, add, edit, pin/unpin, delete, through
// narrative/notes as the user. A note is one line of at most NOTE_MAX_CHARS characters: line
// breaks typed or pasted become spaces, and a counter says how many are left. The note limit is
// the server's (private.settings.max_notes, which the list answers with): its count shows it,
// and its error is shown as it is.
import { NOTE_LINE_BREAK, NOTE_MAX_CHARS, NOTES_LIMIT_MESSAGE_PREFIX, type NarrativeNote } from '../../shared/narrative.ts';
import type { Failure, NarrativeApi, Result } from './api.ts';
import { confirmDelete } from './confirm.ts';
import { h, setStatus, timeEl, uid } from './dom.ts';
import { changes } from './events.ts';
import { failureText } from './format.ts';

export interface NotesElements {
  form: HTMLFormElement;
  input: HTMLTextAreaElement;
  pinned: HTMLInputElement;
  counter: HTMLElement;
  add: HTMLButtonElement;
  formError: HTMLElement;
  status: HTMLElement;
  count: HTMLElement;
  list: HTMLUListElement;
}

const LINE_BREAKS = new RegExp(`${NOTE_LINE_BREAK.source}+`, 'g');

/** Keeps a note field one line, its counter current and its submit button usable only when the
 *  text fits; Enter submits. */
function noteField(area: HTMLTextAreaElement, counter: HTMLElement, submit: HTMLButtonElement): () => void {
  const update = () => {
    if (NOTE_LINE_BREAK.test(area.value)) {
      const at = area.selectionStart;
      area.value = area.value.replace(LINE_BREAKS, ' ');
      area.setSelectionRange(at, at);
    }
    const n = area.value.length;
    const over = n - NOTE_MAX_CHARS;
    counter.textContent = over > 0 ? `${n} / ${NOTE_MAX_CHARS} — ${over} over the limit` : `${n} / ${NOTE_MAX_CHARS}`;
    counter.classList.toggle('over', over > 0);
    area.setAttribute('aria-invalid', String(over > 0));
    submit.disabled = over > 0 || area.value.trim() === '';
  };
  area.addEventListener('input', update);
  area.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.isComposing) {
      e.preventDefault();
      if (!submit.disabled) area.form?.requestSubmit(submit);
    }
  });
  update();
  return update;
}

/** "notes_limit: at most 20 notes per user; delete one first" → "At most 20 notes per user; delete one first." */
function limitMessage(message: string | null, max: number | null): string {
  const m = (message ?? '').replace(NOTES_LIMIT_MESSAGE_PREFIX, '').trim();
  if (m) return `${m[0].toUpperCase()}${m.slice(1)}${/[.!]$/.test(m) ? '' : '.'}`;
  return max === null ? 'You have as many notes as you may keep; delete one first.' : `At most ${max} notes; delete one first.`;
}

export class NotesEditor {
  private notes: NarrativeNote[] | null = null;
  /** How many notes the user may keep, as the last list said (private.settings.max_notes). */
  private maxNotes: number | null = null;
  private dirty = true;
  private run = 0;
  private readonly refreshCounter: () => void;

  constructor(private readonly el: NotesElements, private readonly api: NarrativeApi, private readonly onUnauthorized: () => void) {
    this.refreshCounter = noteField(el.input, el.counter, el.add);
    el.form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.add();
    });
    changes.on((c) => { if (c.kind === 'notes-changed') this.dirty = true; });
  }

  show(): void {
    if (this.dirty) void this.load();
  }

  reset(): void {
    this.run++;
    this.notes = null;
    this.maxNotes = null;
    this.dirty = true;
    this.el.input.value = '';
    this.el.pinned.checked = false;
    this.refreshCounter();
    this.el.formError.replaceChildren();
    this.say(null, '');
    this.el.count.textContent = '';
    this.el.list.replaceChildren();
  }

  private async load(): Promise<void> {
    this.dirty = false;
    const run = ++this.run;
    if (!this.notes) this.say('info', 'Loading your notes…');
    const r = await this.api.notes();
    if (run !== this.run) return;
    if (r.kind !== 'ok') {
      this.dirty = true;
      return this.failed('Your notes could not be loaded', r);
    }
    this.notes = r.data.notes;
    this.maxNotes = r.data.max_notes;
    this.say(null, '');
    this.render();
  }

  private render(focus?: { id: string; action: string }): void {
    const notes = this.notes ?? [];
    this.el.count.textContent = !notes.length ? 'No notes yet'
      : this.maxNotes === null ? `Your notes (${notes.length})` : `Your notes (${notes.length} of ${this.maxNotes})`;
    this.el.list.replaceChildren(...notes.map((n) => this.item(n)));
    if (focus) this.el.list.querySelector<HTMLElement>(`[data-id="${focus.id}"] [data-action="${focus.action}"]`)?.focus();
  }

  private item(n: NarrativeNote): HTMLLIElement {
    const textId = uid('note-text');
    const pin = h('input', { type: 'checkbox', 'data-action': 'pin', 'aria-describedby': textId, checked: n.pinned });
    pin.addEventListener('change', () => void this.save(n, { pinned: pin.checked }, 'pin', () => { pin.checked = n.pinned; }));
    const edit = h('button', { type: 'button', class: 'button button-quiet button-small', 'data-action': 'edit', 'aria-describedby': textId }, 'Edit');
    const del = h('button', { type: 'button', class: 'button button-danger-quiet button-small', 'data-action': 'delete', 'aria-describedby': textId }, 'Delete');
    const li = h('li', { class: n.pinned ? 'item note note-pinned' : 'item note', 'data-id': n.id },
      h('p', { class: 'item-text', id: textId }, n.content),
      h('p', { class: 'item-meta' }, 'Added ', timeEl(n.created_at)),
      h('div', { class: 'item-actions' }, h('label', { class: 'check' }, pin, ' Pinned to my narrative'), edit, del));
    edit.addEventListener('click', () => this.edit(n, li));
    del.addEventListener('click', () => void this.remove(n, del));
    return li;
  }

  private edit(n: NarrativeNote, li: HTMLLIElement): void {
    const counterId = uid('note-count');
    const area = h('textarea', { rows: '3', class: 'note-edit', 'aria-label': 'Edit note', 'aria-describedby': counterId });
    area.value = n.content;
    const counter = h('span', { id: counterId, class: 'counter' });
    const save = h('button', { type: 'submit', class: 'button button-small' }, 'Save');
    const cancel = h('button', { type: 'button', class: 'button button-quiet button-small' }, 'Cancel');
    const form = h('form', { class: 'note-form note-edit-form', novalidate: true },
      area, h('div', { class: 'note-form-row' }, counter, h('span', { class: 'item-actions' }, cancel, save)));
    noteField(area, counter, save);
    const close = () => this.render({ id: n.id, action: 'edit' });
    cancel.addEventListener('click', close);
    area.addEventListener('keydown', (e) => { if (e.key === 'Escape') close(); });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const content = area.value.trim();
      if (content === n.content) return close();
      save.disabled = true;
      void this.save(n, { content }, 'edit', () => { save.disabled = false; });
    });
    li.replaceChildren(form);
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
  }

  private async add(): Promise<void> {
    const content = this.el.input.value.trim();
    if (!content || content.length > NOTE_MAX_CHARS) return;
    this.el.add.disabled = true;
    this.el.formError.replaceChildren();
    this.say(null, '');
    const pinned = this.el.pinned.checked;
    const r = await this.api.addNote(content, pinned);
    this.refreshCounter();
    if (r.kind !== 'ok') {
      if (r.kind === 'unauthorized') return this.onUnauthorized();
      const [title, detail] = r.kind === 'http' && r.code === 'notes_limit'
        ? ['Note not added: you have reached the limit', limitMessage(r.message, this.maxNotes)]
        : ['Note not added', failureText(r).title + (r.kind === 'http' && r.message ? ` — ${r.message}` : '')];
      this.el.formError.replaceChildren(h('strong', {}, title), h('span', {}, detail));
      return;
    }
    this.el.input.value = '';
    this.el.pinned.checked = false;
    this.refreshCounter();
    this.notes = [...(this.notes ?? []), r.data];
    this.render();
    this.say('info', 'Note added.', pinned
      ? 'It is pinned: the next version of your narrative quotes it word for word.'
      : 'The next version of your narrative takes it into account.');
    changes.emit({ kind: 'notes-changed' });
    this.dirty = false;
    this.el.input.focus();
  }

  private async save(n: NarrativeNote, change: { content?: string; pinned?: boolean }, action: string, undo: () => void): Promise<void> {
    const r = await this.api.updateNote(n.id, change);
    if (!this.done(r, 'The note was not saved', undo)) return;
    this.notes = (this.notes ?? []).map((x) => (x.id === n.id ? r.data : x));
    this.render({ id: n.id, action });
    this.say('info', change.pinned === undefined ? 'Note saved.' : change.pinned ? 'Note pinned.' : 'Note unpinned.',
      change.pinned ? 'The next version of your narrative quotes it word for word.' : 'The next version of your narrative follows it.');
    changes.emit({ kind: 'notes-changed' });
    this.dirty = false;
  }

  private async remove(n: NarrativeNote, button: HTMLButtonElement): Promise<void> {
    const yes = await confirmDelete({
      title: 'Delete this note?', quote: n.content, confirm: 'Delete note',
      detail: 'The note is deleted, and every statement of your narrative resting on it is removed now.',
    });
    if (!yes) return;
    button.disabled = true;
    const r = await this.api.deleteNote(n.id);
    const gone = r.kind === 'http' && r.status === 404;
    if (!gone && !this.done(r, 'The note was not deleted', () => { button.disabled = false; })) return;
    const notes = this.notes ?? [];
    const at = notes.findIndex((x) => x.id === n.id);
    this.notes = notes.filter((x) => x.id !== n.id);
    this.render();
    const next = this.notes[at] ?? this.notes[at - 1];
    if (next) this.el.list.querySelector<HTMLElement>(`[data-id="${next.id}"] [data-action="delete"]`)?.focus();
    else this.el.input.focus();
    this.say('info', 'Note deleted.', 'Statements resting on it have left your narrative.');
    changes.emit({ kind: 'notes-changed' });
    this.dirty = false;
  }

  /** True when r succeeded; otherwise says why (or signs out on 401) and undoes. */
  private done<T>(r: Result<T>, what: string, undo: () => void): r is { kind: 'ok'; data: T } {
    if (r.kind === 'ok') return true;
    undo();
    this.failed(what, r);
    return false;
  }

  private failed(what: string, f: Failure): void {
    if (f.kind === 'unauthorized') return this.onUnauthorized();
    const { title, detail } = failureText(f);
    this.say('error', `${what}: ${title}`, detail);
  }

  private say(tone: 'info' | 'error' | null, title: string, detail = ''): void {
    setStatus(this.el.status, tone, title, detail);
  }
}

