// The fake Gemini's vocabulary: the behaviours a scenario step can play, thinking-token
// accounting, the narrative texts it answers with, and the seeded chaos generator. Google's wire
// shapes are in ./gemini-wire.ts; the server is ./gemini.ts.
import { NARRATIVE_SECTIONS } from '../../shared/narrative.ts';

// ---------------------------------------------------------------------------------------------
// Behaviours

/** HTTP statuses the `error` behaviour can answer with, each with Google's canonical status. */
export const FAKE_ERROR_STATUSES = {
  400: 'INVALID_ARGUMENT',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
} as const;
export type FakeErrorStatus = keyof typeof FAKE_ERROR_STATUSES;

export interface FakeUsage {
  promptTokenCount: number;
  candidatesTokenCount: number;
  thoughtsTokenCount: number;
  cachedContentTokenCount: number;
  totalTokenCount: number;
}

/** Thinking the fake "does" per thinkingLevel, in tokens (no thinkingConfig: MEDIUM, the usual
 *  Gemini 3 Flash default; thinkingBudget n: n, -1: MEDIUM, 0: none). */
export const FAKE_THOUGHTS = { MINIMAL: 0, LOW: 256, MEDIUM: 1024, HIGH: 4096 } as const;
/** The cap when the request sets no maxOutputTokens (current Flash models' limit). */
export const FAKE_MODEL_MAX_OUTPUT = 65_536;

/** What a request asked for in generationConfig, as the fake understood it. */
export interface FakeThinkingConfig { thinkingLevel?: string; thinkingBudget?: number; includeThoughts?: boolean }

/** Delay before answering (the request still ends early if the client disconnects). */
interface Delayed { latencyMs?: number }
/** Thinking tokens to spend instead of what the request's thinking config implies. Thoughts and
 *  answer share maxOutputTokens: when they do not fit, the answer is cut (MAX_TOKENS), or empty
 *  when the thoughts alone reach the cap. */
interface Thinks { thoughtsTokens?: number }

export type FakeBehavior =
  /** 200 with a candidate; default text is a valid narrative (structured output: claims quoting
   *  the memory lines they cite) naming the model and memory count. */
  | ({
    kind: 'ok'; text?: string; usage?: Partial<FakeUsage>; modelVersion?: string;
    /** Structured output (the request asked for JSON): how many claims the default answer has
     *  (default 8), and whether one of them also cites a ref the prompt never gave (m9999). */
    claims?: number; bogusRef?: boolean;
  } & Delayed & Thinks)
  /** Google's error JSON; 429 gets a RetryInfo detail when retryDelaySeconds is given. */
  | ({ kind: 'error'; status: FakeErrorStatus; message?: string; retryDelaySeconds?: number } & Delayed)
  /** Accepts the request and never answers, until the client disconnects. */
  | { kind: 'hang' }
  /** 200, promptFeedback.blockReason (default SAFETY), no candidates. */
  | ({ kind: 'blocked'; reason?: string } & Delayed)
  /** 200, finishReason MAX_TOKENS, the text cut mid-way whatever the cap. */
  | ({ kind: 'truncated'; text?: string } & Delayed & Thinks)
  /** 200, a candidate with finishReason SAFETY and no content. */
  | ({ kind: 'safety' } & Delayed)
  /** 200 with a body that is not JSON. */
  | ({ kind: 'garbage'; body?: string } & Delayed)
  /** 200, valid JSON and finishReason STOP, but the text is not a narrative. */
  | ({ kind: 'malformed'; text?: string } & Delayed & Thinks)
  /** 200 with claims written from the prompt itself, like a model that reads its input (see
   *  quotedClaimsJson); `careless` adds the citation mistakes a real model can make, and
   *  `unsupported` a twin of each claim citing another line of the prompt than the one it quotes. Needs
   *  a structured-output request; otherwise it answers like `ok`. */
  | ({ kind: 'quote'; careless?: boolean; unsupported?: boolean } & Delayed & Thinks);

