// The offline narrative writer: used when no Gemini key is configured. Deterministic (same input,
// byte-identical output), no network and no Deno globals, so Node tests import it too. It only
// rearranges what the memories say, with simple heuristics, and says so when it finds nothing.
import { CLAIM_MAX_CHARS, NARRATIVE_SECTIONS } from '../../../../shared/narrative.ts';
import { memoryRef, noteRef } from '../narrative/prompt.ts';
import { type GenerationResult, type NarrativeInput, type NarrativeProvider, type PromptMemory, ProviderError } from './types.ts';

const MAX_ITEM_CHARS = 140;
const SCAN_CHARS = 4_000; // per memory, for theme counting

/** Memories matching any of these are skipped entirely: they may hold credentials. */
const SECRET_PATTERNS = [
  /\b(?:sk|pk|rk)[-_](?:live|test|proj)?[-_]?[A-Za-z0-9_-]{12,}/i, // Stripe/OpenAI-style keys
  /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/, // AWS access keys
  /\bgh[pousr]_[A-Za-z0-9]{20,}/, // GitHub tokens
  /\bxox[abprs]-[A-Za-z0-9-]{10,}/, // Slack tokens
  /\bAIza[0-9A-Za-z_-]{30,}/, // Google API keys
  /\beyJ[\w-]{8,}\.[\w-]{8,}/, // JWTs
  /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
  /\b(?:api[\s_-]?key|secret|access[\s_-]?token|auth[\s_-]?token|token|password|passwd|passphrase|pwd|pin)\b\s*(?:is|[:=])\s*\S+/i,
];
/** Long runs of letters and digits mixed (keys, hashes, tokens without a known prefix). */
const randomLooking = (s: string) => (s.match(/[A-Za-z0-9_-]{32,}/g) ?? []).some((w) => /\d/.test(w) && /[A-Za-z]/.test(w));
/** Instruction-like text (prompt injection) is data, but the portrait has no reason to repeat it. */
const INJECTION = /\b(?:ignore|disregard|forget)\b.{0,30}\b(?:instructions|prompt|rules)\b|^\s*(?:system|assistant|developer)\s*:/im;
const SELF = /\b(?:I am|I'm|I’m|my name|I work|I live|I've been|I’ve been|I was born|I grew up|I study)\b/i;
const PREFERENCE = /\b(?:prefers?|likes?|love|hate|dislikes?|don't|don’t|do not|please|always|never|avoid|rather)\b/i;
const WORK = /\b(?:work(?:ing)?|build(?:ing)?|project|job|team|startup|company|learning|studying|writing|research(?:ing)?|launch(?:ing)?|migrat(?:e|ing)|ship(?:ping)?|develop(?:ing)?)\b/i;
const STOPWORDS = new Set(
  ('the and for are but not you all any can had her was one our out has him his how its may new now old see two who did get '
    + 'let put say she too use that with have this will your from they them their then than what when where which while about '
    + 'into over also just like some more most much many very really would could should there here been being were does doing '
    + 'done make made want wants prefer prefers preferred thing things stuff lot lots because every each other such only own same '
    + 'don doesn didn isn aren wasn won can cannot always never please user users memory memories after before again using used '
    + 'via etc yes yeah okay sure well still even ever these those myself mine me my i\'m am is it as at be by do go if in no of on or so to up we an a').split(' '),
);

interface Item { text: string; time: number; importance: number; index: number }

const isSecret = (s: string) => SECRET_PATTERNS.some((re) => re.test(s)) || randomLooking(s);

/** Inline, heading-free text: whitespace collapsed, leading markdown marks removed. */
function clean(s: string): string {
  return s.slice(0, SCAN_CHARS).replace(/[\s\u0085]+/g, ' ').trim().replace(/^[#>*\-+\s]+/, '');
}

/** First clause of a memory, at most MAX_ITEM_CHARS characters (code points, never a split emoji). */
function summarise(s: string): string {
  const first = (clean(s).split(/(?<=[.!?;])\s+|\s+[–—]\s+/)[0] ?? '').replace(/[\s,;:]+$/, '');
  const chars = Array.from(first);
  if (chars.length <= MAX_ITEM_CHARS) return first;
  const cut = chars.slice(0, MAX_ITEM_CHARS - 1).join('');
  const space = cut.lastIndexOf(' ');
  return (space > 60 ? cut.slice(0, space) : cut).replace(/[\s,;:]+$/, '') + '…';
}

/** "I work on X, my team…" → "They work on X, their team…": simple first-to-third person. */
function thirdPerson(s: string): string {
  const map: Record<string, string> = {
    'i am': 'they are', "i'm": "they're", 'i’m': 'they’re', 'i was': 'they were', "i've": "they've", 'i’ve': 'they’ve',
    "i'd": "they'd", "i'll": "they'll", i: 'they', me: 'them', my: 'their', mine: 'theirs', myself: 'themselves',
  };
  const out = s.replace(/\b(?:I am|I'm|I’m|I was|I've|I’ve|I'd|I'll|I|me|my|mine|myself)\b/gi, (w) =>
    w === 'i' ? w : map[w.toLowerCase()] ?? w); // a lowercase lone "i" is left alone
  return out.charAt(0).toUpperCase() + out.slice(1);
}

const sentence = (s: string) => `${s}${/[.!?…]$/.test(s) ? '' : '.'}`;
const byImportanceThenOldest = (a: Item, b: Item) => b.importance - a.importance || a.time - b.time || a.index - b.index;
const byNewest = (a: Item, b: Item) => b.time - a.time || a.index - b.index;
const day = (t: number) => new Date(t).toISOString().slice(0, 10);

/** Up to n distinct summaries from items in the given order, each with the item it quotes. */
function pick(items: Item[], n: number): { line: string; item: Item }[] {
  const seen = new Set<string>();
  const out: { line: string; item: Item }[] = [];
  for (const it of items) {
    const line = thirdPerson(summarise(it.text));
    const key = line.toLowerCase();
    if (!/[\p{L}\p{N}\p{Extended_Pictographic}]/u.test(line) || seen.has(key)) continue;
    seen.add(key);
    out.push({ line: sentence(line), item: it });
    if (out.length === n) break;
  }
  return out;
}

/** Words and two-word phrases by the number of memories that mention them (first-seen casing
 *  kept), with the memories that do. */
function themes(items: Item[]): { term: string; count: number; items: Item[] }[] {
  const counts = new Map<string, { term: string; count: number; items: Item[] }>();
  for (const it of items) {
    const words = clean(it.text).match(/\p{L}[\p{L}\p{N}]*(?:\+\+|#)?/gu) ?? [];
    const seen = new Set<string>();
    words.forEach((w, i) => {
      const terms = [w];
      const next = words[i + 1];
      if (next) terms.push(`${w} ${next}`);
      for (const term of terms) {
        const parts = term.toLowerCase().split(' ');
        if (parts.some((p) => Array.from(p).length < 3 || STOPWORDS.has(p))) continue;
        const key = parts.join(' ');
        if (seen.has(key)) continue;
        seen.add(key);
        const entry = counts.get(key) ?? counts.set(key, { term, count: 0, items: [] }).get(key)!;
        entry.count++;
        entry.items.push(it);
      }
    });
  }
  const ranked = [...counts.values()].sort((a, b) => b.count - a.count || (a.term < b.term ? -1 : a.term > b.term ? 1 : 0));
  // A phrase that is as frequent as its words says more than the words alone.
  const phrases = ranked.filter((t) => t.term.includes(' ') && t.count >= 2).slice(0, 3);
  const words = ranked.filter((t) => !t.term.includes(' ')).slice(0, 8 - phrases.length);
  return [...phrases, ...words].sort((a, b) => b.count - a.count);
}

/** "never mention X" / "don't mention X" / "do not mention X": the topic X. */
const NEVER_MENTION = /\b(?:never|don't|don’t|do not|dont)\s+(?:ever\s+)?(?:mention|bring up|talk about|write about)\s+(?:my\s+|the\s+|that\s+)?(.+?)[\s.!]*$/i;
/** "call me NAME": the name (up to three words). */
const CALL_ME = /\b(?:call me|my name is)\s+([\p{L}][\p{L}'’-]*(?:\s+[\p{L}][\p{L}'’-]*){0,2})/iu;

/** What the local writer takes from the notes: topics to leave out, a name, and the other
 *  unpinned notes as statements (pinned ones are quoted verbatim by generate-narrative). */
function readNotes(input: NarrativeInput) {
  const avoid: string[] = [];
  const names: { text: string; ref: string }[] = [];
  const statements: { text: string; ref: string }[] = [];
  (input.notes ?? []).forEach((n, i) => {
    const text = clean(n.content);
    const never = NEVER_MENTION.exec(text);
    const call = CALL_ME.exec(text);
    if (never) avoid.push(never[1].toLowerCase());
    else if (call) names.push({ text: call[1], ref: noteRef(i) });
    else if (!n.pinned && text) statements.push({ text, ref: noteRef(i) });
  });
  // The latest "call me" wins (notes are oldest first).
  const name = names.at(-1) ?? null;
  const mentionsAvoided = (s: string) => avoid.some((a) => s.toLowerCase().includes(a));
  return { name, statements, mentionsAvoided };
}

/** A claim as the local writer emits it: the prompt's refs of the memories it quotes. */
export interface LocalClaim { section: (typeof NARRATIVE_SECTIONS)[number]; text: string; memory_refs: string[] }

const MAX_THEME_REFS = 10;

/** The claims of a narrative, each citing the memories it quotes (by prompt ref). Sections with
 *  nothing to cite get no claims (the renderer says "Not enough information yet."). */
export function writeLocalClaims(input: NarrativeInput): LocalClaim[] {
  const notes = readNotes(input);
  const items: Item[] = input.memories
    .map((m: PromptMemory, index) => {
      const t = Date.parse(m.created_at);
      return { text: m.content, time: Number.isFinite(t) ? t : 0, importance: Number.isFinite(m.importance) ? m.importance! : 0.5, index };
    })
    .filter((it) => clean(it.text) !== '' && !isSecret(it.text) && !INJECTION.test(it.text) && !notes.mentionsAvoided(it.text));
  const newest = [...items].sort(byNewest);
  const [whoS, workS, interactS, themesS] = NARRATIVE_SECTIONS;
  const claims: LocalClaim[] = [];
  const quote = (section: LocalClaim['section'], picked: { line: string; item: Item }[]) =>
    picked.forEach((p) => claims.push({ section, text: Array.from(p.line).slice(0, CLAIM_MAX_CHARS).join(''), memory_refs: [memoryRef(p.item.index)] }));

  // Notes outrank memories: the name the user asked for and their own statements come first.
  if (notes.name) claims.push({ section: whoS, text: `They ask to be called ${notes.name.text}.`, memory_refs: [notes.name.ref] });
  for (const n of notes.statements) {
    if (notes.mentionsAvoided(n.text)) continue;
    claims.push({ section: whoS, text: sentence(thirdPerson(Array.from(n.text).slice(0, CLAIM_MAX_CHARS - 1).join(''))), memory_refs: [n.ref] });
  }
  quote(whoS, pick(items.filter((it) => SELF.test(it.text)).sort(byImportanceThenOldest), 3));

  const recentWork = newest.slice(0, 20).filter((it) => WORK.test(it.text));
  const work = pick([...recentWork, ...newest.filter((it) => !PREFERENCE.test(it.text))], 3);
  quote(workS, work);
  const dated = newest.filter((it) => it.time > 0);
  if (work.length && dated.length > 1) {
    const [last, first] = [dated[0], dated[dated.length - 1]];
    claims.push({
      section: workS, text: `The memories considered run from ${day(first.time)} to ${day(last.time)}.`,
      memory_refs: [memoryRef(first.index), memoryRef(last.index)],
    });
  }

  quote(interactS, pick(items.filter((it) => PREFERENCE.test(it.text)).sort(byImportanceThenOldest), 4));

  for (const t of themes(items).filter((x) => x.count >= 2)) {
    claims.push({
      section: themesS, text: `Recurring term: ${t.term} (${t.count} memories).`,
      memory_refs: t.items.slice(0, MAX_THEME_REFS).map((it) => memoryRef(it.index)),
    });
  }
  return claims;
}

export class LocalProvider implements NarrativeProvider {
  readonly name = 'local' as const;
  readonly model = 'local-narrative-v1';

  /** One model for every lane (the lane argument only picks among Gemini models). */
  generate(input: NarrativeInput, signal: AbortSignal): Promise<GenerationResult> {
    if (signal.aborted) return Promise.reject(new ProviderError('timeout', 'local narrative generation was aborted', true));
    const text = JSON.stringify({ claims: writeLocalClaims(input) });
    const promptChars = input.memories.reduce((sum, m) => sum + m.content.length, 0);
    const promptTokens = Math.ceil(promptChars / 4);
    const outputTokens = Math.ceil(text.length / 4);
    return Promise.resolve({
      text,
      finishReason: 'STOP',
      requestedModel: this.model,
      model: this.model,
      calls: 0, // no provider was called: nothing for the spend ledger
      promptTokens,
      outputTokens,
      thoughtsTokens: null,
      cachedTokens: null,
      totalTokens: promptTokens + outputTokens,
    });
  }
}
