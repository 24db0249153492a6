// Admin backfill: POST fills the cache for existing users (set-based, idempotent); GET shows
// queue health. Admins are service callers or users with app_metadata.role = "admin".
import { backfillBody } from '../../../shared/narrative.ts';
import { requireAdmin } from '../_shared/auth.ts';
import { service } from '../_shared/db.ts';
import { allowMethods, json, readJson, route } from '../_shared/http.ts';
import { log } from '../_shared/log.ts';

export const handler = route('backfill', async (req, ctx) => {
  allowMethods(req, 'GET', 'POST');
  const caller = await requireAdmin(req);
  if (caller.kind === 'user') ctx.user_id = caller.claims.sub;

  if (req.method === 'GET') {
    const [{ health }] = await service<{ health: unknown }[]>`select private.queue_health() as health`;
    return json(health);
  }

  const body = await readJson(req, backfillBody);
  // null: private.eligibility_threshold uses settings.min_memories.
  const minMemories = body.min_memories ?? null;
  const dryRun = body.dry_run ?? false;
  const started = performance.now();
  const [counts] = await service<{ eligible: number; enqueued: number; skipped_fresh: number; skipped_active: number }[]>`
    select * from private.backfill(${minMemories}, ${dryRun}, ${body.limit ?? null}, ${body.force ?? false})`;
  log({ level: 'info', route: 'backfill', step: 'enqueue', duration_ms: Math.round(performance.now() - started),
    outcome: dryRun ? 'dry_run' : 'ok', ...counts });
  return json({ ...counts, dry_run: dryRun });
});
