// The dashboard's narrative: GET serves the cache (or says honestly why not, queueing a
// cache_miss job for an eligible user); POST asks for a fresh one (per-user cooldown);
// GET narrative/history[/<version>] reads the stored versions; narrative/notes[/<id>] lists,
// adds, edits and deletes the user's notes. Everything runs as the user, under RLS.
import { createNoteBody, MEMORY_COUNT_HEADER, MIN_MEMORIES_HEADER, updateNoteBody } from '../../../shared/narrative.ts';
import { requireUser } from '../_shared/auth.ts';
import { allowMethods, corsHeaders, corsWith, expectNoBody, HttpError, json, jsonText, readJson, route } from '../_shared/http.ts';
import { hitBody } from '../_shared/narrative/hit.ts';
import { narrativeForMe, narrativeView } from '../_shared/narrative/serve.ts';
import { getVersion, listVersions } from '../_shared/narrative/history.ts';
import { createNote, deleteNote, listNotes, updateNote } from '../_shared/narrative/notes.ts';

// narrative/history[/<version>] and narrative/notes[/<id>], wherever the function is mounted.
const HISTORY_PATH = /\/narrative\/history(?:\/([^/]*))?\/*$/;
const NOTES_PATH = /\/narrative\/notes(?:\/([^/]*))?\/*$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function notes(req: Request, claims: Parameters<typeof listNotes>[0], id: string | undefined): Promise<Response> {
  if (!id) {
    allowMethods(req, 'GET', 'POST');
    if (req.method === 'GET') return json(await listNotes(claims));
    const body = await readJson(req, createNoteBody);
    return json({ note: await createNote(claims, body.content, body.pinned ?? false) }, 201);
  }
  allowMethods(req, 'PATCH', 'DELETE');
  if (!UUID.test(id)) throw new HttpError(400, 'invalid_id', 'The note id must be a UUID');
  if (req.method === 'DELETE') {
    if (!(await deleteNote(claims, id))) throw new HttpError(404, 'not_found', `No note ${id} of yours`);
    return new Response(null, { status: 204, headers: corsHeaders });
  }
  const note = await updateNote(claims, id, await readJson(req, updateNoteBody));
  if (!note) throw new HttpError(404, 'not_found', `No note ${id} of yours`);
  return json({ note });
}

export const handler = route('narrative', async (req, ctx) => {
  const path = new URL(req.url).pathname;
  const history = HISTORY_PATH.exec(path);
  const notesPath = NOTES_PATH.exec(path);
  if (!notesPath) allowMethods(req, ...(history ? ['GET'] : ['GET', 'POST']));
  const claims = await requireUser(req);
  ctx.user_id = claims.sub;

  if (notesPath) return await notes(req, claims, notesPath[1] || undefined);

  if (history) {
    const param = history[1];
    if (param === undefined || param === '') return json(await listVersions(claims));
    if (!/^[1-9][0-9]{0,8}$/.test(param)) throw new HttpError(400, 'invalid_version', 'The version must be a positive integer');
    const version = await getVersion(claims, Number(param));
    if (!version) throw new HttpError(404, 'not_found', `No stored version ${param} of your narrative`);
    return json(version);
  }

  if (req.method === 'POST') {
    await expectNoBody(req);
    const r = await narrativeForMe(claims, 'manual');
    if (r.status === 'cooldown') {
      throw new HttpError(429, 'cooldown', `A regeneration was requested recently; try again in ${r.retry_after_seconds} s`,
        { 'retry-after': String(r.retry_after_seconds) });
    }
    if (r.status === 'ineligible') {
      throw new HttpError(409, 'not_eligible', `At least ${r.min_memories} memories are needed for a narrative`);
    }
    // A job the daily generation budget holds back says when it may start.
    const wait = r.retry_after_seconds;
    return json({ job_id: r.job_id, status: r.job_status, retry_after: wait }, 202, wait ? { 'retry-after': String(wait) } : {});
  }

  // The cache hit: one statement answers with the body; anything else is narrative_for_me's.
  const hit = await hitBody(claims.sub, 'narrative');
  if (hit) return jsonText(hit);
  const view = await narrativeView(claims);
  if (view.status === 'ready') {
    const { status: _ready, ...body } = view;
    return json(body);
  }
  if (view.min_memories === null || view.memory_count === null) {
    const wait: Record<string, string> = view.retry_after_seconds ? { 'retry-after': String(view.retry_after_seconds) } : {};
    return new Response(null, { status: 204, headers: { ...corsHeaders, 'narrative-status': view.status, ...wait } });
  }
  // Ineligible: the threshold and the user's count, so the dashboard can say how many more.
  const headers: Record<string, string> = {
    ...corsWith({ exposeHeaders: [MIN_MEMORIES_HEADER, MEMORY_COUNT_HEADER] }),
    'narrative-status': view.status,
    [MIN_MEMORIES_HEADER]: String(view.min_memories),
    [MEMORY_COUNT_HEADER]: String(view.memory_count),
  };
  return new Response(null, { status: 204, headers });
});
