// The MCP server for one signed-in user: memory tools and the narrative at conversation start.
// Built per request (stateless Streamable HTTP): the user is the access token's subject, fixed
// here, and every query runs as that user under RLS — no tool argument can name another user.
// Inputs and outputs are zod schemas (outputs from shared/mcp.ts), which the SDK both validates
// and advertises as JSON Schema: every tool declares outputSchema and returns structuredContent,
// with the same result as text content for clients that predate structured output.
import { type CallToolResult, McpServer, type RequestId } from '@modelcontextprotocol/server';
import { z } from 'zod';
import {
  addMemoriesOutput, answerOutput, getMemoryOutput, jeanMemoryOutput, listMemoriesOutput, MCP_PROTOCOL_VERSIONS, narrativeStateOutput,
  searchMemoryOutput,
} from '../../../../shared/mcp.ts';
import { MEMORY_MAX_CHARS, USER_MESSAGE_MAX_CHARS } from '../../../../shared/narrative.ts';
import type { UserClaims } from '../auth.ts';
import { asUser, service, type Tx } from '../db.ts';
import { log } from '../log.ts';
import { orchestrate } from '../narrative/orchestrate.ts';
import { answer, ASK, DEEP, type AnswerSpec, type PaidCalls } from './answer.ts';
import type { CallLog } from './log.ts';
import { addMemory, getMemory, listMemories, memoriesFor, searchMemories } from './memories.ts';
import { NARRATIVE_URI, narrativeMarkdown, narrativeState } from './narrative.ts';

/** Statement timeout for a tool's queries. */
const STATEMENT_TIMEOUT_MS = 5_000;
/** As the memories.content check constraint. */

// Text Postgres can store (no NUL), not blank.
const textInput = (max: number, what: string) => z.string().trim().min(1, `${what} must not be empty`).max(max)
  .refine((s) => !s.includes('\u0000'), `${what} must not contain NUL characters`);
const limit = (max: number, dflt: number) => z.number().int().min(1).max(max).default(dflt)
  .describe(`How many to return, 1 to ${max} (default ${dflt})`);

const iso = (d: Date) => d.toISOString();

/** A tool's own refusal (e.g. an unknown id): answered as a tool error with this code. */
class ToolError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export function createMcpServer(claims: UserClaims, calls: CallLog): McpServer {
  const server = new McpServer({ name: 'narrative-cache', version: '0.1.0' }, {
    supportedProtocolVersions: [...MCP_PROTOCOL_VERSIONS],
    instructions: 'Memory of the signed-in user. Call jean_memory at the start of every conversation (and with each '
      + 'new user message) for context; add_memories to remember something; search_memory, list_memories, '
      + 'ask_memory and deep_memory_query to recall; get_narrative for the user\'s portrait; get_memory to open a claim\'s citation.',
  });

  const asMe = <T>(work: (tx: Tx) => Promise<T>) => asUser(claims, async (tx) => {
    await tx`select set_config('statement_timeout', ${String(STATEMENT_TIMEOUT_MS)}, true)`;
    return await work(tx);
  });

  /** Runs a tool: its result as text plus structured content, or a tool error (never a crash). */
  async function run(id: RequestId, work: () => Promise<{ text: string; data: Record<string, unknown> }>): Promise<CallToolResult> {
    try {
      const { text, data } = await work();
      return { content: [{ type: 'text', text }], structuredContent: data };
    } catch (err) {
      if (err instanceof ToolError) {
        calls.note(id, { error_code: err.code });
        return { isError: true, content: [{ type: 'text', text: err.message }], _meta: { error_code: err.code } };
      }
      // Bad arguments never get here (the SDK refuses them first); what is left is the database:
      // a timeout, a memory limit (23514 from private.check_memory_limits, whose message names
      // only numbers: safe to pass on), or something unexpected.
      const code = (err as { code?: string }).code;
      const known = code === '57014' || code === '23514';
      if (!known) log({ level: 'error', msg: 'mcp_tool_failed', user_id: claims.sub, error: err instanceof Error ? err.message : String(err) });
      const e = code === '57014'
        ? { code: 'timeout', message: 'The query took too long; try a narrower one' }
        : code === '23514'
        ? { code: 'limit_exceeded', message: (err as Error).message }
        : { code: 'internal_error', message: 'The tool failed unexpectedly; try again' };
      calls.note(id, { error_code: e.code });
      return { isError: true, content: [{ type: 'text', text: e.message }], _meta: { error_code: e.code } };
    }
  }

