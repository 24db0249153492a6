// Contracts shared by the functions (Deno), the dashboard, the MCP server and the tests (Node):
// one definition of each value set and shape. Imports only `zod` (mapped for Deno in
// supabase/functions/import_map.json).
import { z } from 'zod';

export const JOB_REASONS = ['cache_miss', 'stale', 'manual', 'weekly', 'backfill', 'memories_changed', 'notes_changed'] as const;
export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed'] as const;
export type JobReason = (typeof JOB_REASONS)[number];
export type JobStatus = (typeof JOB_STATUSES)[number];

// What the SQL queue operations answer. Each list equals a Postgres enum or check constraint
// (named beside it); tests/sql-contract.test.ts reads the catalog and proves they agree.
/** private.claim_job outcome (enum private.claim_outcome). */
export const CLAIM_OUTCOMES = ['claimed', 'not_found', 'not_claimable', 'concurrency_limited'] as const;
/** private.complete_job outcome (enum private.complete_outcome). */
export const COMPLETE_OUTCOMES = ['stored', 'stale_input', 'lease_lost'] as const;
/** private.fail_job outcome (enum private.fail_outcome). */
export const FAIL_OUTCOMES = ['retry_scheduled', 'failed', 'lease_lost'] as const;
/** public.narrative_for_me status (enum private.narrative_status). */
export const NARRATIVE_FOR_ME_STATUSES = ['ready', 'queued', 'running', 'failed', 'ineligible', 'cooldown'] as const;
/** What a caller may ask public.narrative_for_me for. */
export const NARRATIVE_FOR_ME_REASONS = ['cache_miss', 'manual'] as const satisfies readonly JobReason[];
/** narrative_jobs.last_error_code (check constraint narrative_jobs_last_error_code_check): the
 *  codes SQL writes (leases, dispatch, stale input) and the ones generate-narrative passes to
 *  private.fail_job (ProviderError codes). */
export const JOB_ERROR_CODES = [
  // written by SQL
  'lease_expired', 'dispatch_rejected', 'dispatch_failed', 'dispatch_not_configured', 'stale_input',
  // written by generate-narrative through private.fail_job
  'not_eligible', 'prompt_blocked', 'output_blocked', 'output_truncated', 'incomplete_output', 'invalid_output',
  'invalid_response', 'network', 'provider_rejected', 'provider_unavailable', 'rate_limited', 'timeout',
  'unexpected', 'internal_error',
  // written by generate-narrative when the platform stops its worker mid-generation (beforeunload)
  'worker_shutdown',
] as const;
export type ClaimOutcome = (typeof CLAIM_OUTCOMES)[number];
export type CompleteOutcome = (typeof COMPLETE_OUTCOMES)[number];
export type FailOutcome = (typeof FAIL_OUTCOMES)[number];
export type NarrativeForMeStatus = (typeof NARRATIVE_FOR_ME_STATUSES)[number];
export type NarrativeForMeReason = (typeof NARRATIVE_FOR_ME_REASONS)[number];
export type JobErrorCode = (typeof JOB_ERROR_CODES)[number];

/** Reasons someone is waiting on (a reader's miss, a manual regeneration, an edit of a memory
 *  or a note): the interactive lane. The rest (weekly, backfill, stale) are bulk. Mirrors
 *  private.job_lane (the SQL dispatch uses that one); tests/sql-contract.test.ts proves they agree. */
export const INTERACTIVE_REASONS: readonly JobReason[] = ['manual', 'cache_miss', 'memories_changed', 'notes_changed'];
export const laneOf = (reason: JobReason): 'interactive' | 'bulk' => (INTERACTIVE_REASONS.includes(reason) ? 'interactive' : 'bulk');

/** The four sections every narrative has, in order, as markdown `## ` headings. */
export const NARRATIVE_SECTIONS = [
  'Who they are',
  'Current work and trajectory',
  'How to interact with them',
  'Recurring themes and patterns',
] as const;

/** Where the user's pinned notes go, verbatim: a section no provider writes. */
export const PINNED_SECTION = 'Pinned by you';
export const CLAIM_SECTIONS = [...NARRATIVE_SECTIONS, PINNED_SECTION] as const;

