// The functions through supabase-js, turned into plain outcomes the views can show. Shapes come
// from shared/, the contracts the functions themselves answer with: a response that does not
// match is an "unexpected response", never half-shown data.
import {
  FunctionsFetchError, FunctionsHttpError, FunctionsRelayError, type SupabaseClient,
} from '@supabase/supabase-js';
import type { z } from 'zod';
import { memoriesPage, memoryDeleted, type MemoriesPage, type MemoryDeleted, type MemoryItem } from '../../shared/memories.ts';
import {
  MEMORY_COUNT_HEADER, MIN_MEMORIES_HEADER, NARRATIVE_STATUSES, narrativeHistoryResponse, narrativeResponse,
  narrativeVersionResponse, noteResponse, notesResponse, regenerateResponse,
  type NarrativeHistoryResponse, type NarrativeNote, type NarrativeResponse, type NotesResponse, type NarrativeStatus, type NarrativeVersionResponse,
} from '../../shared/narrative.ts';

/** Why a call did not give an answer the views can use. */
export type Failure =
  | { kind: 'network' }
  | { kind: 'unauthorized' }
  | { kind: 'http'; status: number; code: string | null; message: string | null };

export type Result<T> = { kind: 'ok'; data: T } | Failure;

export type NarrativeResult =
  | { kind: 'narrative'; narrative: NarrativeResponse }
  | { kind: 'pending'; status: NarrativeStatus; need?: Need }
  | Failure;

export type RegenerateResult =
  | { kind: 'accepted'; jobId: number; status: 'queued' | 'running' }
  | { kind: 'cooldown'; retryAfterSeconds: number }
  | { kind: 'not_eligible'; message: string }
  | Failure;

/** From a 204 ineligible: the operator's threshold (private.settings.min_memories) and the user's count. */
export interface Need { minMemories: number; memoryCount: number }

function need(headers: Headers): Need | undefined {
  const minMemories = Number(headers.get(MIN_MEMORIES_HEADER));
  const memoryCount = Number(headers.get(MEMORY_COUNT_HEADER));
  return headers.has(MIN_MEMORIES_HEADER) && Number.isInteger(minMemories) && Number.isInteger(memoryCount)
    ? { minMemories, memoryCount } : undefined;
}

type Invoked = Awaited<ReturnType<SupabaseClient['functions']['invoke']>>;

/** {"error": {"code", "message"}}, the one error shape of every function. */
async function errorBody(res: Response): Promise<{ code: string | null; message: string | null }> {
  try {
    const body = (await res.json()) as { error?: { code?: unknown; message?: unknown }; message?: unknown };
    const m = body.error?.message ?? body.message;
    const c = body.error?.code;
    return { code: typeof c === 'string' ? c : null, message: typeof m === 'string' ? m : null };
  } catch {
    return { code: null, message: null };
  }
}

/** The failure behind an invoke error: no response at all, or a non-2xx status. */
async function failure({ error, response }: Invoked): Promise<Failure> {
  if (error instanceof FunctionsFetchError || !response) return { kind: 'network' };
  if (response.status === 401) return { kind: 'unauthorized' };
  const body = error instanceof FunctionsHttpError || error instanceof FunctionsRelayError
    ? await errorBody(response) : { code: null, message: null };
  return { kind: 'http', status: response.status, ...body };
}

const unexpected = (status: number): Failure => ({ kind: 'http', status, code: null, message: 'unexpected response' });

