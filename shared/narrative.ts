// Contracts shared by the functions (Deno), the dashboard, the MCP server and the tests (Node):
// one definition of each value set and shape. Imports only `zod` (mapped for Deno in
// supabase/functions/import_map.json).
import { z } from 'zod';

export const JOB_REASONS = ['cache_miss', 'stale', 'manual', 'weekly', 'backfill', 'memories_changed'] as const;
export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed'] as const;
export type JobReason = (typeof JOB_REASONS)[number];
export type JobStatus = (typeof JOB_STATUSES)[number];

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
