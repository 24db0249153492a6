// Does a claim's text rest on what it cites? Validation (acceptClaims) only knows that a cited
// ref was in the prompt; a model can cite a real memory for a statement about something else.
// This is the eval's offline check for that: word overlap between the claim and its evidence
// (the cited memories as the prompt showed them — text and date — and the cited notes). Pure,
// deterministic, no stack. With GEMINI_API_KEY the eval adds an LLM judge (./judge.ts).
//
// A claim is supported when at least SUPPORT_THRESHOLD of its content words are in its evidence
// (and at least one is). Content words: letters or digits, lowercased, without function words,
// without the framing a writer adds around a fact ("the user", "they ask to be called",
// "recurring term", "N memories"), without small counts; longer words compared by their first
// STEM_CHARS letters, so "diabetic" meets "diabetes" and "engineer" "engineering".
// Calibrated on the fixed users' prompts (scripts/eval/support.test.ts, 2026-12-07): every claim
// of the local writer scores 1.00 and of the honest `quote` fake at least 0.67 (a quoted note
// behind "The user notes:"); the `unsupported` fake's claims score at most 0.20. 0.5 sits between
// with room on both sides; a paraphrasing model keeps the names and nouns it rests on.

export const SUPPORT_THRESHOLD = 0.5;
const STEM_CHARS = 6;

/** Function words and the framing writers put around a fact: not evidence of anything. */
const STOPWORDS = new Set((
  // function words
  'a an the and or but nor so yet if then than that this these those there here of in on at to for from by with without '
  + 'into onto over under about above below after before during since until while as per via up down out off again '
  + 'is are was were be been being am do does did doing done have has had having will would shall should can could '
  + 'may might must not no yes it its it\'s they them their theirs themselves they\'re they\'ve they\'d they\'ll he she '
  + 'him her his hers i me my mine myself i\'m i\'ve we us our you your what which who whom whose when where why how '
  + 'all any both each every few more most other some such only own same too very just also still even ever now '
  + 'one ones like get gets got make makes made lot lots thing things really well much many '
  // framing: how a writer talks about the user and the memories, not what the memories say
  + 'user users person someone memory memories claim claims mention mentions mentioned '
  + 'ask asks asked says said say tells told writes wrote describes described '
  + 'recurring term terms considered run runs instructed'
).split(' '));

/** A content word in the form overlap compares: lowercase, possessive gone, long words cut to a stem. */
function stem(word: string): string {
  const w = word.toLowerCase().replace(/['’]s$/, '');
  if (/^\d/.test(w)) return w;
  const base = w.length > 4 ? w.replace(/(?:ing|ed|es|s)$/, '') : w;
  return Array.from(base).slice(0, STEM_CHARS).join('');
}

/** The content words of a text, stemmed, each once. Dates (2026-05-01) stay whole; counts of one
 *  or two digits ("3 memories", "type 1") are not content. */
export function contentWords(text: string): Set<string> {
  const out = new Set<string>();
  for (const raw of text.match(/\d{4}-\d{2}-\d{2}|[\p{L}\p{N}]+(?:['’][\p{L}]+)?/gu) ?? []) {
    const lower = raw.toLowerCase();
    if (STOPWORDS.has(lower) || STOPWORDS.has(lower.replace(/['’]s$/, ''))) continue;
    if (/^\d{1,2}$/.test(lower)) continue;
    if (!/\d/.test(lower) && Array.from(lower).length < 3) continue;
    out.add(stem(lower));
  }
  return out;
}

export interface Support {
  /** Share of the claim's content words found in its evidence (0 when it has none). */
  score: number;
  /** The claim's content words, and those the evidence has. */
  words: number;
  matched: number;
  supported: boolean;
}

/** How far `evidence` (the cited memories' and notes' texts) supports the claim's text. */
export function support(claimText: string, evidence: readonly string[]): Support {
  const claim = contentWords(claimText);
  const have = new Set(evidence.flatMap((e) => [...contentWords(e)]));
  const matched = [...claim].filter((w) => have.has(w)).length;
  const score = claim.size === 0 ? 0 : matched / claim.size;
  return { score, words: claim.size, matched, supported: matched > 0 && score >= SUPPORT_THRESHOLD };
}