export function narrativeApi(supabase: SupabaseClient) {
  /** One call: the answer checked against its contract (null schema: no body expected). */
  async function call<S extends z.ZodTypeAny>(path: string, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', schema: S, body?: object): Promise<Result<z.infer<S>>>;
  async function call(path: string, method: 'DELETE', schema: null): Promise<Result<null>>;
  async function call(path: string, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', schema: z.ZodTypeAny | null, body?: object): Promise<Result<unknown>> {
    const r = await supabase.functions.invoke(path, { method, ...(body ? { body } : {}) });
    if (r.error || !r.response) return failure(r);
    if (!schema) return { kind: 'ok', data: null };
    const parsed = schema.safeParse(r.data);
    return parsed.success ? { kind: 'ok', data: parsed.data } : unexpected(r.response.status);
  }

  return {
    /** GET: the cached narrative, or why there is none yet (Narrative-Status of a 204). */
    async get(): Promise<NarrativeResult> {
      const r = await supabase.functions.invoke('narrative', { method: 'GET' });
      if (r.error || !r.response) return failure(r);
      if (r.response.status === 204) {
        const status = r.response.headers.get('narrative-status') as NarrativeStatus | null;
        return status && NARRATIVE_STATUSES.includes(status) ? { kind: 'pending', status, need: need(r.response.headers) } : unexpected(204);
      }
      const parsed = narrativeResponse.safeParse(r.data);
      return parsed.success ? { kind: 'narrative', narrative: parsed.data } : unexpected(r.response.status);
    },

    /** POST: ask for a new version (202), or learn when that is allowed again (429). */
    async regenerate(): Promise<RegenerateResult> {
      const r = await supabase.functions.invoke('narrative', { method: 'POST' });
      if (r.error || !r.response) {
        const res = r.response;
        if (res?.status === 429) {
          const seconds = Number(res.headers.get('retry-after'));
          return { kind: 'cooldown', retryAfterSeconds: Number.isFinite(seconds) && seconds > 0 ? seconds : 60 };
        }
        if (res?.status === 409) {
          return { kind: 'not_eligible', message: (await errorBody(res)).message ?? 'More memories are needed for a narrative.' };
        }
        return failure(r);
      }
      const parsed = regenerateResponse.safeParse(r.data);
      return parsed.success ? { kind: 'accepted', jobId: parsed.data.job_id, status: parsed.data.status } : unexpected(r.response.status);
    },

    history: async (): Promise<Result<NarrativeHistoryResponse['versions']>> =>
      map(await call('narrative/history', 'GET', narrativeHistoryResponse), (d) => d.versions),
    version: (version: number): Promise<Result<NarrativeVersionResponse>> =>
      call(`narrative/history/${version}`, 'GET', narrativeVersionResponse),

    /** The user's notes and the limit they count against (the operator's setting). */
    notes: (): Promise<Result<NotesResponse>> => call('narrative/notes', 'GET', notesResponse),
    addNote: async (content: string, pinned: boolean): Promise<Result<NarrativeNote>> =>
      map(await call('narrative/notes', 'POST', noteResponse, { content, pinned }), (d) => d.note),
    updateNote: async (id: string, change: { content?: string; pinned?: boolean }): Promise<Result<NarrativeNote>> =>
      map(await call(`narrative/notes/${id}`, 'PATCH', noteResponse, change), (d) => d.note),
    deleteNote: (id: string): Promise<Result<null>> => call(`narrative/notes/${id}`, 'DELETE', null),

    /** A page of active memories, newest first; `q` keeps those with every word (as a prefix). */
    memories(p: { q?: string; cursor?: string | null; limit?: number }): Promise<Result<MemoriesPage>> {
      const params = new URLSearchParams();
      if (p.q) params.set('q', p.q);
      if (p.cursor) params.set('cursor', p.cursor);
      if (p.limit) params.set('limit', String(p.limit));
      const qs = params.toString();
      return call(`memories${qs ? `?${qs}` : ''}`, 'GET', memoriesPage);
    },
    /** The memories a claim cites that are still there (the caller's own, not deleted), in that order. */
    openMemories: async (ids: readonly string[]): Promise<Result<MemoryItem[]>> =>
      map(await call(`memories?ids=${ids.map(encodeURIComponent).join(',')}`, 'GET', memoriesPage), (d) => d.memories),
    deleteMemory: (id: string): Promise<Result<MemoryDeleted>> => call(`memories/${id}`, 'DELETE', memoryDeleted),
  };
}

/** A result with its data turned by f; a failure passes through. */
export function map<T, U>(r: Result<T>, f: (t: T) => U): Result<U> {
  return r.kind === 'ok' ? { kind: 'ok', data: f(r.data) } : r;
}

export type NarrativeApi = ReturnType<typeof narrativeApi>;
