// The memories routes (GET/DELETE /functions/v1/memories[/<id>]): what the dashboard lists,
// searches, opens from a claim's citations and deletes. One definition of each shape for the
// function, the dashboard and the tests. Imports only `zod`.
import { z } from 'zod';

/** Memories per page: the default and the most a caller may ask for. */
export const MEMORY_PAGE_DEFAULT = 20;
export const MEMORY_PAGE_MAX = 100;
/** Longest search text; longer is a 400, not a slow query. */
export const MEMORY_QUERY_MAX_CHARS = 200;
/** Most ids one `ids=` read opens (a claim cites a handful). */
export const MEMORY_IDS_MAX = 50;

/** Any RFC 4122 layout, case-insensitive: what Postgres' uuid type accepts from a client. */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** The opaque paging cursor: the last row's created_at in microseconds since the epoch, and its id. */
export const MEMORY_CURSOR_PATTERN = /^(-?\d{1,17})_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;

/** NUL cannot reach Postgres (22021 would be a 500). A query string cannot carry an unpaired
 *  surrogate: percent-decoding turns invalid UTF-8 into U+FFFD. */
const noNul = (s: string) => !s.includes('\u0000');

/** The query string of GET /functions/v1/memories: a page of active memories, newest first
 *  (optionally those matching `q`: every word, as a prefix, through the full-text index), or
 *  the memories named by `ids` (a claim's citations), which takes no other parameter. */
export const memoriesQuery = z.object({
  q: z.string().max(MEMORY_QUERY_MAX_CHARS).refine(noNul, 'q must not contain NUL characters').optional(),
  limit: z.string().regex(/^\d{1,3}$/, 'limit must be a whole number').transform(Number)
    .pipe(z.number().int().min(1).max(MEMORY_PAGE_MAX)).optional(),
  cursor: z.string().regex(MEMORY_CURSOR_PATTERN, 'cursor must be a next_cursor this route returned').optional(),
  ids: z.string().transform((s) => s.split(',')).pipe(z.array(z.string().regex(UUID_PATTERN, 'ids must be UUIDs separated by commas'))
    .min(1).max(MEMORY_IDS_MAX)).optional(),
}).strict().refine((p) => p.ids === undefined || (p.q === undefined && p.limit === undefined && p.cursor === undefined),
  'ids takes no q, limit or cursor');

/** The states a memory can be opened in (the memories route and MCP get_memory); a deleted memory
 *  is gone (404, never listed). */
export const OPEN_MEMORY_STATES = ['active', 'archived'] as const;

/** A memory as the routes return it. */
export const memoryItem = z.object({
  id: z.string().regex(UUID_PATTERN),
  content: z.string(),
  state: z.enum(OPEN_MEMORY_STATES),
  created_at: z.string(),
  updated_at: z.string(),
});
export type MemoryItem = z.infer<typeof memoryItem>;

/** 200 from GET memories: a page (next_cursor null on the last one), or the `ids` asked for
 *  that are the caller's and not deleted, in the order asked (next_cursor null). */
export const memoriesPage = z.object({ memories: z.array(memoryItem), next_cursor: z.string().nullable() });
export type MemoriesPage = z.infer<typeof memoriesPage>;

/** 200 from GET memories/<id>. */
export const memoryResponse = z.object({ memory: memoryItem });

/** 200 from DELETE memories/<id>: the memory is now state 'deleted'. In the same transaction the
 *  claims citing it left the narrative (and its history): how many, and whether the narrative
 *  itself went because the user fell below eligibility. */
export const memoryDeleted = z.object({
  id: z.string().regex(UUID_PATTERN),
  deleted_at: z.string(),
  claims_removed: z.number().int().min(0),
  narrative_removed: z.boolean(),
});
export type MemoryDeleted = z.infer<typeof memoryDeleted>;