export const CLAIM_MAX_CHARS = 600;
/** Most claims a narrative keeps (what the prompt asks for, with room to spare). */
export const MAX_CLAIMS = 40;

/** One grounded statement of a narrative and the memories it rests on. A pinned note's claim
 *  (section PINNED_SECTION) cites no memory but the note (note_ids) and is its text verbatim. */
export const narrativeClaim = z.object({
  section: z.enum(CLAIM_SECTIONS),
  text: z.string(),
  memory_ids: z.array(z.string().uuid()),
  note_ids: z.array(z.string().uuid()).min(1).optional(),
}).refine((c) => c.memory_ids.length > 0 || (c.note_ids?.length ?? 0) > 0, { message: 'a claim cites a memory or a note' });
export type NarrativeClaim = z.infer<typeof narrativeClaim>;

/** A claim as a provider writes it: memory_refs are the prompt's short references ("m3"),
 *  mapped back to memory ids (and checked) by generate-narrative. */
export const providerClaim = z.object({
  section: z.enum(NARRATIVE_SECTIONS),
  text: z.string().transform((s) => s.replace(/[\s\u0085]+/g, ' ').trim()).pipe(z.string().min(1).max(CLAIM_MAX_CHARS)),
  memory_refs: z.array(z.string()).min(1),
});
export const providerOutput = z.object({ claims: z.array(z.unknown()).max(200) });

/** What a section with no claims says. */
export const NO_CLAIMS = 'Not enough information yet.';

/** The one renderer: claims to the markdown stored as narrative_content. Every one of the four
 *  sections appears (NO_CLAIMS when empty); "Pinned by you" only when it has claims. The SQL
 *  twin private.render_claims (20261125000400_narratives.sql) re-renders after a delete and
 *  must give the same bytes (tests/grounded-narratives.test.ts checks it). */
export function renderClaims(claims: readonly NarrativeClaim[]): string {
  const sections: readonly string[] = claims.some((c) => c.section === PINNED_SECTION)
    ? [PINNED_SECTION, ...NARRATIVE_SECTIONS] : NARRATIVE_SECTIONS;
  return sections.map((title) => {
    const lines = claims.filter((c) => c.section === title).map((c) => `- ${c.text}`);
    return `## ${title}\n\n${lines.length ? lines.join('\n') : NO_CLAIMS}`;
  }).join('\n\n') + '\n';
}

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
export const NARRATIVE_STATUSES = ['queued', 'running', 'failed', 'ineligible'] as const satisfies readonly NarrativeForMeStatus[];
export type NarrativeStatus = (typeof NARRATIVE_STATUSES)[number];

/** Headers of a 204 `ineligible`: the threshold (private.settings.min_memories) and the user's
 *  active memories, so a client can say how many more are needed. */
export const MIN_MEMORIES_HEADER = 'narrative-min-memories';
export const MEMORY_COUNT_HEADER = 'narrative-memory-count';

/** 200 from GET /functions/v1/narrative. */
export const narrativeResponse = z.object({
  narrative: z.string(),
  version: z.number().int(),
  generated_at: z.string(),
  age_days: z.number(),
  stale: z.boolean(),
  model: z.string().nullable(),
  /** The claims the narrative is rendered from, each with the memories it cites. */
  claims: z.array(narrativeClaim),
  /** True when claims were removed (a cited memory was deleted, archived or edited) and a
   *  regeneration is queued. */
  partial: z.boolean(),
});
export type NarrativeResponse = z.infer<typeof narrativeResponse>;

/** 202 from POST /functions/v1/narrative (manual regeneration). */
export const regenerateResponse = z.object({
  job_id: z.number().int(),
  status: z.enum(['queued', 'running']),
  /** Seconds until the job may start (the daily generation budget), null when it may start now. */
  retry_after: z.number().int().nullable(),
});

export const USER_MESSAGE_MAX_CHARS = 8_000;

/** Routes with a per-user request budget (private.take_request, settings.*_requests_per_minute;
 *  the private.request_buckets.route check constraint lists the same). */
export const REQUEST_ROUTES = ['orchestrate', 'mcp'] as const;
export type RequestRoute = (typeof REQUEST_ROUTES)[number];

/** Longest memory (the memories.content check constraint; tests/sql-contract.test.ts checks they agree). */
export const MEMORY_MAX_CHARS = 20_000;

