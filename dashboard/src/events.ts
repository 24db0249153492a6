// What one view changes that another shows: a memory deleted from the Memories list strips the
// narrative and the history; a note changed queues a new narrative. Views mark themselves
// stale on these and refresh when they are shown again.
export type Change = { kind: 'memory-deleted'; id: string } | { kind: 'notes-changed' };

const listeners = new Set<(c: Change) => void>();

export const changes = {
  on(listener: (c: Change) => void): void {
    listeners.add(listener);
  },
  emit(change: Change): void {
    for (const l of listeners) l(change);
  },
};
