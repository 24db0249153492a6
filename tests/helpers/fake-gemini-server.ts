// Standalone fake Gemini server: `npx tsx tests/helpers/fake-gemini-server.ts`.
// Listens on FAKE_GEMINI_PORT (default 54330) and accepts the key FAKE_GEMINI_API_KEY (default
// 'fake-gemini-key'); drive it with fakeGeminiControl(url) from tests/helpers/fake-gemini.ts.
import { startFakeGemini } from './fake-gemini.ts';

const port = Number(process.env.FAKE_GEMINI_PORT ?? 54330);
const apiKey = process.env.FAKE_GEMINI_API_KEY || 'fake-gemini-key';
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