/** Body of POST /functions/v1/orchestrate. */
export const orchestrateBody = z.object({
  user_id: z.string().uuid().optional(),
  user_message: z.string().max(USER_MESSAGE_MAX_CHARS),
  is_new_conversation: z.boolean(),
}).strict();

export const orchestrateResponse = z.object({
  source: z.enum(['narrative', 'fallback', 'none']),
  context: z.string(),
  narrative: z.object({ version: z.number().int(), generated_at: z.string(), stale: z.boolean(), partial: z.boolean() }).nullable(),
  /** The served narrative's claims (empty unless source is narrative). */
  claims: z.array(narrativeClaim),
  /** retry_after: seconds until a queued job may start (daily generation budget, debounce or backoff), else null. */
  job: z.object({ id: z.number().int(), status: z.enum(JOB_STATUSES), retry_after: z.number().int().nullable() }).nullable(),
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

/** Longest note (narrative_notes.content check constraint; tests/sql-contract.test.ts checks they agree). */
export const NOTE_MAX_CHARS = 500;
/** What a note may not contain: it is one line (the same class as the content check constraint's). */
export const NOTE_LINE_BREAK = /[\r\n\u2028\u2029\u0085]/;
/** What an insert past the note limit (private.settings.max_notes, which GET narrative/notes
 *  answers as max_notes) answers through PostgREST: error.code, and error.message starts with this. */
export const NOTES_LIMIT_ERRCODE = '23514';
export const NOTES_LIMIT_MESSAGE_PREFIX = 'notes_limit:';

/** A row of public.narrative_notes as supabase-js reads it. */
export const narrativeNote = z.object({
  id: z.string().uuid(),
  user_id: z.string().uuid(),
  content: z.string().min(1).max(NOTE_MAX_CHARS),
  pinned: z.boolean(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type NarrativeNote = z.infer<typeof narrativeNote>;

/** What changed from the previous stored version: claims matched by text and cited ids. */
export const versionChanges = z.object({
  added: z.array(narrativeClaim),
  removed: z.array(narrativeClaim),
  kept: z.array(narrativeClaim),
});

/** One entry of GET /functions/v1/narrative/history (newest first). */
export const narrativeVersionSummary = z.object({
  version: z.number().int(),
  generated_at: z.string(),
  model: z.string().nullable(),
  reason: z.enum(JOB_REASONS).nullable(),
  memory_count: z.number().int().nullable(),
  claim_count: z.number().int(),
  /** "2 added, 1 removed, 5 kept — new in <section>: <first added claim>". */
  summary: z.string(),
});
export const narrativeHistoryResponse = z.object({ versions: z.array(narrativeVersionSummary) });
export type NarrativeHistoryResponse = z.infer<typeof narrativeHistoryResponse>;

/** 200 from GET /functions/v1/narrative/history/<version>. */
export const narrativeVersionResponse = narrativeVersionSummary.extend({
  narrative: z.string(),
  claims: z.array(narrativeClaim),
  changes: versionChanges,
});
export type NarrativeVersionResponse = z.infer<typeof narrativeVersionResponse>;

/** One line of 1..NOTE_MAX_CHARS characters (what the content check constraint enforces). */
const noteContent = z.string().min(1).max(NOTE_MAX_CHARS).refine((s) => !NOTE_LINE_BREAK.test(s) && !s.includes('\u0000'), 'a note is one line');
/** Body of POST /functions/v1/narrative/notes. */
export const createNoteBody = z.object({ content: noteContent, pinned: z.boolean().optional() }).strict();
/** Body of PATCH /functions/v1/narrative/notes/<id>. */
export const updateNoteBody = z.object({ content: noteContent.optional(), pinned: z.boolean().optional() }).strict()
  .refine((b) => b.content !== undefined || b.pinned !== undefined, 'give content or pinned');
/** 200 from GET /functions/v1/narrative/notes: the notes (oldest first) and how many a user may
 *  keep (private.settings.max_notes, read per request); POST answers 201 {note}, PATCH 200 {note}. */
export const notesResponse = z.object({ notes: z.array(narrativeNote), max_notes: z.number().int().min(1) });
export type NotesResponse = z.infer<typeof notesResponse>;
export const noteResponse = z.object({ note: narrativeNote });
