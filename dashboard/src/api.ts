// The narrative function through supabase-js, turned into plain outcomes the panel can show.
// Shapes come from shared/narrative.ts, the contract the function itself answers with.
import {
  FunctionsFetchError, FunctionsHttpError, FunctionsRelayError, type SupabaseClient,
} from '@supabase/supabase-js';
import {
  MEMORY_COUNT_HEADER, MIN_MEMORIES_HEADER, NARRATIVE_STATUSES, narrativeResponse, regenerateResponse,
  type NarrativeResponse, type NarrativeStatus,
} from '../../shared/narrative.ts';

/** Why a call did not give an answer the panel can use. */
export type Failure =
  | { kind: 'network' }
  | { kind: 'unauthorized' }
  | { kind: 'http'; status: number; message: string | null };

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

async function errorMessage(res: Response): Promise<string | null> {
  try {
    const body = (await res.json()) as { error?: { message?: unknown }; message?: unknown };
    const m = body.error?.message ?? body.message;
    return typeof m === 'string' ? m : null;
  } catch {
    return null;
  }
}

/** The failure behind an invoke error: no response at all, or a non-2xx status. */
async function failure({ error, response }: Invoked): Promise<Failure> {
  if (error instanceof FunctionsFetchError || !response) return { kind: 'network' };
  if (response.status === 401) return { kind: 'unauthorized' };
  const message = error instanceof FunctionsHttpError || error instanceof FunctionsRelayError ? await errorMessage(response) : null;
  return { kind: 'http', status: response.status, message };
}

const unexpected = (status: number): Failure => ({ kind: 'http', status, message: 'unexpected response' });

export function narrativeApi(supabase: SupabaseClient) {
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
          return { kind: 'not_eligible', message: (await errorMessage(res)) ?? 'More memories are needed for a narrative.' };
        }
        return failure(r);
      }
      const parsed = regenerateResponse.safeParse(r.data);
      return parsed.success ? { kind: 'accepted', jobId: parsed.data.job_id, status: parsed.data.status } : unexpected(r.response.status);
    },
  };
}

export type NarrativeApi = ReturnType<typeof narrativeApi>;
