// The smart-cache decision shared by the orchestrate function and the MCP server's jean_memory.
// Settings are read before any transaction (see servingSettings); a fresh hit is one round trip.
import type { OrchestrateResponse } from '../../../../shared/narrative.ts';
import type { UserClaims } from '../auth.ts';
import { asUser } from '../db.ts';
import { freshness, jobOf, memoryContext, readNarrative, requestNarrative, servingSettings } from './serve.ts';

export async function orchestrate(claims: UserClaims, message: string, isNewConversation: boolean, retried = false): Promise<Omit<OrchestrateResponse, 'timing_ms'>> {
  const settings = await servingSettings();
  if (!isNewConversation) {
    const context = await asUser(claims, (tx) => memoryContext(tx, message, false, settings.fallback_timeout_ms));
    return { source: context ? 'fallback' : 'none', context, narrative: null, job: null };
  }
  const n = await readNarrative(claims);
  if (n?.servable) {
    const { stale } = freshness(n, settings);
    // Stale but valid: serve it now and refresh in the background.
    const job = stale ? jobOf(await asUser(claims, (tx) => requestNarrative(tx, 'stale'))) : null;
    return {
      source: 'narrative', context: n.narrative_content,
      narrative: { version: n.version, generated_at: n.generated_at.toISOString(), stale }, job,
    };
  }
  const miss = await asUser(claims, async (tx) => {
    const r = await requestNarrative(tx, 'cache_miss');
    if (r.outcome === 'ready' && !retried) return null;
    const context = await memoryContext(tx, message, true, settings.fallback_timeout_ms);
    return { source: context ? 'fallback' : 'none', context, narrative: null, job: jobOf(r) } as const;
  });
  if (miss) return miss;
  // A job stored the narrative between the read and the request: read again and serve it
  // (once; should it flip again, the second pass answers with the fallback).
  return await orchestrate(claims, message, true, true);
}
