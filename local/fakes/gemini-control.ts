// The fake Gemini's HTTP control API under /__fake/, both ends: the routes the server answers
// (controlRoute) and the client test workers in other processes drive a shared fake with
// (started by tests/global-setup.ts).
import type { FakeBehavior, FakeCall, FakeChaos } from './gemini-behaviors.ts';
import { googleError } from './gemini-wire.ts';

// ---------------------------------------------------------------------------------------------
// Routes (in the server's process)

/** What a control route does to the fake: its in-process API. */
export interface ControlledFake {
  setDefault(behavior: FakeBehavior): void;
  /** Registers (or replaces, restarting at step 1) the scenario for `marker`. */
  scenario(marker: string, steps: FakeBehavior[]): void;
  /** Calls that matched `marker`, or every call when absent, oldest first. */
  calls(marker?: string): FakeCall[];
  /** Back to the initial state: default ok, no scenarios, no chaos, no recorded calls. */
  reset(): void;
  /** Turns chaos on, or off with null / failureRate 0. */
  setChaos(chaos: FakeChaos | null): void;
  /** The next `times` requests for `marker` (default: all until release) are recorded, then wait unanswered. */
  hold(marker: string, times?: number): void;
  /** Stops holding `marker` and lets its waiting requests play their step; returns how many it let go. */
  release(marker: string): number;
}

/** The answer to one /__fake/ request: a Google-shaped error for an unknown route or bad input. */
export function controlRoute(fake: ControlledFake, method: string, url: URL, raw: string): { status: number; body: unknown } {
  const route = `${method} ${url.pathname}`;
  const done = { status: 200, body: { ok: true } };
  try {
    const body = raw ? JSON.parse(raw) : {};
    switch (route) {
      case 'POST /__fake/scenario':
        fake.scenario(body.marker, body.steps);
        return done;
      case 'POST /__fake/default':
        fake.setDefault(body.behavior);
        return done;
      case 'POST /__fake/chaos':
        fake.setChaos(body && Object.keys(body).length ? body : null);
        return done;
      case 'POST /__fake/reset':
        fake.reset();
        return done;
      case 'POST /__fake/hold':
        fake.hold(body.marker, body.times ?? undefined);
        return done;
      case 'POST /__fake/release':
        return { status: 200, body: { ok: true, released: fake.release(body.marker) } };
      case 'GET /__fake/calls': {
        const marker = url.searchParams.get('marker');
        return { status: 200, body: { calls: fake.calls(marker === null || marker === '' ? undefined : marker) } };
      }
      default:
        return { status: 404, body: googleError(404, 'NOT_FOUND', `Unknown control route ${route}.`) };
    }
  } catch (err) {
    return { status: 400, body: googleError(400, 'INVALID_ARGUMENT', err instanceof Error ? err.message : String(err)) };
  }
}

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
