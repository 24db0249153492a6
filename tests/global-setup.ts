// One fake Gemini per vitest run, on the port tests/functions.env points the functions at.
// Test files (in worker processes) drive it through its HTTP control API.
import { startFakeGemini, type FakeGemini } from './helpers/fake-gemini.ts';

let fake: FakeGemini | undefined;

export async function setup(): Promise<void> {
  try {
    fake = await startFakeGemini({ port: 54330, apiKey: 'fake-gemini-key' });
  } catch (err) {
    throw new Error(`Could not start the fake Gemini on 54330 (is another test run going?): ${(err as Error).message}`);
  }
}

export async function teardown(): Promise<void> {
  await fake?.close();
}
