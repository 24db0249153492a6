// Deleting a claim's source from the narrative: the confirmation, the delete itself, and what
// the page says. The claims resting on the source leave the page the moment the delete succeeds
// (or the source was already gone); the panel then reads the narrative again, served partial
// while a new version is written.
import type { MemoryItem } from '../../shared/memories.ts';
import type { NarrativeClaim, NarrativeNote } from '../../shared/narrative.ts';
import type { Failure, NarrativeApi, Result } from './api.ts';
import { confirmDelete } from './confirm.ts';
import { plural } from './dom.ts';
import { changes } from './events.ts';
import { failureText } from './format.ts';

export type Source = { kind: 'memory'; memory: MemoryItem } | { kind: 'note'; note: NarrativeNote };

/** What a source deletion needs from the panel showing the narrative. */
export interface SourceHost {
  /** Takes the claims `cites` picks off the page; how many went, or null when none was shown. */
  dropClaims(cites: (c: NarrativeClaim) => boolean): number | null;
  say(tone: 'info' | 'error', title: string, detail?: string): void;
  fail(f: Failure): void;
  refresh(): Promise<void>;
}

const ASK = {
  memory: {
    title: 'Delete this memory?', confirm: 'Delete memory',
    detail: 'It is deleted from your memories, and every statement resting on it leaves your narrative now. A new version is then written without it.',
  },
  note: {
    title: 'Delete this note?', confirm: 'Delete note',
    detail: 'The note is deleted, and every statement resting on it leaves your narrative now. A new version is then written without it.',
  },
};

/** Asks, deletes the source, takes the claims citing it off the page and reads the narrative again. */
export async function deleteSource(source: Source, button: HTMLButtonElement, api: NarrativeApi, host: SourceHost): Promise<void> {
  const quote = source.kind === 'memory' ? source.memory.content : source.note.content;
  if (!(await confirmDelete({ ...ASK[source.kind], quote }))) return;
  button.disabled = true;
  const r: Result<unknown> = source.kind === 'memory' ? await api.deleteMemory(source.memory.id) : await api.deleteNote(source.note.id);
  if (r.kind !== 'ok' && !(r.kind === 'http' && r.status === 404)) {
    button.disabled = false;
    if (r.kind === 'unauthorized') return host.fail(r);
    const { title, detail } = failureText(r);
    host.say('error', `Deleting the ${source.kind} failed: ${title}`, detail);
    return;
  }
  const cites = source.kind === 'memory'
    ? (c: NarrativeClaim) => c.memory_ids.includes(source.memory.id)
    : (c: NarrativeClaim) => c.note_ids?.includes(source.note.id) ?? false;
  changes.emit(source.kind === 'memory' ? { kind: 'memory-deleted', id: source.memory.id } : { kind: 'notes-changed' });
  const removed = host.dropClaims(cites);
  if (removed !== null) {
    host.say('info', `${source.kind === 'memory' ? 'Memory' : 'Note'} deleted — updating your narrative`,
      `${plural(removed, 'statement')} resting on it ${removed === 1 ? 'was' : 'were'} removed. A new version is being written and will appear here by itself.`);
  }
  await host.refresh();
}
