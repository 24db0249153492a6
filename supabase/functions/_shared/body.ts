// Request bodies, bounded by the bytes actually read (a chunked upload has no content-length to
// trust, and a declared length can lie low), and text checked before it reaches Postgres, which
// refuses NUL (22021, a 500 if it got that far). Pure (no env, no Deno globals), so the unit
// project tests it beside this file; http.ts turns the outcomes into HttpErrors.

/** The body's bytes, or 'too_large' as soon as more than maxBytes arrived (the rest is not read). */
export async function readCapped(req: Request, maxBytes: number): Promise<Uint8Array | 'too_large'> {
  const declared = Number(req.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) return 'too_large';
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      return 'too_large';
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** True when every string (keys included) of a parsed JSON value is text Postgres and UTF-8 can
 *  carry: no NUL, no unpaired surrogate (JSON's \ud800 escapes decode to one). */
export function isCleanText(value: unknown): boolean {
  // isWellFormed is ES2024 (V8 in Deno 2.1 and Node 20 have it; the TS lib here predates it).
  if (typeof value === 'string') return !value.includes('\u0000') && (value as string & { isWellFormed(): boolean }).isWellFormed();
  if (Array.isArray(value)) return value.every(isCleanText);
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).every(([k, v]) => isCleanText(k) && isCleanText(v));
  }
  return true;
}

export type ParsedBody = { ok: true; value: unknown } | { ok: false; reason: 'invalid_utf8' | 'invalid_json' | 'invalid_text' };

/** Bytes to a JSON value: strict UTF-8, then JSON, then clean text. An empty body is undefined. */
export function parseJsonBytes(bytes: Uint8Array): ParsedBody {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { ok: false, reason: 'invalid_utf8' };
  }
  if (text.trim() === '') return { ok: true, value: undefined };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'invalid_json' };
  }
  return isCleanText(value) ? { ok: true, value } : { ok: false, reason: 'invalid_text' };
}
