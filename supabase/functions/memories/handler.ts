// The user's memories for the dashboard (the local stack has no PostgREST, and a delete must
// report what it did to the narrative): GET memories lists the active ones newest first with
// an optional full-text search and paging, or opens the ones a claim cites (?ids=); GET
// memories/<id> opens one; DELETE memories/<id> deletes one, and the claims citing it leave the
// narrative in that transaction. Everything as the user, under RLS: another user's memory is
// exactly as missing as one that never existed (404).
import { memoriesQuery, UUID_PATTERN } from '../../../shared/memories.ts';
import { requireUser } from '../_shared/auth.ts';
import { allowMethods, expectNoBody, HttpError, json, route } from '../_shared/http.ts';
import { deleteMemory, openMemories, pageMemories } from '../_shared/memories.ts';
import { readQuery } from '../_shared/query.ts';

// memories[/<id>], wherever the function is mounted.
const PATH = /\/memories(?:\/([^/]*))?\/*$/;

export const handler = route('memories', async (req, ctx) => {
  const path = PATH.exec(new URL(req.url).pathname);
  if (!path) throw new HttpError(404, 'not_found', 'Use memories or memories/<id>');
  const id = path[1] || undefined;
  allowMethods(req, ...(id === undefined ? ['GET'] : ['GET', 'DELETE']));
  const claims = await requireUser(req);
  ctx.user_id = claims.sub;

  if (id === undefined) {
    const query = readQuery(req, memoriesQuery);
    if (query.ids) return json({ memories: await openMemories(claims, query.ids), next_cursor: null });
    return json(await pageMemories(claims, { q: query.q?.trim() || undefined, limit: query.limit, cursor: query.cursor }));
  }

  if (!UUID_PATTERN.test(id)) throw new HttpError(400, 'invalid_id', 'The memory id must be a UUID');
  if (req.method === 'DELETE') {
    await expectNoBody(req);
    const deleted = await deleteMemory(claims, id);
    if (!deleted) throw new HttpError(404, 'not_found', `No memory ${id} of yours`);
    return json(deleted);
  }
  const [memory] = await openMemories(claims, [id]);
  if (!memory) throw new HttpError(404, 'not_found', `No memory ${id} of yours`);
  return json({ memory });
});