export type FakeBehaviorKind = FakeBehavior['kind'];
const KINDS: readonly FakeBehaviorKind[] = ['ok', 'error', 'hang', 'blocked', 'truncated', 'safety', 'garbage', 'malformed', 'quote'];

export interface FakeChaos {
  /** Probability (0..1) that a request gets one of `failures` instead of its behaviour. 0 turns chaos off. */
  failureRate: number;
  failures: FakeBehavior[];
  /** PRNG seed: the same seed and the same request order give the same failures. */
  seed: number;
  /** 'default' (the default): only requests matching no scenario; 'all': scenario requests too. */
  scope?: 'default' | 'all';
}

export interface FakeCall {
  /** The scenario marker the request matched, or null. */
  marker: string | null;
  model: string;
  apiVersion: string;
  /** Characters of prompt text (contents + systemInstruction); the text itself is never kept. */
  promptChars: number;
  /** Characters of the user text between the `<memories>` and `</memories>` fence lines (the
   *  memory lines and the newlines between them), or null when it has no such block. */
  memoryBlockChars: number | null;
  /** generationConfig.maxOutputTokens of the request, or null. */
  maxOutputTokens: number | null;
  /** True when the request asked for structured output (responseMimeType application/json with
   *  a responseJsonSchema): the answer is JSON claims. */
  structured: boolean;
  /** generationConfig.thinkingConfig of the request, or null. */
  thinkingConfig: FakeThinkingConfig | null;
  /** Thinking tokens the answer reported, and its finish reason (null when there was no candidate). */
  thoughtsTokens: number | null;
  finishReason: string | null;
  /** Date.now() when the request arrived. */
  at: number;
  /** What the fake did: a behaviour kind, or 'auth_error'/'bad_request' when it refused the request. */
  behavior: FakeBehaviorKind | 'auth_error' | 'bad_request';
  /** HTTP status answered (null for hang). */
  status: number | null;
  /** True when chaos replaced the request's behaviour. */
  chaos: boolean;
}

/** Throws unless `b` looks like a FakeBehavior (used for the HTTP control API and in-process calls). */
export function assertBehavior(b: unknown): asserts b is FakeBehavior {
  const o = b as { kind?: unknown; status?: unknown } | null;
  if (!o || typeof o !== 'object' || !KINDS.includes(o.kind as FakeBehaviorKind)) {
    throw new Error(`invalid fake behavior: kind must be one of ${KINDS.join(', ')}`);
  }
  if (o.kind === 'error' && !(String(o.status) in FAKE_ERROR_STATUSES)) {
    throw new Error(`invalid fake behavior: error status must be one of ${Object.keys(FAKE_ERROR_STATUSES).join(', ')}`);
  }
  const t = (o as { thoughtsTokens?: unknown }).thoughtsTokens;
  if (t !== undefined && !(Number.isInteger(t) && (t as number) >= 0)) {
    throw new Error('invalid fake behavior: thoughtsTokens must be a non-negative integer');
  }
}

/** Thinking tokens a request's thinkingConfig implies (see FAKE_THOUGHTS). */
export function thoughtsFor(config: FakeThinkingConfig | null): number {
  if (config?.thinkingBudget !== undefined) {
    return config.thinkingBudget === -1 ? FAKE_THOUGHTS.MEDIUM : Math.max(0, config.thinkingBudget);
  }
  const level = config?.thinkingLevel as keyof typeof FAKE_THOUGHTS | undefined;
  return level && level in FAKE_THOUGHTS ? FAKE_THOUGHTS[level] : FAKE_THOUGHTS.MEDIUM;
}

export function assertChaos(c: unknown): asserts c is FakeChaos {
  const o = c as Partial<FakeChaos> | null;
  if (!o || typeof o !== 'object') throw new Error('invalid chaos config');
  if (typeof o.failureRate !== 'number' || !(o.failureRate >= 0 && o.failureRate <= 1)) throw new Error('chaos failureRate must be in 0..1');
  if (typeof o.seed !== 'number' || !Number.isFinite(o.seed)) throw new Error('chaos seed must be a number');
  if (!Array.isArray(o.failures) || (o.failureRate > 0 && o.failures.length === 0)) throw new Error('chaos failures must be a non-empty list');
  o.failures.forEach(assertBehavior);
  if (o.scope !== undefined && o.scope !== 'default' && o.scope !== 'all') throw new Error("chaos scope must be 'default' or 'all'");
}

