// Does a claim's text rest on what it cites? A ref being in the prompt says nothing about it: a
// model can cite a real memory for a statement about something else, and since a delete strips
// the claims CITING the deleted memory, such a claim would keep the deleted fact's words after
// its delete. So validation (acceptClaims, generate-narrative) drops every claim this check does
// not pass, at private.settings.claim_support_min; `npm run eval` scores what was served with it.
// Pure, deterministic, no imports: the functions (Deno) and Node share this one definition.
//
// The check is word overlap, a heuristic: a claim is supported when at least `min` of its content
// words are in its evidence (and at least one is). Evidence: the cited memories as the prompt
// showed them (date and text) and the cited notes. Content words: letters or digits, lowercased,
// without function words, without the framing a writer adds around a fact ("the user", "they ask
// to be called", "recurring term", "N memories"), without small counts; longer words compared by
// their first STEM_CHARS letters, so "diabetic" meets "diabetes" and "engineer" "engineering".
// What it cannot see: synonyms ("brief" for "short") and generalisations ("enjoys music" for
// "plays the cello") score low and are dropped; a claim that blends a cited memory with an
// uncited one passes when enough of its words are cited.
//
// Calibrated on the fixed users of the eval (shared/support.test.ts, 2026-12-07): every claim of
// the local writer scores 1.00, of the honest `quote` fake at least 0.67 (a quoted note behind
// "The user notes:"), hand-written paraphrases of the fixture memories, as a model words them,
// at least 0.40 ("Keep answers brief and illustrate with SQL." for "Prefers short answers with
// SQL examples over long explanations."); the `unsupported` fake's mis-cited twins at most 0.17.
// The default, 0.35, keeps every paraphrase with room and sits 0.18 above the mis-citations.

/** private.settings.claim_support_min's default (tests/sql-contract.test.ts checks they agree). */
export const CLAIM_SUPPORT_MIN_DEFAULT = 0.35;
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

/** A content word in the form overlap compares: lowercase, possessive gone, an inflection ending
 *  (-ing, -ed, -s but not -ss) taken off when three letters stay, then a final -e, long words cut
 *  to a stem: "lives", "lived" and "live" meet, "uses" and "use", "classes" and "class". */
function stem(word: string): string {
  const w = word.toLowerCase().replace(/['’]s$/, '');
  if (/^\d/.test(w)) return w;
  const base = w.replace(/^(.{3,}?)(?:ing|ed|(?<!s)s)$/u, '$1').replace(/^(.{3,})e$/u, '$1');
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

/** How far `evidence` (the cited memories' and notes' texts) supports the claim's text, and
 *  whether that reaches `min` (a share, 0..1; with 0 any shared content word is enough). */
export function support(claimText: string, evidence: readonly string[], min: number): Support {
  const claim = contentWords(claimText);
  const have = new Set(evidence.flatMap((e) => [...contentWords(e)]));
  const matched = [...claim].filter((w) => have.has(w)).length;
  const score = claim.size === 0 ? 0 : matched / claim.size;
  return { score, words: claim.size, matched, supported: matched > 0 && score >= min };
}
