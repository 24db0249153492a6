// Cache-hit users shaped like production ones, for the bench and the soak: real-sounding memories
// of a few hundred characters, two notes (one pinned), and a stored narrative as complete_job
// leaves it: 16 claims over the four sections, each citing two of that user's memories (one also
// a note), the pinned note quoted first under "Pinned by you", narrative_content rendered from
// them by the one renderer (shared/narrative.ts), cited_memory_ids filled. A hit then reads and
// sends what production sends (some 4–5 KB of markdown and 8 KB of claims), not an empty list.
import type postgres from 'postgres';
import { NARRATIVE_SECTIONS, PINNED_SECTION, renderClaims, type NarrativeClaim } from '../../shared/narrative.ts';

type Db = postgres.Sql | postgres.TransactionSql;

const ROLES = ['backend engineer', 'data engineer', 'product designer', 'site reliability engineer', 'engineering manager'];
const EMPLOYERS = ['Globex', 'Initech', 'Umbrella Health', 'Stark Logistics', 'Wayne Analytics', 'Hooli'];
const CITIES = ['Lisbon', 'Berlin', 'Kyoto', 'Toronto', 'Nairobi', 'Porto', 'Oslo'];
const LANGS = ['TypeScript', 'Rust', 'Go', 'Python', 'Kotlin'];
const HOBBIES = ['bouldering', 'sourdough baking', 'trail running', 'the cello', 'chess', 'film photography'];
const PETS = ['a greyhound called Biscuit', 'two cats, Nori and Miso', 'a border collie named Pixel', 'an old beagle called Waffles'];
const NAMES = ['Sam', 'Alex', 'Jo', 'Kit', 'Robin', 'Max', 'Dani'];
const TRIPS = ['northern Portugal', 'Hokkaido', 'the Scottish Highlands', 'Patagonia', 'Sicily'];

interface Slots { role: string; employer: string; city: string; lang: string; hobby: string; pet: string; name: string; trip: string; old: string }

const pick = <T>(xs: readonly T[], i: number) => xs[i % xs.length];
function slots(i: number): Slots {
  return {
    role: pick(ROLES, i), employer: pick(EMPLOYERS, i), city: pick(CITIES, i * 3), lang: pick(LANGS, i * 7), hobby: pick(HOBBIES, i * 5),
    pet: pick(PETS, i), name: pick(NAMES, i * 11), trip: pick(TRIPS, i * 13), old: pick(EMPLOYERS, i + 3),
  };
}

/** A topic: two memories the user wrote and the two sentences a writer makes of them. */
type Topic = (s: Slots) => [memoryA: string, memoryB: string, claimA: string, claimB: string];