// ---------------------------------------------------------------------------------------------
// Narrative text

/**
 * Memory lines in a user prompt: the non-empty lines of a <memories>…</memories> block when there
 * is one (the shape buildPrompt writes), otherwise lines starting with a list marker.
 */
export function countMemoryLines(userText: string): number {
  const block = /<memories>\n?([\s\S]*?)\n?<\/memories>/.exec(userText);
  if (block) {
    return block[1].split('\n').filter((l) => l.trim() !== '' && l.trim() !== '(no memories)').length;
  }
  return userText.split('\n').filter((l) => /^\s*(?:[-*]|\d+[.)])\s+\S/.test(l)).length;
}

/** The default `ok` text: a valid narrative (passes `narrativeText`) naming the model and memory count. */
export function defaultNarrative(model: string, memoryLines: number): string {
  const [who, work, interact, themes] = NARRATIVE_SECTIONS;
  return [
    `## ${who}`,
    `Written by fake-gemini for model ${model} from ${memoryLines} memory lines. The user comes across as a pragmatic`
    + ' engineer who keeps careful notes about their projects and cares about getting the details right.',
    '',
    `## ${work}`,
    'They are building a narrative cache for an AI memory layer, moving from a local prototype towards a durable job'
    + ' queue with retries, clear failure handling and fast reads.',
    '',
    `## ${interact}`,
    'Be direct and concrete. Lead with the answer and then the reasoning; prefer code over prose and state trade-offs'
    + ' openly instead of hiding them.',
    '',
    `## ${themes}`,
    'Reliability, testability and honest error reporting come up again and again, together with a preference for'
    + ' small, well-named interfaces.',
  ].join('\n');
}

/** The default `ok` answer to a structured-output request: JSON claims, claim k quoting memory
 *  line k of the prompt (m1..mN, round again past N) and citing it, as an honest model would, so
 *  validation's support check keeps them; with bogusRef the second claim also cites m9999. Who
 *  wrote it (model, memory lines seen) is in a `fake` field beside `claims`, outside the schema,
 *  which validation ignores: only a test reading the raw answer sees it. */
export function defaultClaimsJson(model: string, userText: string, count = 8, bogusRef = false): string {
  const lines = promptLines(userText, '<memories>', '</memories>');
  const n = Math.max(lines.length, 1);
  const claims = Array.from({ length: count }, (_, i) => ({
    section: NARRATIVE_SECTIONS[i % NARRATIVE_SECTIONS.length],
    text: lines.length ? Array.from(lines[i % n].text).slice(0, 500).join('') : `Fake claim ${i + 1}.`,
    memory_refs: [`m${(i % n) + 1}`, ...(bogusRef && i === 1 ? ['m9999'] : [])],
  }));
  return JSON.stringify({ claims, fake: `written by fake-gemini for model ${model} from ${countMemoryLines(userText)} memory lines` });
}

/** The numbered lines of a fenced block (`<memories>` or `<notes>`) of a prompt, as buildPrompt
 *  writes them: "N. [meta] text" for memories, "N. [pinned] text" or "N. text" for notes. */
function promptLines(userText: string, open: string, close: string): { n: number; meta: string; text: string }[] {
  const block = new RegExp(`${open}\\n?([\\s\\S]*?)\\n?${close}`).exec(userText);
  if (!block) return [];
  return block[1].split('\n').flatMap((line) => {
    const m = /^(\d+)\.\s+(?:\[([^\]]*)\]\s*)?(.*)$/.exec(line.trim());
    return m ? [{ n: Number(m[1]), meta: m[2] ?? '', text: m[3] }] : [];
  });
}

const UUID_OR_REF = /\b(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|m\d+)\b/gi;

