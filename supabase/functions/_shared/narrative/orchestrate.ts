// The smart-cache decision shared by the orchestrate function and the MCP server's jean_memory.
import type { OrchestrateResponse } from '../../../../shared/narrative.ts';
import type { Tx } from '../db.ts';
import { freshness, jobOf, memoryContext, readNarrative, requestNarrative, servingSettings } from './serve.ts';

export async function orchestrate(tx: Tx, message: string, isNewConversation: boolean): Promise<Omit<OrchestrateResponse, 'timing_ms'>> {
  const settings = await servingSettings();
  if (!isNewConversation) {
    const context = await memoryContext(tx, message, false, settings.fallback_timeout_ms);
    return { source: context ? 'fallback' : 'none', context, narrative: null, job: null };
  }
  const n = await readNarrative(tx);
  if (n?.servable) {
    const { stale } = freshness(n, settings);
    // Stale but valid: serve it now and refresh in the background.
    const job = stale ? jobOf(await requestNarrative(tx, 'stale')) : null;
    return {
      source: 'narrative', context: n.narrative_content,
      narrative: { version: n.version, generated_at: n.generated_at.toISOString(), stale }, job,
    };
  }
  const job = jobOf(await requestNarrative(tx, 'cache_miss'));
  const context = await memoryContext(tx, message, true, settings.fallback_timeout_ms);
  return { source: context ? 'fallback' : 'none', context, narrative: null, job };
}