  server.registerTool('jean_memory', {
    title: 'Context for this conversation',
    description: 'Call at the start of every conversation, and with each new user message, to get what is known '
      + 'about the user: their narrative (a portrait) for a new conversation, otherwise the memories relevant to the message.',
    inputSchema: z.object({
      user_message: z.string().max(USER_MESSAGE_MAX_CHARS).refine((s) => !s.includes('\u0000'), 'user_message must not contain NUL characters')
        .describe('The user\'s message, verbatim'),
      is_new_conversation: z.boolean().describe('True for the first message of a conversation'),
    }),
    outputSchema: jeanMemoryOutput,
    annotations: { readOnlyHint: false, openWorldHint: false },
  }, ({ user_message, is_new_conversation }, ctx) => run(ctx.mcpReq.id, async () => {
    const started = performance.now();
    const r = await orchestrate(claims, user_message, is_new_conversation);
    calls.note(ctx.mcpReq.id, { source: r.source });
    const data = { ...r, timing_ms: Math.round((performance.now() - started) * 10) / 10 };
    return { text: r.context || 'Nothing is known about the user yet.', data };
  }));

  server.registerTool('add_memories', {
    title: 'Remember something',
    description: 'Store a memory for the user: a fact, preference, decision or event worth remembering later.',
    inputSchema: z.object({ text: textInput(MEMORY_MAX_CHARS, 'text').describe('What to remember, 1 to 20000 characters') }),
    outputSchema: addMemoriesOutput,
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  }, ({ text }, ctx) => run(ctx.mcpReq.id, async () => {
    const m = await asMe((tx) => addMemory(tx, text));
    return { text: `Remembered (memory ${m.id}).`, data: { memory: { id: m.id, content: m.content, created_at: iso(m.created_at) } } };
  }));

  server.registerTool('list_memories', {
    title: 'Recent memories',
    description: 'The user\'s memories, newest first.',
    inputSchema: z.object({ limit: limit(100, 20) }),
    outputSchema: listMemoriesOutput,
    annotations: { readOnlyHint: true, openWorldHint: false },
  }, ({ limit }, ctx) => run(ctx.mcpReq.id, async () => {
    const rows = await asMe((tx) => listMemories(tx, limit));
    const memories = rows.map((m) => ({ id: m.id, content: m.content, metadata: m.metadata, created_at: iso(m.created_at) }));
    return { text: JSON.stringify({ memories, count: memories.length }), data: { memories, count: memories.length } };
  }));

  server.registerTool('search_memory', {
    title: 'Search memories',
    description: 'Full-text search over the user\'s memories (any of the words, stemmed), best matches first.',
    inputSchema: z.object({ query: textInput(2_000, 'query').describe('Words to look for'), limit: limit(50, 10) }),
    outputSchema: searchMemoryOutput,
    annotations: { readOnlyHint: true, openWorldHint: false },
  }, ({ query, limit }, ctx) => run(ctx.mcpReq.id, async () => {
    const rows = await asMe((tx) => searchMemories(tx, query, limit));
    const results = rows.map((m) => ({ id: m.id, content: m.content, created_at: iso(m.created_at), rank: m.rank }));
    return { text: JSON.stringify({ results, count: results.length }), data: { results, count: results.length } };
  }));

