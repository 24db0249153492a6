import type { z } from 'zod';
import { MAX_JSON_DEPTH, type ParsedBody, parseJsonBytes, readCapped } from './body.ts';
import { env } from './env.ts';
import { log } from './log.ts';

// One error type, one error shape: {"error": {"code", "message"}}. Anything unknown is logged
// and becomes a plain 500; CORS is answered before anything else.
export class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

export const corsHeaders = {
  'access-control-allow-origin': '*',
  'access-control-allow-headers': 'authorization, x-client-info, apikey, content-type',
  'access-control-allow-methods': 'GET, POST, PATCH, DELETE, OPTIONS',
  'access-control-expose-headers': 'narrative-status, retry-after',
};

/** corsHeaders for a function whose browser clients send, or may read, more headers. */
export function corsWith(extra: { allowHeaders?: string[]; exposeHeaders?: string[] }): Record<string, string> {
  const add = (base: string, more: string[] | undefined) => (more?.length ? `${base}, ${more.join(', ')}` : base);
  return {
    ...corsHeaders,
    'access-control-allow-headers': add(corsHeaders['access-control-allow-headers'], extra.allowHeaders),
    'access-control-expose-headers': add(corsHeaders['access-control-expose-headers'], extra.exposeHeaders),
  };
}

/** 405 for anything but the listed methods. */
export function allowMethods(req: Request, ...methods: string[]): void {
  if (!methods.includes(req.method)) {
    throw new HttpError(405, 'method_not_allowed', `Use ${methods.join(' or ')}`, { allow: methods.join(', ') });
  }
}

/** Accepts an empty body or an empty JSON object, for endpoints that take no parameters. */
export async function expectNoBody(req: Request): Promise<void> {
  const body = await readJsonBody(req);
  if (body === undefined) return;
  if (typeof body !== 'object' || body === null || Array.isArray(body) || Object.keys(body).length > 0) {
    throw new HttpError(400, 'invalid_request', 'This endpoint takes no parameters');
  }
}

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...corsHeaders, 'content-type': 'application/json', ...headers },
  });
}

// A cache hit's headers: what a browser needs to read a 200 JSON body from another origin. A 200
// has no header to expose, and preflights (which need the allow-* headers) get corsHeaders.
const HIT_HEADERS = { 'access-control-allow-origin': '*', 'content-type': 'application/json' };

/** 200 with a body already serialised as JSON (the cache hit, built in SQL), and HIT_HEADERS. */
export function jsonText(body: string): Response {
  return new Response(body, { headers: HIT_HEADERS });
}

/** Request context a handler can enrich for the request log line (never tokens or content). */
export interface RequestLog {
  user_id?: string;
}

export type Handler = (req: Request, ctx: RequestLog) => Promise<Response>;

/**
 * An HTTP answer a database function chose, the way PostgREST lets one choose it: `raise sqlstate
 * 'PGRST' using message = '{"code", "message"}', detail = '{"status", "headers"}'` (JSON text).
 * Anything else (or a malformed one) is not an HTTP answer and stays an error.
 */
export function dbHttpError(err: unknown): HttpError | null {
  if (!(err instanceof Error) || (err as { code?: unknown }).code !== 'PGRST') return null;
  try {
    const { code, message } = JSON.parse(err.message) as { code?: unknown; message?: unknown };
    const { status, headers } = JSON.parse((err as { detail?: string }).detail ?? '') as { status?: unknown; headers?: unknown };
    if (typeof code !== 'string' || typeof message !== 'string' || typeof status !== 'number' || status < 400 || status > 599) return null;
    const h = typeof headers === 'object' && headers !== null
      ? Object.fromEntries(Object.entries(headers).filter((e): e is [string, string] => typeof e[1] === 'string').map(([k, v]) => [k.toLowerCase(), v]))
      : {};
    return new HttpError(status, code, message, h);
  } catch {
    return null;
  }
}

