// The dashboard's narrative: GET serves the cache (or says honestly why not, queueing a
// cache_miss job for an eligible user); POST asks for a fresh one (per-user cooldown).
// Everything runs as the user, under RLS.
import { MEMORY_COUNT_HEADER, MIN_MEMORIES_HEADER } from '../../../shared/narrative.ts';
import { requireUser } from '../_shared/auth.ts';
import { allowMethods, corsHeaders, corsWith, expectNoBody, HttpError, json, route } from '../_shared/http.ts';
import { narrativeForMe, narrativeView } from '../_shared/narrative/serve.ts';

export const handler = route('narrative', async (req, ctx) => {
  allowMethods(req, 'GET', 'POST');
  const claims = await requireUser(req);
  ctx.user_id = claims.sub;

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