  // Spend limits, slots and the ledger are shared by every instance, so they live in Postgres
  // (service connection: private). One round trip decides: a spend limit refuses first, and only
  // an admitted call takes a slot.
  const paid: PaidCalls = {
    async admit(seconds) {
      const [{ refused, slot }] = await service<{ refused: string | null; slot: number | null }[]>`
        with l as materialized (select private.spend_limit_reached(${claims.sub}) as reason)
        select l.reason as refused, case when l.reason is null then private.take_llm_slot(${claims.sub}, ${seconds}) end as slot
        from l`;
      if (refused !== null) return { refused };
      if (slot === null) return { refused: 'concurrency_limited' };
      return { release: async () => { await service`select private.release_llm_slot(${claims.sub}, ${slot})`; } };
    },
    // The answer is already paid for: a ledger write that fails is logged, never the user's error.
    async record(u) {
      try {
        await service`select private.record_spend('mcp_answer', ${claims.sub}, null, ${u.requestedModel}, ${u.model}, ${u.calls},
          ${u.promptTokens}, ${u.outputTokens}, ${u.thoughtsTokens}, ${u.cachedTokens}, ${u.totalTokens}, ${u.estimated ?? false})`;
      } catch (err) {
        log({ level: 'error', msg: 'spend_record_failed', user_id: claims.sub, kind: 'mcp_answer',
          error: err instanceof Error ? err.message : String(err) });
      }
    },
  };
  const answering = (spec: AnswerSpec, relevant: number, recent: number) =>
    async (question: string, id: RequestId, signal: AbortSignal) => {
      const found = await asMe((tx) => memoriesFor(tx, question, relevant, recent));
      const a = await answer(spec, question, found.relevant, found.recent, signal, paid);
      calls.note(id, { answer_source: a.source, fallback_reason: a.fallback_reason });
      return { text: a.answer, data: { ...a } };
    };
  const ask = answering(ASK, 10, 5);
  const deep = answering(DEEP, 40, 20);

  server.registerTool('ask_memory', {
    title: 'Ask about the user',
    description: 'A quick answer (within about 3 seconds) to a question about the user, from their most relevant memories.',
    inputSchema: z.object({ question: textInput(2_000, 'question').describe('The question') }),
    outputSchema: answerOutput,
    annotations: { readOnlyHint: true, openWorldHint: false },
  }, ({ question }, ctx) => run(ctx.mcpReq.id, () => ask(question, ctx.mcpReq.id, ctx.mcpReq.signal)));

  server.registerTool('deep_memory_query', {
    title: 'Deep question about the user',
    description: 'A longer synthesis (up to about 10 seconds) over many of the user\'s memories, relevant and recent. '
      + 'For broad questions; prefer ask_memory for quick facts.',
    inputSchema: z.object({ search_query: textInput(2_000, 'search_query').describe('The question or topic') }),
    outputSchema: answerOutput,
    annotations: { readOnlyHint: true, openWorldHint: false },
  }, ({ search_query }, ctx) => run(ctx.mcpReq.id, () => deep(search_query, ctx.mcpReq.id, ctx.mcpReq.signal)));

  server.registerTool('get_narrative', {
    title: 'The user\'s narrative',
    description: 'The user\'s narrative (who they are, current work, how to interact with them, recurring themes) with '
      + 'its version and freshness; when there is none to serve yet, why (queued, running, failed or ineligible).',
    outputSchema: narrativeStateOutput,
    annotations: { readOnlyHint: false, openWorldHint: false },
  }, (ctx) => run(ctx.mcpReq.id, async () => {
    const state = await narrativeState(claims);
    return { text: narrativeMarkdown(state), data: { ...state } };
  }));

  server.registerTool('get_memory', {
    title: 'Open a memory',
    description: 'One of the user\'s memories by id: opens a citation (a narrative claim\'s memory_ids).',
    inputSchema: z.object({ id: z.string().uuid().describe('The memory id, as cited in a claim\'s memory_ids') }),
    outputSchema: getMemoryOutput,
    annotations: { readOnlyHint: true, openWorldHint: false },
  }, ({ id }, ctx) => run(ctx.mcpReq.id, async () => {
    const m = await asMe((tx) => getMemory(tx, id));
    if (!m) throw new ToolError('not_found', `No memory ${id} of yours`);
    const memory = { id: m.id, content: m.content, state: m.state, created_at: iso(m.created_at), updated_at: iso(m.updated_at) };
    return { text: JSON.stringify({ memory }), data: { memory } };
  }));

  server.registerResource('narrative', NARRATIVE_URI, {
    title: 'The user\'s narrative',
    description: 'The signed-in user\'s narrative as markdown (or why there is none yet).',
    mimeType: 'text/markdown',
  }, async (uri) => {
    const state = await narrativeState(claims);
    return { contents: [{ uri: uri.href, mimeType: 'text/markdown', text: narrativeMarkdown(state) }] };
  });

  return server;
}
