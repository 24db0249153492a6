// A worker the platform is about to stop. The edge runtime gives a worker a wall clock (150 s on
// the free plan, 400 s paid), stops routing requests to it at half, and dispatches `beforeunload`
// (a CustomEvent, `detail.reason`: wall_clock, cpu, memory, early_drop or termination) shortly
// before it terminates it; a generation still running then would hold its job until the lease
// expires (lease_seconds, 180 s) and the sweeper requeues it. Instead, generate-narrative's
// listener calls stopWorker: every provider call of this worker is cancelled, and the attempt
// fails as worker_shutdown — retryable, due at once (private.fail_job), with what it had spent
// so far (a first answer cut at MAX_TOKENS is in the error's usage) — so the dispatch that
// fail_job runs sends the job to another worker right away. A generation that starts after it
// fails the same way; one already storing its narrative finishes (complete_job is a statement,
// not a provider call).
import { ProviderError, type NarrativeProvider } from '../providers/types.ts';

const stopping = new AbortController();
let inFlight = 0;

function shutdownError(reason: string, cause: unknown): ProviderError {
  return new ProviderError('worker_shutdown', `the worker was stopped mid-generation (${reason})`, true, null,
    cause instanceof ProviderError ? cause.usage : null);
}

/** The platform is stopping this worker: cancel every generation. Returns how many were running. */
export function stopWorker(reason: string): number {
  if (!stopping.signal.aborted) stopping.abort(reason);
  return inFlight;
}

/** `provider`, whose generations end with worker_shutdown once stopWorker was called. */
export function stopsWithWorker(provider: NarrativeProvider): NarrativeProvider {
  return {
    name: provider.name,
    async generate(input, signal, lane) {
      if (stopping.signal.aborted) throw shutdownError(String(stopping.signal.reason), null);
      inFlight++;
      try {
        return await provider.generate(input, AbortSignal.any([signal, stopping.signal]), lane);
      } catch (err) {
        if (stopping.signal.aborted) throw shutdownError(String(stopping.signal.reason), err);
        throw err;
      } finally {
        inFlight--;
      }
    },
  };
}

/** The reason of an edge-runtime `beforeunload` (`detail.reason`); Deno's own has none. */
export function unloadReason(ev: Event): string {
  const detail = (ev as CustomEvent<{ reason?: unknown } | null>).detail;
  return typeof detail?.reason === 'string' ? detail.reason : 'unknown';
}
