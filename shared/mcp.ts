// What the MCP tools return as structuredContent, one zod schema per tool: the server declares
// them as each tool's outputSchema (the SDK advertises them as JSON Schema and checks every
// result against them), and the tests validate results with the same definitions. Imports only
// `zod` and the narrative and memories contracts.
import { z } from 'zod';
import { OPEN_MEMORY_STATES } from './memories.ts';
import { NARRATIVE_STATUSES, narrativeClaim, orchestrateResponse } from './narrative.ts';

/** The protocol revisions the MCP function answers, newest first. */
export const MCP_PROTOCOL_VERSIONS = ['2026-07-28', '2025-11-25', '2025-06-18'] as const;

const memory = { id: z.string(), content: z.string(), created_at: z.string() };

/** jean_memory: the same answer as POST /functions/v1/orchestrate. */
export const jeanMemoryOutput = orchestrateResponse;

/** add_memories: the stored memory. */
export const addMemoriesOutput = z.object({ memory: z.object(memory) });

/** get_memory: one of the user's memories, opened from a claim's citation. */
export const getMemoryOutput = z.object({ memory: z.object({ ...memory, state: z.enum(OPEN_MEMORY_STATES), updated_at: z.string() }) });

/** list_memories: active memories, newest first. */
export const listMemoriesOutput = z.object({
  memories: z.array(z.object({ ...memory, metadata: z.record(z.string(), z.unknown()) })),
  count: z.number().int(),
});

/** search_memory: full-text matches, best first. */
export const searchMemoryOutput = z.object({
  results: z.array(z.object({ ...memory, rank: z.number() })),
  count: z.number().int(),
});

/** ask_memory and deep_memory_query: the model's answer, or an extract of memories when it failed. */
export const answerOutput = z.object({
  answer: z.string(),
  source: z.enum(['model', 'extractive']),
  model: z.string().nullable(),
  memories_used: z.number().int(),
  fallback_reason: z.string().nullable(),
});

/** get_narrative: the narrative with its freshness, or why there is none to serve. */
export const narrativeStateOutput = z.object({
  status: z.enum(['ready', ...NARRATIVE_STATUSES]),
  narrative: z.string().nullable(),
  version: z.number().int().nullable(),
  generated_at: z.string().nullable(),
  age_days: z.number().nullable(),
  stale: z.boolean().nullable(),
  model: z.string().nullable(),
  /** The claims the narrative is rendered from (empty when there is none to serve). */
  claims: z.array(narrativeClaim),
  /** Claims were removed after a cited memory changed; a regeneration is queued. */
  partial: z.boolean().nullable(),
});
export type NarrativeState = z.infer<typeof narrativeStateOutput>;

/** Each tool's structuredContent schema, by tool name. */
export const MCP_TOOL_OUTPUTS = {
  jean_memory: jeanMemoryOutput,
  add_memories: addMemoriesOutput,
  list_memories: listMemoriesOutput,
  search_memory: searchMemoryOutput,
  ask_memory: answerOutput,
  deep_memory_query: answerOutput,
  get_narrative: narrativeStateOutput,
  get_memory: getMemoryOutput,
} as const;
