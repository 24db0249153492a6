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
  'access-control-allow-methods': 'GET, POST, OPTIONS',
};

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...corsHeaders, 'content-type': 'application/json', ...headers },
  });
}

export function log(fields: Record<string, unknown>): void {
  console.log(JSON.stringify({ ts: new Date().toISOString(), ...fields }));
}

/** Request context a handler can enrich for the request log line (never tokens or content). */
export interface RequestLog {
  user_id?: string;
}

export type Handler = (req: Request, ctx: RequestLog) => Promise<Response>;

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
      } catch (err) {
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
