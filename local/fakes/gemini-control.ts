// The fake Gemini's HTTP control client: test workers in other processes drive a shared fake
// (started by tests/global-setup.ts) through its /__fake/ API.
import type { FakeBehavior, FakeCall, FakeChaos } from './gemini-behaviors.ts';

// ---------------------------------------------------------------------------------------------
// HTTP control client (for test workers in other processes)

export interface FakeGeminiControl {
  setDefault(behavior: FakeBehavior): Promise<void>;
  scenario(marker: string, steps: FakeBehavior[]): Promise<void>;
  calls(marker?: string): Promise<FakeCall[]>;
  reset(): Promise<void>;
  setChaos(chaos: FakeChaos | null): Promise<void>;
  /** See FakeGemini.hold: the next `times` requests for `marker` (default all) wait until release. */
  hold(marker: string, times?: number): Promise<void>;
  /** Lets the held requests for `marker` answer; resolves with how many were waiting. */
  release(marker: string): Promise<number>;
  /** Resolves once `count` requests for `marker` have arrived (held ones included). */
  waitForCalls(marker: string, count?: number, timeoutMs?: number): Promise<FakeCall[]>;
}

/** Drives a fake (in this process or another) over its /__fake/ control API. */
export function fakeGeminiControl(baseUrl: string): FakeGeminiControl {
  const root = baseUrl.replace(/\/+$/, '');
  async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${root}/__fake/${path}`, {
      method,
      headers: body === undefined ? undefined : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`fake-gemini control ${method} ${path}: HTTP ${res.status} ${text}`);
    return JSON.parse(text) as T;
  }
  return {
    async setDefault(behavior) {
      await call('POST', 'default', { behavior });
    },
    async scenario(marker, steps) {
      await call('POST', 'scenario', { marker, steps });
    },
    async calls(marker) {
      const q = marker === undefined ? '' : `?marker=${encodeURIComponent(marker)}`;
      return (await call<{ calls: FakeCall[] }>('GET', `calls${q}`)).calls;
    },
    async reset() {
      await call('POST', 'reset');
    },
    async setChaos(chaos) {
      await call('POST', 'chaos', chaos ?? {});
    },
    async hold(marker, times) {
      await call('POST', 'hold', { marker, times });
    },
    async release(marker) {
      return (await call<{ released: number }>('POST', 'release', { marker })).released;
    },
    async waitForCalls(marker, count = 1, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const got = await this.calls(marker);
        if (got.length >= count) return got;
        if (Date.now() > deadline) throw new Error(`fake-gemini: ${got.length}/${count} calls for marker ${marker} after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
  };
}