// Four topics per section, in NARRATIVE_SECTIONS order.
const TOPICS: Topic[] = [
  (s) => [`I work as a ${s.role} at ${s.employer}; most of my week goes into the billing pipeline migration, and my director prefers short written updates to meetings.`,
    `Since the reorg in March I also lead the on-call rotation for payments at ${s.employer}, six people, one week in six each.`,
    `They work as a ${s.role} at ${s.employer}, where most of their week goes into the billing pipeline migration.`,
    'Since a reorg in March they also lead the payments on-call rotation of six people, and their director prefers short written updates to meetings.'],
  (s) => [`Moved to ${s.city} last spring with my partner ${s.name}. Still learning enough of the language to order at the bakery without pointing.`,
    `${s.name} and I are looking at flats in ${s.city} with a spare room, because we both work from home two days a week.`,
    `They moved to ${s.city} last spring with their partner ${s.name} and are still learning the local language.`,
    'The two of them are looking for a flat with a spare room, since both work from home two days a week.'],
  (s) => [`We have ${s.pet}, who needs a long walk before work; any plan for my mornings has to leave forty minutes for that.`,
    'I am mostly vegetarian and allergic to shellfish, so recipes should skip prawns and go easy on the meat.',
    `They have ${s.pet}, and every morning starts with a forty-minute walk before work.`,
    'They are mostly vegetarian and allergic to shellfish: recipes without prawns, light on meat.'],
  (s) => [`My daughter starts primary school in September; mornings are chaos, so I keep 8 to 9 free in my calendar for the school run.`,
    `I left ${s.old} in May after four years there; the commute was ninety minutes each way and I do not miss it.`,
    'Their daughter starts primary school in September, so they keep 8 to 9 in the morning free for the school run.',
    `They left ${s.old} in May after four years, glad to be rid of a ninety-minute commute.`],
  (s) => [`At ${s.employer} we are splitting the monolith into services; I am writing the Postgres migration plan with a rollback step for every table.`,
    'The first two services went live last week behind a feature flag; error rates are flat and p95 latency dropped from 180 to 120 ms.',
    'They are splitting a monolith into services and writing the Postgres migration plan, with a rollback step for every table.',
    'The first two services went live behind a feature flag last week, with flat error rates and p95 latency down from 180 to 120 ms.'],
  (s) => [`I am preparing a talk for a ${s.city} meetup about durable job queues in Postgres: retries, leases, and why fire-and-forget tasks fail silently.`,
    'The talk is on the 14th of next month, thirty minutes plus questions; I still need a live demo that survives a killed worker.',
    `They are preparing a meetup talk in ${s.city} on durable job queues in Postgres: retries, leases, and silent fire-and-forget failures.`,
    'The thirty-minute talk is next month, and they still need a live demo that survives a killed worker.'],
  (s) => [`I want to move from ${s.lang} services into platform work within a year, ideally owning the deployment tooling.`,
    'My manager agreed to a quarterly goal: I run the next two production incident reviews and write the follow-up actions.',
    `They want to move from ${s.lang} services into platform work within a year, ideally owning the deployment tooling.`,
    'Their quarterly goal, agreed with their manager, is to run the next two incident reviews and write the follow-up actions.'],
  () => ['I mentor two junior engineers on Thursdays; we go through their code reviews and I try to ask questions instead of giving answers.',
    'One of my mentees shipped her first database migration on her own this week, with a rollback plan she wrote herself.',
    'They mentor two junior engineers on Thursdays, working through code reviews by asking questions rather than handing out answers.',
    'One mentee recently shipped her first database migration alone, rollback plan included.'],
  (s) => [`I prefer short answers with code examples in ${s.lang} over long explanations; state a trade-off in one line and move on.`,
    'Please do not pad answers with summaries of what you are about to say; lead with the answer, then the reasoning if I ask.',
    `They prefer short answers with ${s.lang} examples over long explanations, with trade-offs stated in one line.`,
    'Lead with the answer and skip the preamble; give the reasoning when they ask for it.'],
  (s) => [`Call me ${s.name} in chat; I only use my full name on contracts, and I find it odd when tools use it.`,
    'I am dyslexic, so bullet points and short paragraphs help a lot more than walls of text, especially late in the day.',
    `Address them as ${s.name}; their full name is only for contracts.`,
    'They are dyslexic: bullet points and short paragraphs work better than long blocks of text.'],
  () => ['When I ask for a review, be blunt about bugs and risks; I would rather hear it from you than from production at 3 am.',
    'I dislike being told something is easy. If it is, just show me; if it is not, say where it gets hard.',
    'In reviews they want bluntness about bugs and risks, before production finds them.',
    'Never call a task easy: show the solution, or say where it gets hard.'],
  () => ['I get migraines when I sleep less than six hours, so I stop screens by 11 pm and keep my first meeting after 9:30.',
    'Evenings after 8 pm are family time; anything scheduled then needs a very good reason.',
    'They protect their sleep: screens off by 11 pm and no meetings before 9:30, since short nights bring migraines.',
    'Evenings after 8 pm are family time and stay unscheduled unless it really matters.'],
  (s) => [`Weekend hobby: ${s.hobby}. I am a beginner and like concrete drills and progress I can measure more than theory.`,
    `Signed up for a ${s.hobby} course on Saturday mornings for the next ten weeks, with a small group of other beginners.`,
    `On weekends they are a beginner at ${s.hobby}, preferring concrete drills and measurable progress to theory.`,
    'They signed up for a ten-week Saturday-morning course with other beginners.'],
  () => ['I keep coming back to reliability: every project I enjoy has retries, idempotency and clear failure states at its core.',
    'The postmortem I wrote last quarter was about a queue that dropped jobs silently; it still shapes how I design anything async.',
    'Reliability runs through their work: retries, idempotency and explicit failure states come up in every project they enjoy.',
    'A postmortem they wrote about a queue that silently dropped jobs still shapes how they design anything asynchronous.'],
  () => ['Saving for a flat deposit this year, so I track spending weekly and cancel subscriptions I have not used for a month.',
    'I compare prices before any purchase over 100 euros and keep a list of what I decided not to buy, which helps a lot.',
    'They are saving for a flat deposit, tracking spending weekly and cancelling unused subscriptions.',
    'Purchases over 100 euros get a price comparison, and they keep a list of things they decided not to buy.'],
  (s) => [`Planning two weeks in ${s.trip} in May, mostly by train; quiet towns and good coffee matter more to me than big sights.`,
    'I read a lot of history, mostly the Roman republic and early aviation, and like recommendations in that space.',
    `They are planning two weeks in ${s.trip} in May, by train, for quiet towns and good coffee rather than big sights.`,
    'They read a lot of history, especially the Roman republic and early aviation.'],
];

/** Memories no claim cites: every real user has some. */
const UNCITED = [
  'Bought a new standing desk; my back is already better after a week of switching every hour.',
  'Need to renew my passport before the May trip, the appointment is on a Tuesday at 10.',
  'Tried the new ramen place near the office, the vegetarian broth is excellent but the queue is long.',
  'My laptop battery dies after two hours now; IT says a replacement takes three weeks.',
  'Reminder: dentist every six months, next one in February.',
  'Started keeping a work journal at the end of each day, three lines: what shipped, what blocked, what next.',
  'The team offsite is in the mountains this year, two nights, with a hike nobody asked for.',
  'I always forget to water the basil on the balcony in summer.',
];

