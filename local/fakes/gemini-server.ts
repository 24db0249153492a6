// Standalone fake Gemini server: `npx tsx local/fakes/gemini-server.ts`.
// Listens on FAKE_GEMINI_PORT (default: local/config.ts's) and accepts the key FAKE_GEMINI_API_KEY
// (default 'fake-gemini-key'); drive it with fakeGeminiControl(url) from local/fakes/gemini.ts.
import { FAKE_GEMINI_API_KEY, FAKE_GEMINI_PORT } from '../config.ts';
import { startFakeGemini } from './gemini.ts';

const port = Number(process.env.FAKE_GEMINI_PORT ?? FAKE_GEMINI_PORT);
const apiKey = process.env.FAKE_GEMINI_API_KEY || FAKE_GEMINI_API_KEY;
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`fake-gemini: invalid FAKE_GEMINI_PORT ${process.env.FAKE_GEMINI_PORT}`);
  process.exit(2);
}

const fake = await startFakeGemini({ port, host: process.env.FAKE_GEMINI_HOST, apiKey });
console.log(`fake-gemini listening on ${fake.url} (control API at ${fake.url}/__fake/)`);

let closing = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (closing) return;
    closing = true;
    fake.close().then(() => process.exit(0), () => process.exit(1));
  });
}
