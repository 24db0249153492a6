// The dashboard's narrative: GET serves the cache (or says honestly why not, queueing a
// cache_miss job for an eligible user); POST asks for a fresh one (per-user cooldown).
// Everything runs as the user, under RLS.
import { requireUser } from '../_shared/auth.ts';
import { asUser } from '../_shared/db.ts';
import { allowMethods, corsHeaders, expectNoBody, HttpError, json, route } from '../_shared/http.ts';
import { narrativeView, requestNarrative, servingSettings } from '../_shared/narrative/serve.ts';

export const handler = route('narrative', async (req, ctx) => {
  allowMethods(req, 'GET', 'POST');
  const claims = await requireUser(req);
  ctx.user_id = claims.sub;

  if (req.method === 'POST') {
    await expectNoBody(req);
    const r = await asUser(claims, (tx) => requestNarrative(tx, 'manual'));
    if (r.outcome === 'cooldown') {
      throw new HttpError(429, 'cooldown', `A regeneration was requested recently; try again in ${r.retry_after_seconds} s`,
        { 'retry-after': String(r.retry_after_seconds) });
    }
    if (r.outcome === 'ineligible') {
      throw new HttpError(409, 'not_eligible', `At least ${(await servingSettings()).min_memories} memories are needed for a narrative`);
    }
    return json({ job_id: r.job_id, status: r.status }, 202);
  }

  const view = await narrativeView(claims);
  if (view.status === 'ready') {
    const { status: _ready, ...body } = view;
    return json(body);
  }
  return new Response(null, { status: 204, headers: { ...corsHeaders, 'narrative-status': view.status } });
});
