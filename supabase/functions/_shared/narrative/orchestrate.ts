// The smart-cache decision shared by the orchestrate function and the MCP server's jean_memory.
// public.narrative_for_me decides what the user gets; a servable hit is that one round trip.
import type { OrchestrateResponse } from '../../../../shared/narrative.ts';
import type { UserClaims } from '../auth.ts';
import { asUser } from '../db.ts';
import { fallbackTimeoutMs, jobOf, memoryContext, narrativeForMe } from './serve.ts';

export async function orchestrate(claims: UserClaims, message: string, isNewConversation: boolean): Promise<Omit<OrchestrateResponse, 'timing_ms'>> {
  if (!isNewConversation) {
    const timeoutMs = await fallbackTimeoutMs();
    const context = await asUser(claims, (tx) => memoryContext(tx, message, false, timeoutMs));
    return { source: context ? 'fallback' : 'none', context, narrative: null, claims: [], job: null };
  }
  const r = await narrativeForMe(claims, 'cache_miss');
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
