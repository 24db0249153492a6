// Picks the narrative writer from configuration: Gemini with a key, the offline writer without.
import { providerEnv } from '../env.ts';
import { type GeminiThinkingLevel, GeminiProvider } from './gemini.ts';
import { LocalProvider } from './local.ts';
import type { NarrativeProvider } from './types.ts';

export function createProvider(): NarrativeProvider {
  return createGemini() ?? new LocalProvider();
}

/** Gemini for free-form answers over memories (the MCP server), or null offline: callers then
 *  answer extractively. */
export function createGemini(): GeminiProvider | null {
  const cfg = providerEnv();
  if (!cfg.apiKey) return null;
  return new GeminiProvider({
    apiKey: cfg.apiKey,
    models: cfg.models,
    baseUrl: cfg.baseUrl,
    apiVersion: cfg.apiVersion,
    timeoutMs: cfg.timeoutMs,
    maxOutputTokens: cfg.maxOutputTokens,
    retryMaxOutputTokens: cfg.retryMaxOutputTokens,
    thinkingLevel: cfg.thinkingLevel as GeminiThinkingLevel, // the constructor refuses anything else
  });
}