export const HIT_SHAPE = { memories: TOPICS.length * 2 + UNCITED.length, claims: TOPICS.length, pinned: 1, notes: 2 } as const;

export interface StoredShape {
  users: number;
  memories_per_user: number;
  memory_chars: { min: number; max: number };
  notes_per_user: number;
  claims: number;
  pinned_claims: number;
  memory_ids_per_claim: number;
  content_bytes: { min: number; max: number };
  claims_json_bytes: { min: number; max: number };
}

const range = (xs: number[]) => ({ min: Math.min(...xs), max: Math.max(...xs) });

/**
 * Memories, notes and a stored narrative (version 1, fresh) for each user, as described above.
 * The note inserts queue a notes_changed job (debounced) for an eligible user; it is deleted in the
 * same transaction, so nothing regenerates the narrative the measurement reads.
 */
export async function storeShapedNarratives(db: postgres.Sql, userIds: readonly string[], model = 'bench-model'): Promise<StoredShape> {
  const contents: number[] = [];
  const claimBytes: number[] = [];
  const memoryChars: number[] = [];
  await db.begin(async (tx: Db) => {
    for (const [i, userId] of userIds.entries()) {
      const s = slots(i);
      const texts = TOPICS.map((t) => t(s));
      const memories = [...texts.flatMap(([a, b]) => [a, b]), ...UNCITED];
      memoryChars.push(...memories.map((m) => m.length));
      // Oldest first, a day apart; a third carry an importance, as the fixtures of the other steps.
      const ids = (await tx<{ id: string }[]>`
        insert into public.memories (user_id, content, created_at, metadata)
        select ${userId}, m.content, now() - make_interval(days => ${memories.length} - m.ord::int),
          case when m.ord % 3 = 0 then jsonb_build_object('importance', 0.7) else '{}'::jsonb end
        from unnest(${memories}::text[]) with ordinality m(content, ord)
        order by m.ord
        returning id`).map((r) => r.id);
      const pinnedText = `Call me ${s.name}, never by my full name.`;
      const notes = await tx<{ id: string; pinned: boolean }[]>`
        insert into public.narrative_notes (user_id, content, pinned)
        values (${userId}, ${pinnedText}, true), (${userId}, ${`I left ${s.old} in May; do not bring it up as my current job.`}, false)
        returning id, pinned`;
      await tx`delete from public.narrative_jobs where user_id = ${userId} and status = 'queued'`;
      const pinned = notes.find((n) => n.pinned)!;
      const other = notes.find((n) => !n.pinned)!;
      const claims: NarrativeClaim[] = [
        { section: PINNED_SECTION, text: pinnedText, memory_ids: [], note_ids: [pinned.id] },
        ...texts.map(([, , a, b], k): NarrativeClaim => ({
          section: NARRATIVE_SECTIONS[Math.floor(k / 4)],
          text: `${a} ${b}`,
          memory_ids: [ids[2 * k], ids[2 * k + 1]],
          ...(k === 3 ? { note_ids: [other.id] } : {}),
        })),
      ];
      const content = renderClaims(claims);
      const claimsJson = JSON.stringify(claims);
      contents.push(Buffer.byteLength(content));
      claimBytes.push(Buffer.byteLength(claimsJson));
      await tx`
        insert into public.user_narratives (user_id, narrative_content, version, generated_at, memories_as_of, model,
          source_memory_count, claims, cited_memory_ids, job_id)
        values (${userId}, ${content}, 1, now(), now(), ${model}, ${memories.length}, ${claimsJson}::text::jsonb,
          ${ids.slice(0, 2 * TOPICS.length)}::uuid[], null)`;
    }
  });
  return {
    users: userIds.length, memories_per_user: HIT_SHAPE.memories, memory_chars: range(memoryChars), notes_per_user: HIT_SHAPE.notes,
    claims: HIT_SHAPE.claims + HIT_SHAPE.pinned, pinned_claims: HIT_SHAPE.pinned, memory_ids_per_claim: 2,
    content_bytes: range(contents), claims_json_bytes: range(claimBytes),
  };
}

/** One line for the bench's notes and the soak's output. */
export function describeShape(s: StoredShape, bodies?: Record<string, number>): string {
  const r = (x: { min: number; max: number }, unit = 'bytes') => (x.min === x.max ? `${x.min} ${unit}` : `${x.min}–${x.max} ${unit}`);
  return `cache-hit rows shaped like production: ${s.users} users, each with ${s.memories_per_user} memories (${r(s.memory_chars, 'characters')}), `
    + `${s.notes_per_user} notes (one pinned) and a stored narrative of ${s.claims} claims (${s.pinned_claims} pinned note, the others citing `
    + `${s.memory_ids_per_claim} of the user's memories each): narrative_content ${r(s.content_bytes)}, claims ${r(s.claims_json_bytes)} of JSON`
    + (bodies ? `; hit response bodies ${Object.entries(bodies).map(([k, v]) => `${k} ${v} bytes`).join(', ')}` : '') + '.';
}
