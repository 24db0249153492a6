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

/** How deeply arrays and objects may nest in a request body: far more than any body here needs
 *  (the deepest contract, an MCP tool call's arguments, is about 5), and little enough that
 *  nothing after the check (zod, the MCP SDK, JSON.stringify, Postgres's jsonb) can overflow
 *  its stack on it. `[1]` is depth 1. */
export const MAX_JSON_DEPTH = 64;

/** Why a parsed JSON value may not go further: a string (key or value) Postgres and UTF-8 cannot
 *  carry — a NUL, an unpaired surrogate (JSON's \ud800 escapes decode to one) — or nesting deeper
 *  than MAX_JSON_DEPTH; null when it is clean. Iterative (an explicit stack), so no input can
 *  overflow the call stack. */
export function jsonProblem(value: unknown): 'invalid_text' | 'too_deep' | null {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v === 'string') {
      if (!isCleanString(v)) return 'invalid_text';
    } else if (v !== null && typeof v === 'object') {
      if (depth >= MAX_JSON_DEPTH) return 'too_deep';
      if (Array.isArray(v)) {
        for (const item of v) stack.push([item, depth + 1]);
      } else {
        for (const [k, item] of Object.entries(v)) {
          if (!isCleanString(k)) return 'invalid_text';
          stack.push([item, depth + 1]);
        }
      }
    }
  }
  return null;
}

// isWellFormed is ES2024 (V8 in Deno 2.1 and Node 20 have it; the TS lib here predates it).
const isCleanString = (s: string) => !s.includes('\u0000') && (s as string & { isWellFormed(): boolean }).isWellFormed();

export type ParsedBody =
  | { ok: true; value: unknown }
  | { ok: false; reason: 'invalid_utf8' | 'invalid_json' | 'invalid_text' | 'too_deep' };

/** Bytes to a JSON value: strict UTF-8, then JSON, then clean text and bounded depth. An empty
 *  body is undefined. */
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
  const problem = jsonProblem(value);
  return problem === null ? { ok: true, value } : { ok: false, reason: problem };
}
