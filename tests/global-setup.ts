// One fake Gemini per vitest run, on the port tests/functions.env points the functions at.
// Test files (in worker processes) drive it through its HTTP control API. If another run's fake
// already answers on that port (a second vitest in parallel during development), use it.
import { FAKE_GEMINI_PORT as PORT } from '../local/config.ts';
import { startFakeGemini, type FakeGemini } from '../local/fakes/gemini.ts';

let fake: FakeGemini | undefined;

export async function setup(): Promise<void> {
  try {
    fake = await startFakeGemini({ port: PORT });
  } catch (err) {
    const shared = await fetch(`http://127.0.0.1:${PORT}/__fake/calls`).then((r) => r.ok, () => false);
    if (!shared) throw new Error(`Port ${PORT} is taken by something that is not a fake Gemini: ${(err as Error).message}`);
  }
}

export async function teardown(): Promise<void> {
  await fake?.close();
}
