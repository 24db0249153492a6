// The smart-cache decision shared by the orchestrate function and the MCP server's jean_memory.
// public.narrative_for_me decides what the user gets; a servable hit is that one round trip.
import type { OrchestrateResponse, RequestRoute } from '../../../../shared/narrative.ts';
import type { UserClaims } from '../auth.ts';
import { asUser, takeRequest } from '../db.ts';
import { fallbackTimeoutMs, jobOf, memoryContext, narrativeForMe } from './serve.ts';

/**
 * `limit`: the per-user request budget to spend on everything but a fresh hit (the orchestrate
 * function passes 'orchestrate'; MCP's jean_memory has spent its 'mcp' request at the HTTP entry).
 */
export async function orchestrate(
  claims: UserClaims, message: string, isNewConversation: boolean, limit?: RequestRoute,
): Promise<Omit<OrchestrateResponse, 'timing_ms'>> {
  if (!isNewConversation) {
    if (limit) await takeRequest(claims.sub, limit);
    const timeoutMs = await fallbackTimeoutMs();
    const context = await asUser(claims, (tx) => memoryContext(tx, message, false, timeoutMs));
    return { source: context ? 'fallback' : 'none', context, narrative: null, claims: [], job: null };
  }
  const r = await narrativeForMe(claims, 'cache_miss', limit);
  if (r.status === 'ready') {
    // Stale but servable: narrative_for_me queued the refresh (its job is returned).
    return {
      source: 'narrative', context: r.narrative!,
      narrative: { version: r.version!, generated_at: r.generated_at!.toISOString(), stale: r.stale!, partial: r.partial ?? false },
      claims: r.claims ?? [], job: jobOf(r),
    };
  }
  const context = await asUser(claims, (tx) => memoryContext(tx, message, true, r.fallback_timeout_ms));
  return { source: context ? 'fallback' : 'none', context, narrative: null, claims: [], job: jobOf(r) };
}
