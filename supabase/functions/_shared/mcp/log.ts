// One JSON log line per tool call or resource read, whatever ends it: the tool's result, a tool
// error, or the SDK refusing the arguments before the tool runs. The function is stateless with
// one JSON-RPC message per POST and JSON responses, so it watches the HTTP exchange (the request
// message in, the response message out) rather than wrapping the tools, the same for every
// protocol revision. Never arguments, results or tokens.
import {
  isJSONRPCErrorResponse, isJSONRPCRequest, isJSONRPCResultResponse, type JSONRPCMessage, type RequestId,
} from '@modelcontextprotocol/server';
import { log } from '../log.ts';

interface Pending {
  method: string;
  name: string;
  started: number;
  notes: Record<string, string | number | null>;
}

const LOGGED = new Set(['tools/call', 'resources/read']);

export class CallLog {
  private readonly pending = new Map<RequestId, Pending>();

  constructor(private readonly userId: string) {}

  /** The request's JSON-RPC message, before the server sees it. */
  started(message: unknown): void {
    if (!isJSONRPCRequest(message) || !LOGGED.has(message.method)) return;
    const params = (message.params ?? {}) as { name?: unknown; uri?: unknown };
    const name = message.method === 'tools/call' ? params.name : params.uri;
    this.pending.set(message.id, { method: message.method, name: String(name).slice(0, 80), started: performance.now(), notes: {} });
  }

  /** Adds fields (an error code, why an answer fell back) to the call's log line. */
  note(id: RequestId, fields: Record<string, string | number | null>): void {
    const p = this.pending.get(id);
    if (p) Object.assign(p.notes, fields);
  }

  /** The HTTP response: logs the call it answers (a JSON body; anything else answers no call). */
  async finished(res: Response): Promise<void> {
    if (this.pending.size === 0 || !/^application\/json\b/i.test(res.headers.get('content-type') ?? '')) return;
    let message: JSONRPCMessage;
    try {
      message = await res.clone().json();
    } catch {
      return;
    }
    if (!isJSONRPCResultResponse(message) && !isJSONRPCErrorResponse(message)) return;
    const id = message.id;
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p || id === undefined) return;
    this.pending.delete(id);
    let outcome = 'ok';
    const notes = { ...p.notes };
    if (isJSONRPCErrorResponse(message)) {
      outcome = 'protocol_error';
      notes.error_code ??= message.error.code;
    } else if ((message.result as { isError?: boolean }).isError) {
      outcome = 'tool_error';
      // No code noted: the SDK answered before the tool ran (bad arguments, unknown tool).
      const text = (message.result as { content?: { text?: string }[] }).content?.[0]?.text ?? '';
      notes.error_code ??= text.includes('Input validation error') ? 'invalid_arguments' : 'rejected';
    }
    log({
      level: outcome === 'ok' ? 'info' : 'warn', msg: 'mcp_call', method: p.method,
      [p.method === 'tools/call' ? 'tool' : 'resource']: p.name,
      duration_ms: Math.round((performance.now() - p.started) * 10) / 10, outcome, user_id: this.userId, ...notes,
    });
  }
}
