// One JSON log line per tool call or resource read, whatever ends it: the tool's result, a tool
// error, or the SDK refusing the arguments before the tool runs. So it watches the transport
// (request in, response out) rather than wrapping the tools. Never arguments, results or tokens.
// @ts-types: Deno cannot type this SDK's `.js` subpaths (its `./*` export maps types to `*.js.d.ts`,
// modelcontextprotocol/typescript-sdk#2701), so each import names its declarations.
// @ts-types="@modelcontextprotocol/sdk/shared/transport"
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
// @ts-types="@modelcontextprotocol/sdk/types"
import {
  isJSONRPCErrorResponse, isJSONRPCRequest, isJSONRPCResultResponse, type JSONRPCMessage, type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import { log } from '../http.ts';

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

  /** Before server.connect(transport): the SDK keeps an onmessage that is already set and calls it first. */
  observe(transport: Transport): void {
    transport.onmessage = (message) => this.started(message);
    const send = transport.send.bind(transport);
    transport.send = async (message, options) => {
      this.finished(message);
      return await send(message, options);
    };
  }

  /** Adds fields (an error code, why an answer fell back) to the call's log line. */
  note(id: RequestId, fields: Record<string, string | number | null>): void {
    const p = this.pending.get(id);
    if (p) Object.assign(p.notes, fields);
  }

  private started(message: JSONRPCMessage): void {
    if (!isJSONRPCRequest(message) || !LOGGED.has(message.method)) return;
    const params = (message.params ?? {}) as { name?: unknown; uri?: unknown };
    const name = message.method === 'tools/call' ? params.name : params.uri;
    this.pending.set(message.id, { method: message.method, name: String(name).slice(0, 80), started: performance.now(), notes: {} });
  }

  private finished(message: JSONRPCMessage): void {
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