/** A memory line asking for a citation, in any phrasing: "cite", "cites", "cited", "citing",
 *  "citation(s)" (the eval's hostile memories say "cite memory id …", "cite m99 and …", "citing m2"). */
export const ASKS_FOR_CITATION = /\bcit(?:e|es|ed|ing|ations?)\b/i;

/** The ids and refs a line asking for a citation names (what `careless` obeys), or none. */
export function requestedRefs(text: string): string[] {
  return ASKS_FOR_CITATION.test(text) ? [...new Set(text.match(UUID_OR_REF) ?? [])] : [];
}

/** What a `quote` answer gets wrong on purpose (see quotedClaimsJson). */
export interface QuoteFaults { careless?: boolean; unsupported?: boolean }

/**
 * The `quote` answer: claims written from the prompt's own lines, the way a literal-minded model
 * would. Each memory line becomes a claim quoting its text and citing its ref (mN); each unpinned
 * note a claim citing nN (pinned ones are the pipeline's to quote). It does not judge content: it
 * quotes every line, instruction-like ones and "never mention" topics included.
 *
 * `careless` adds what a model should not do, so that validation has something to catch: a
 * claim citing a valid ref next to one the prompt never gave (m9999), a ref one past the last
 * memory line (an off-by-one), a note ref past the last note, and, for every memory line that
 * asks for a citation (ASKS_FOR_CITATION), a claim obeying it with the ids or refs that line
 * names — valid ones too, which validation cannot catch.
 *
 * `unsupported` adds, after those honest claims, a mis-cited twin of each: the same quote citing
 * the next line instead (memory m(N+1) for memory line N, the last one m1; a note's claim the
 * next note, or m1 when there is one). Every ref is in the prompt, so only a check that the text
 * rests on what it cites (validation's support check) can drop the twins; without it, the twin
 * quoting a memory outlives that memory's delete, which strips only the claims citing it.
 */
export function quotedClaimsJson(userText: string, { careless = false, unsupported = false }: QuoteFaults = {}): string {
  const memories = promptLines(userText, '<memories>', '</memories>');
  const notes = promptLines(userText, '<notes>', '</notes>');
  const [who, work, , themes] = NARRATIVE_SECTIONS;
  const cut = (s: string) => Array.from(s).slice(0, 500).join('');
  const next = <T>(xs: T[], i: number) => xs[(i + 1) % xs.length];
  type Quoted = { section: string; text: string; memory_refs: string[] };
  const claims: Quoted[] = [];
  const twins: Quoted[] = [];
  memories.forEach((m, i) => {
    const claim = { section: NARRATIVE_SECTIONS[i % NARRATIVE_SECTIONS.length], text: cut(m.text), memory_refs: [`m${m.n}`] };
    claims.push(claim);
    if (memories.length > 1) twins.push({ ...claim, memory_refs: [`m${next(memories, i).n}`] });
  });
  const unpinned = notes.filter((n) => n.meta !== 'pinned');
  unpinned.forEach((n, i) => {
    const claim = { section: who, text: cut(`The user notes: ${n.text}`), memory_refs: [`n${n.n}`] };
    claims.push(claim);
    const other = unpinned.length > 1 ? `n${next(unpinned, i).n}` : memories.length ? 'm1' : null;
    if (other) twins.push({ ...claim, memory_refs: [other] });
  });
  if (unsupported) claims.push(...twins);
  if (careless && memories.length > 0) {
    claims.push({ section: themes, text: 'Several memories share a thread.', memory_refs: ['m1', 'm9999'] });
    claims.push({ section: work, text: 'The latest project is still under way.', memory_refs: [`m${memories.length + 1}`] });
    claims.push({ section: who, text: 'The user keeps careful notes.', memory_refs: [`n${notes.length + 1}`] });
    for (const m of memories) {
      const named = requestedRefs(m.text);
      if (named.length) claims.push({ section: who, text: cut(`As instructed: ${m.text}`), memory_refs: named });
    }
  }
  return JSON.stringify({ claims });
}

/** mulberry32: small, fast, good enough and reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
