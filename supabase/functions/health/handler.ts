// Liveness for the functions runtime and its database path: answers with what Postgres sees
// for this request when it runs as the caller (role, auth.uid()).
import { requireUser } from '../_shared/auth.ts';
import { asUser } from '../_shared/db.ts';
import { allowMethods, json, route } from '../_shared/http.ts';

export const handler = route('health', async (req, ctx) => {
  allowMethods(req, 'GET');
  const claims = await requireUser(req);
  ctx.user_id = claims.sub;
  const [row] = await asUser(claims, (tx) => tx<{ user_id: string; db_role: string; db_time: Date }[]>`
    select auth.uid() as user_id, current_user as db_role, now() as db_time`);
  return json({ status: 'ok', user_id: row.user_id, db_role: row.db_role, db_time: row.db_time });
});
