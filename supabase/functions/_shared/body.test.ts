import { describe, expect, it } from 'vitest';
import { isCleanText, parseJsonBytes, readCapped } from './body.ts';

/** A chunked upload that never ends, counting what was pulled from it. */
function endless(chunk: number) {
  const state = { pulled: 0, cancelled: false };
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      state.pulled += chunk;
      c.enqueue(new Uint8Array(chunk).fill(32));
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { body, state };
}

describe('readCapped', () => {
  it('stops reading a body without content-length once past the cap, and cancels the rest', async () => {
    const { body, state } = endless(1024);
    const req = new Request('http://x/', { method: 'POST', body, duplex: 'half' } as RequestInit);
    expect(await readCapped(req, 10_000), 'an endless chunked body is too large').toBe('too_large');
    expect(state.pulled, 'read no more than the cap plus a chunk or two').toBeLessThanOrEqual(10_000 + 3 * 1024);
    expect(state.cancelled, 'the stream is cancelled').toBe(true);
  });

  it('refuses a declared length over the cap without reading, and returns bodies within it', async () => {
    const big = new Request('http://x/', { method: 'POST', body: 'x'.repeat(20), headers: { 'content-length': '20' } });
    expect(await readCapped(big, 10), 'declared too large').toBe('too_large');
    const ok = new Request('http://x/', { method: 'POST', body: '{"a":1}' });
    expect(new TextDecoder().decode(await readCapped(ok, 10) as Uint8Array), 'the bytes, whole').toBe('{"a":1}');
  });
});

describe('parseJsonBytes', () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  it('refuses NUL, unpaired surrogates (escaped, keys too) and invalid UTF-8', () => {
    expect(parseJsonBytes(enc('{"a":"x\\u0000y"}')), 'NUL').toEqual({ ok: false, reason: 'invalid_text' });
    expect(parseJsonBytes(enc('{"a":"\\ud800"}')), 'lone high surrogate').toEqual({ ok: false, reason: 'invalid_text' });
    expect(parseJsonBytes(enc('{"\\udc00":1}')), 'lone surrogate in a key').toEqual({ ok: false, reason: 'invalid_text' });
    expect(parseJsonBytes(new Uint8Array([0x7b, 0xff, 0x7d])), 'invalid UTF-8').toEqual({ ok: false, reason: 'invalid_utf8' });
    expect(parseJsonBytes(enc('{"a":')), 'bad JSON').toEqual({ ok: false, reason: 'invalid_json' });
  });
  it('accepts clean text, paired surrogates and an empty body', () => {
    expect(parseJsonBytes(enc('{"a":["🦀","\\ud83e\\udd80"]}')), 'emoji, raw and escaped').toEqual({ ok: true, value: { a: ['🦀', '🦀'] } });
    expect(parseJsonBytes(enc('  ')), 'empty').toEqual({ ok: true, value: undefined });
    expect(isCleanText({ n: 1, b: true, z: null }), 'non-strings are clean').toBe(true);
  });
});
