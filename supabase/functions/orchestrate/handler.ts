// Conversation-start context for the MCP orchestrator. A new conversation with a servable
// narrative gets it from one indexed read (no LLM, no memory scan). Otherwise a context built
// from the user's memories within a fixed time budget — never waiting on generation — and a
// job queued when the user is eligible. Not a new conversation: the memories relevant to the
// message. Runs as the user (RLS), also when a service acts on a user's behalf. Each call but a fresh
// cache hit spends one request of the user's per-minute budget (429 rate_limited with
// Retry-After past it).
import { orchestrateBody, type OrchestrateResponse } from '../../../shared/narrative.ts';
import { actAs, authenticate } from '../_shared/auth.ts';
import { allowMethods, HttpError, json, jsonText, readJson, route } from '../_shared/http.ts';
import { hitBody, withTiming } from '../_shared/narrative/hit.ts';
import { orchestrate } from '../_shared/narrative/orchestrate.ts';

export const handler = route('orchestrate', async (req, ctx) => {
  const started = performance.now();
  allowMethods(req, 'POST');
  const caller = await authenticate(req);
  const body = await readJson(req, orchestrateBody);
  let claims;
  if (caller.kind === 'user') {
    if (body.user_id && body.user_id !== caller.claims.sub) {
      throw new HttpError(403, 'forbidden_user', 'A user token can only ask for its own context');
    }
    claims = caller.claims;
  } else {
    if (!body.user_id) throw new HttpError(400, 'invalid_request', 'user_id: required with a service key');
    claims = actAs(body.user_id);
  }
  ctx.user_id = claims.sub;
  // The cache hit: one statement answers with the body (no lock, no request spent).
  if (body.is_new_conversation) {
    const hit = await hitBody(claims.sub, 'orchestrate');
    if (hit) return jsonText(withTiming(hit, started));
  }
  const result: Omit<OrchestrateResponse, 'timing_ms'> = await orchestrate(claims, body.user_message, body.is_new_conversation, 'orchestrate');
  return json({ ...result, timing_ms: Math.round((performance.now() - started) * 10) / 10 });
});
