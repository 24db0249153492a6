import { describe, expect, it } from 'vitest';
import { jsonProblem, MAX_JSON_DEPTH, parseJsonBytes, readCapped } from './body.ts';

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
    expect(jsonProblem({ n: 1, b: true, z: null }), 'non-strings are clean').toBeNull();
  });
});

describe('nesting depth', () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  const arrays = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
  const objects = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

  it(`accepts ${MAX_JSON_DEPTH} levels of arrays or objects, and refuses one more`, () => {
    expect(parseJsonBytes(enc(arrays(MAX_JSON_DEPTH))).ok, `${MAX_JSON_DEPTH} arrays`).toBe(true);
    expect(parseJsonBytes(enc(objects(MAX_JSON_DEPTH))).ok, `${MAX_JSON_DEPTH} objects`).toBe(true);
    expect(parseJsonBytes(enc(arrays(MAX_JSON_DEPTH + 1))), 'one array more').toEqual({ ok: false, reason: 'too_deep' });
    expect(parseJsonBytes(enc(objects(MAX_JSON_DEPTH + 1))), 'one object more').toEqual({ ok: false, reason: 'too_deep' });
    expect(parseJsonBytes(enc(`{"x":[{"y":${arrays(MAX_JSON_DEPTH - 2)}}]}`)), 'mixed, one more').toEqual({ ok: false, reason: 'too_deep' });
  });

  it('refuses the whole 64 KiB of nesting a body can hold without overflowing the stack', () => {
    // 5,000 levels (10 KB) overflowed the recursive check; a 64 KiB body holds 32,768.
    for (const depth of [5_000, 32_768]) {
      expect(parseJsonBytes(enc(arrays(depth))), `${depth} arrays`).toEqual({ ok: false, reason: 'too_deep' });
      expect(parseJsonBytes(enc(objects(depth))), `${depth} objects`).toEqual({ ok: false, reason: 'too_deep' });
    }
    const wide = JSON.stringify(Array.from({ length: 20_000 }, (_, i) => ({ k: [i, `v${i}`] })));
    expect(parseJsonBytes(enc(wide)).ok, 'wide and shallow is fine').toBe(true);
  });

  it('still finds bad text below the limit, keys included', () => {
    expect(jsonProblem([[['ok', { 'k\u0000': 1 }]]]), 'NUL in a nested key').toBe('invalid_text');
    expect(jsonProblem({ a: [{ b: '\ud800' }] }), 'lone surrogate nested').toBe('invalid_text');
  });
});
