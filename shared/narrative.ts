// Contracts shared by the functions (Deno), the dashboard, the MCP server and the tests (Node):
// one definition of each value set and shape. Imports only `zod` (mapped for Deno in
// supabase/functions/import_map.json).
import { z } from 'zod';

export const JOB_REASONS = ['cache_miss', 'stale', 'manual', 'weekly', 'backfill', 'memories_changed'] as const;
export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed'] as const;
export type JobReason = (typeof JOB_REASONS)[number];
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Reasons someone is waiting on (a reader's miss, a manual regeneration, an edit): the
 *  interactive lane. The rest (weekly, backfill, stale) are bulk. */
export const INTERACTIVE_REASONS: readonly JobReason[] = ['manual', 'cache_miss', 'memories_changed'];
export const laneOf = (reason: JobReason): 'interactive' | 'bulk' => (INTERACTIVE_REASONS.includes(reason) ? 'interactive' : 'bulk');

/** The four sections every narrative has, in order, as markdown `## ` headings. */
export const NARRATIVE_SECTIONS = [
  'Who they are',
  'Current work and trajectory',
  'How to interact with them',
  'Recurring themes and patterns',
] as const;

export const NARRATIVE_MIN_CHARS = 200;
export const NARRATIVE_MAX_CHARS = 12_000;

const heading = (s: string) => new RegExp(`^##\\s+${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`, 'im');

/** What a provider's text must look like before it may replace a stored narrative. */
export const narrativeText = z
  .string()
  .transform((s) => s.trim())
  .pipe(
    z.string()
      .min(NARRATIVE_MIN_CHARS, `narrative shorter than ${NARRATIVE_MIN_CHARS} characters`)
      .max(NARRATIVE_MAX_CHARS, `narrative longer than ${NARRATIVE_MAX_CHARS} characters`)
      .refine((s) => NARRATIVE_SECTIONS.every((h) => heading(h).test(s)), {
        message: `narrative must contain the sections: ${NARRATIVE_SECTIONS.join(', ')}`,
      }),
  );

/** Body of POST /functions/v1/generate-narrative (sent by the dispatch trigger via pg_net). */
export const generateNarrativeBody = z.object({ job_id: z.number().int().positive() }).strict();

/** `Narrative-Status` header of a 204 from GET /functions/v1/narrative. */
export const NARRATIVE_STATUSES = ['queued', 'running', 'failed', 'ineligible'] as const;
export type NarrativeStatus = (typeof NARRATIVE_STATUSES)[number];

/** 200 from GET /functions/v1/narrative. */
export const narrativeResponse = z.object({
  narrative: z.string(),
  version: z.number().int(),
  generated_at: z.string(),
  age_days: z.number(),
  stale: z.boolean(),
  model: z.string().nullable(),
});
export type NarrativeResponse = z.infer<typeof narrativeResponse>;

/** 202 from POST /functions/v1/narrative (manual regeneration). */
export const regenerateResponse = z.object({
  job_id: z.number().int(),
  status: z.enum(['queued', 'running']),
});

export const USER_MESSAGE_MAX_CHARS = 8_000;

/** Longest memory (the memories.content check constraint says the same). */
export const MEMORY_MAX_CHARS = 20_000;

/** Body of POST /functions/v1/orchestrate. */
export const orchestrateBody = z.object({
  user_id: z.string().uuid().optional(),
  user_message: z.string().max(USER_MESSAGE_MAX_CHARS),
  is_new_conversation: z.boolean(),
}).strict();
export type OrchestrateBody = z.infer<typeof orchestrateBody>;

export const orchestrateResponse = z.object({
  source: z.enum(['narrative', 'fallback', 'none']),
  context: z.string(),
  narrative: z.object({ version: z.number().int(), generated_at: z.string(), stale: z.boolean() }).nullable(),
  job: z.object({ id: z.number().int(), status: z.enum(JOB_STATUSES) }).nullable(),
  timing_ms: z.number(),
});
export type OrchestrateResponse = z.infer<typeof orchestrateResponse>;

/** Body of POST /functions/v1/backfill. */
export const backfillBody = z.object({
  min_memories: z.number().int().min(1).max(100_000).optional(),
  dry_run: z.boolean().optional(),
  limit: z.number().int().min(1).max(10_000_000).optional(),
  force: z.boolean().optional(),
}).strict();
export type BackfillBody = z.infer<typeof backfillBody>;

export const backfillResponse = z.object({
  eligible: z.number().int(),
  enqueued: z.number().int(),
  skipped_fresh: z.number().int(),
  skipped_active: z.number().int(),
  dry_run: z.boolean(),
});
export type BackfillResponse = z.infer<typeof backfillResponse>;
