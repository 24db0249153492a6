// The user's notes over HTTP, for clients without PostgREST (the local stack, the dashboard):
// the same table, policies and triggers as a supabase-js call, as the user under RLS. The limit
// and the strip of a changed pinned note happen in SQL (20261125001200); this only maps errors,
// and tells the limit (private.settings.max_notes) with the list, so no client keeps a copy of it.
import { NOTES_LIMIT_ERRCODE, NOTES_LIMIT_MESSAGE_PREFIX, type NarrativeNote, type NotesResponse } from '../../../../shared/narrative.ts';
import type { UserClaims } from '../auth.ts';
import { asUser, service, type Tx } from '../db.ts';
import { HttpError } from '../http.ts';

type NoteRow = Omit<NarrativeNote, 'created_at' | 'updated_at'> & { created_at: Date; updated_at: Date };
const iso = (r: NoteRow): NarrativeNote => ({ ...r, created_at: r.created_at.toISOString(), updated_at: r.updated_at.toISOString() });

async function asMe<T>(claims: UserClaims, work: (tx: Tx) => Promise<T>): Promise<T> {
  try {
    return await asUser(claims, work);
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === NOTES_LIMIT_ERRCODE && e.message?.startsWith(NOTES_LIMIT_MESSAGE_PREFIX)) throw new HttpError(409, 'notes_limit', e.message);
    throw err;
  }
}

/** The user's notes, oldest first, and how many they may keep (the operator's setting, read now). */
export async function listNotes(claims: UserClaims): Promise<NotesResponse> {
  const [notes, [limit]] = await Promise.all([
    asMe(claims, async (tx) => (await tx<NoteRow[]>`select * from public.narrative_notes order by created_at, id`).map(iso)),
    service<{ max_notes: number }[]>`select max_notes from private.settings`,
  ]);
  return { notes, max_notes: limit.max_notes };
}

export const createNote = (claims: UserClaims, content: string, pinned: boolean) => asMe(claims, async (tx) =>
  iso((await tx<NoteRow[]>`insert into public.narrative_notes (content, pinned) values (${content}, ${pinned}) returning *`)[0]));

/** The updated note, or null when the user has no note with that id. */
export const updateNote = (claims: UserClaims, id: string, change: { content?: string; pinned?: boolean }) => asMe(claims, async (tx) => {
  const [row] = await tx<NoteRow[]>`
    update public.narrative_notes set content = coalesce(${change.content ?? null}, content), pinned = coalesce(${change.pinned ?? null}, pinned)
    where id = ${id} returning *`;
  return row ? iso(row) : null;
});

/** Whether the user had a note with that id (now deleted). */
export const deleteNote = (claims: UserClaims, id: string) => asMe(claims, async (tx) =>
  (await tx`delete from public.narrative_notes where id = ${id}`).count > 0);