/** Wraps a handler with CORS, error mapping and one JSON log line per request. */
export function route(name: string, handler: Handler): (req: Request) => Promise<Response> {
  return async (req) => {
    const started = performance.now();
    const ctx: RequestLog = {};
    let res: Response;
    if (req.method === 'OPTIONS') {
      res = new Response(null, { status: 204, headers: corsHeaders });
    } else {
      try {
        res = await handler(req, ctx);
      } catch (thrown) {
        const err = dbHttpError(thrown) ?? thrown;
        if (err instanceof HttpError) {
          res = json({ error: { code: err.code, message: err.message } }, err.status, err.headers);
        } else {
          log({ level: 'error', route: name, msg: 'unhandled_error', error: err instanceof Error ? err.message : String(err) });
          res = json({ error: { code: 'internal_error', message: 'Internal server error' } }, 500);
        }
      }
    }
    log({
      level: 'info', route: name, method: req.method, status: res.status,
      duration_ms: Math.round((performance.now() - started) * 10) / 10, user_id: ctx.user_id ?? null,
    });
    return res;
  };
}

/** The one body reader of every function: at most MAX_BODY_BYTES actually read, chunked uploads
 *  included (413 payload_too_large the moment the cap is passed, the rest left unread). */
export async function readBody(req: Request): Promise<Uint8Array> {
  const bytes = await readCapped(req, env.maxBodyBytes);
  if (bytes === 'too_large') throw new HttpError(413, 'payload_too_large', `Body exceeds ${env.maxBodyBytes} bytes`);
  return bytes;
}

const BODY_ERRORS: Record<Exclude<ParsedBody, { ok: true }>['reason'], [string, string]> = {
  invalid_utf8: ['invalid_text', 'The body is not valid UTF-8'],
  invalid_json: ['invalid_json', 'The body is not valid JSON'],
  invalid_text: ['invalid_text', 'Text must not contain NUL characters or unpaired surrogates'],
  too_deep: ['json_too_deep', `JSON arrays and objects may nest at most ${MAX_JSON_DEPTH} levels deep`],
};

/** The capped body as JSON (undefined when empty); 400 for invalid UTF-8, JSON or text, or
 *  nesting past MAX_JSON_DEPTH. */
export async function readJsonBody(req: Request): Promise<unknown> {
  const parsed = parseJsonBytes(await readBody(req));
  if (!parsed.ok) {
    const [code, message] = BODY_ERRORS[parsed.reason];
    throw new HttpError(400, code, message);
  }
  return parsed.value;
}

/**
 * Reads and validates a JSON body: 415 for a non-JSON content type, 413 past the size limit,
 * 400 for malformed JSON or text, or a body that does not match the schema (unknown fields included).
 */
export async function readJson<S extends z.ZodTypeAny>(req: Request, schema: S): Promise<z.infer<S>> {
  const type = req.headers.get('content-type') ?? '';
  if (!/^application\/json\b/i.test(type)) {
    throw new HttpError(415, 'unsupported_media_type', 'Send the body as application/json');
  }
  const body = await readJsonBody(req);
  if (body === undefined) throw new HttpError(400, 'invalid_json', 'The body is not valid JSON');
  return validated(schema, body, 'body');
}

/** `value` checked against `schema`, or 400 invalid_request naming the first three problems
 *  (`where` names the whole value when the problem is not in a field). */
export function validated<S extends z.ZodTypeAny>(schema: S, value: unknown, where: 'body' | 'query'): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const detail = parsed.error.issues.slice(0, 3)
      .map((i) => `${i.path.length ? i.path.join('.') : where}: ${i.message}`).join('; ');
    throw new HttpError(400, 'invalid_request', detail);
  }
  return parsed.data;
}

/** Compares two secrets in time independent of where they differ. */
export async function secretsEqual(a: string, b: string): Promise<boolean> {
  const enc = new TextEncoder();
  const [da, db] = await Promise.all([
    crypto.subtle.digest('SHA-256', enc.encode(a)),
    crypto.subtle.digest('SHA-256', enc.encode(b)),
  ]);
  const x = new Uint8Array(da);
  const y = new Uint8Array(db);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}
