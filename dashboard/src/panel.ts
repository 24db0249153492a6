// The narrative panel: one state at a time (loading, writing, narrative, ineligible, failed,
// error), polling with backoff while a narrative is being written or updated, and the
// Regenerate button with its cooldown. The narrative is shown as its claims (claims.ts); a
// source deleted from a claim (sources.ts) takes the claims resting on it off the page at once,
// then the served (partial) narrative is read again and an "Updating" marker stays until the new
// version lands. Every outcome puts something on screen; nothing fails silently.
import type { NarrativeClaim, NarrativeResponse } from '../../shared/narrative.ts';
import type { Failure, NarrativeApi, NarrativeResult, Need } from './api.ts';
import { type ClaimPlace, ClaimsView } from './claims.ts';
import { setStatus } from './dom.ts';
import { changes } from './events.ts';
import { backoff, failureText, generatedAgo, minutesLeft } from './format.ts';
import { deleteSource, type SourceHost } from './sources.ts';

export interface PanelElements {
  root: HTMLElement;
  heading: HTMLElement;
  status: HTMLElement;
  retry: HTMLButtonElement;
  tryAgain: HTMLButtonElement;
  article: HTMLElement;
  generated: HTMLTimeElement;
  version: HTMLElement;
  model: HTMLElement;
  stale: HTMLElement;
  updating: HTMLElement;
  regenerate: HTMLButtonElement;
  body: HTMLElement;
}

type State = 'loading' | 'writing' | 'narrative' | 'ineligible' | 'failed' | 'error';
type Tone = 'info' | 'warn' | 'error';

/** What a poll waits for: any narrative, or one newer than a version already shown. */
interface Goal {
  newerThan: number | null;
  /** When waiting for a newer version while an older one is served, give up at this time. */
  until: number;
  /** Say so when giving up (a Regenerate the user asked for; a stale refresh is quiet). */
  announce: boolean;
}

// How long a Regenerate (or a stale refresh) waits for the new version while the old one is shown.
const REFRESH_WAIT_MS = 3 * 60_000;

export class NarrativePanel {
  private state: State = 'loading';
  private shown: NarrativeResponse | null = null;
  /** Bumped by every new action: an older poll that wakes up sees a different run and stops. */
  private run = 0;
  private pollTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshing = false;
  private retryable = false;
  private cooldownUntil = 0;
  private cooldownTimer: ReturnType<typeof setTimeout> | undefined;
  private said = '';
  /** A delete from this page already said what happened; the partial narrative need not again. */
  private updateSaid = false;
  /** Something changed elsewhere (a memory deleted in the list, a note edited): read again when shown. */
  private dirty = false;
  private readonly claims: ClaimsView;

  constructor(
    private readonly el: PanelElements,
    private readonly api: NarrativeApi,
    private readonly onUnauthorized: () => void,
  ) {
    el.retry.addEventListener('click', () => void this.load());
    el.tryAgain.addEventListener('click', () => void this.regenerate());
    el.regenerate.addEventListener('click', () => void this.regenerate());
    const sourceHost = (at: ClaimPlace): SourceHost => ({
      dropClaims: (cites) => this.dropClaims(cites, at),
      say: (tone, title, detail) => this.say(tone, title, detail),
      fail: (f) => this.fail(f),
      refresh: () => this.refresh(),
    });
    this.claims = new ClaimsView(el.body, api, {
      deleteMemory: (memory, at, button) => void deleteSource({ kind: 'memory', memory }, button, api, sourceHost(at)),
      deleteNote: (note, at, button) => void deleteSource({ kind: 'note', note }, button, api, sourceHost(at)),
      unauthorized: () => this.fail({ kind: 'unauthorized' }),
    });
    changes.on(() => { this.dirty = true; });
  }

  /** The tab was selected: read again if something changed since. */
  show(): void {
    if (this.dirty && this.state !== 'loading') void this.refresh();
  }

  /** Shows whatever the server has for the signed-in user. */
  async load(): Promise<void> {
    this.dirty = false;
    const run = this.begin();
    if (!this.shown) this.setState('loading');
    this.say('info', 'Loading your narrative…');
    const r = await this.api.get();
    if (run === this.run) this.handle(run, r, { newerThan: null, until: Infinity, announce: false }, 0);
  }

  /** Reads the narrative again without a loading message (after a delete, or back on the tab). */
  async refresh(): Promise<void> {
    this.dirty = false;
    const run = this.begin();
    const r = await this.api.get();
    if (run === this.run) this.handle(run, r, { newerThan: null, until: Infinity, announce: false }, 0);
  }

  /** Signed out: stop polling and forget what was shown. */
  reset(): void {
    this.run++;
    clearTimeout(this.pollTimer);
    clearTimeout(this.cooldownTimer);
    this.shown = null;
    this.refreshing = false;
    this.retryable = false;
    this.updateSaid = false;
    this.dirty = false;
    this.cooldownUntil = 0;
    this.el.body.replaceChildren();
    this.say(null, '');
    this.setState('loading');
  }

  async regenerate(): Promise<void> {
    if (this.coolingDown()) return;
    const run = this.begin();
    this.setRefreshing(true);
    this.say('info', 'Asking for a new version…');
    const r = await this.api.regenerate();
    if (run !== this.run) return;
    this.setRefreshing(r.kind === 'accepted' && this.shown !== null);
    switch (r.kind) {
      case 'accepted':
        if (this.shown) {
          this.say('info', r.status === 'running' ? 'A new version is being written…' : 'A new version is queued…',
            'The current one stays here until it is ready.');
        } else {
          this.writing(r.status);
        }
        this.schedule(run, { newerThan: this.shown?.version ?? null, until: Date.now() + REFRESH_WAIT_MS, announce: true }, 0);
        return;
      case 'cooldown':
        this.cooldown(r.retryAfterSeconds);
        return;
      case 'not_eligible':
        if (this.shown) this.say('warn', 'Not enough memories for a new version', r.message);
        else this.ineligible();
        return;
      default:
        this.fail(r);
    }
  }

  private begin(): number {
    clearTimeout(this.pollTimer);
    this.retryable = false;
    this.sync();
    return ++this.run;
  }

  private schedule(run: number, goal: Goal, attempt: number): void {
    clearTimeout(this.pollTimer);
    this.pollTimer = setTimeout(async () => {
      if (run !== this.run) return;
      const r = await this.api.get();
      if (run === this.run) this.handle(run, r, goal, attempt + 1);
    }, backoff(attempt));
  }

  private handle(run: number, r: NarrativeResult, goal: Goal, attempt: number): void {
    if (r.kind === 'narrative') {
      const n = r.narrative;
      if (goal.newerThan !== null && n.version <= goal.newerThan) {
        // The new version is not there yet; the one served is still the latest.
        this.showNarrative(n);
        if (Date.now() < goal.until) return this.schedule(run, goal, attempt);
        this.refreshing = false;
        if (goal.announce) {
          this.say('warn', 'The new version is taking longer than expected',
            'The current version stays here; reload the page later to see the new one.');
        }
        return this.sync();
      }
      const updated = this.shown !== null && n.version > this.shown.version;
      this.refreshing = false;
      this.showNarrative(n);
      if (updated) this.say('info', `Updated to version ${n.version}.`);
      else if (n.partial) {
        if (!this.updateSaid) {
          this.say('info', 'Updating your narrative', 'Statements resting on a deleted or changed memory or note were removed. '
            + 'A new version is being written and will appear here by itself.');
        }
      } else if (n.stale) this.say('warn', 'This narrative is out of date', 'A fresh version has been requested; it will replace this one here.');
      else this.say(null, '');
      if (!n.partial) this.updateSaid = false;
      // Reading a stale or partial narrative queued a refresh: swap it in when it lands.
      if (n.stale || n.partial) this.schedule(run, { newerThan: n.version, until: Date.now() + REFRESH_WAIT_MS, announce: false }, 0);
      return;
    }
    if (r.kind === 'pending') {
      if (r.status === 'ineligible') return this.ineligible(r.need);
      if (r.status === 'failed') return this.failed();
      this.writing(r.status);
      return this.schedule(run, goal, attempt);
    }
    this.fail(r);
  }

  private showNarrative(n: NarrativeResponse): void {
    const same = this.shown?.version === n.version && this.state === 'narrative'
      && JSON.stringify(this.shown.claims) === JSON.stringify(n.claims);
    this.shown = n;
    this.el.generated.dateTime = n.generated_at;
    this.el.generated.title = new Date(n.generated_at).toLocaleString();
    this.el.generated.textContent = `Generated ${generatedAgo(n.age_days)}`;
    this.el.version.textContent = `version ${n.version}`;
    this.el.model.textContent = n.model ?? 'model not recorded';
    // A partial narrative is stale too; it says what is happening instead.
    this.el.stale.hidden = !n.stale || n.partial;
    this.el.updating.hidden = !n.partial;
    if (!same) this.claims.render(n.claims);
    this.setState('narrative');
  }

  /** A source was deleted: the claims citing it leave the page now, focus stays near where it
   *  was, and the partial narrative is marked as updating. */
  private dropClaims(cites: (c: NarrativeClaim) => boolean, at: ClaimPlace): number | null {
    if (!this.shown) return null;
    const kept = this.shown.claims.filter((c) => !cites(c));
    const removed = this.shown.claims.length - kept.length;
    this.shown = { ...this.shown, claims: kept, partial: true };
    this.el.updating.hidden = false;
    this.el.stale.hidden = true;
    this.claims.render(kept);
    if (!this.claims.focusNear(at)) this.el.heading.focus();
    this.updateSaid = true;
    return removed;
  }

  private writing(status: 'queued' | 'running'): void {
    this.shown = null;
    this.updateSaid = false;
    this.setState('writing');
    this.say('info', 'Your narrative is being written',
      status === 'running'
        ? 'It is being written right now and will appear here by itself.'
        : 'It is queued and will appear here by itself, usually within a minute.');
  }

  private ineligible(need?: Need): void {
    this.shown = null;
    this.setState('ineligible');
    const more = need ? Math.max(need.minMemories - need.memoryCount, 1) : null;
    this.say('info', 'Not enough memories yet', need && more
      ? `A narrative is written once you have at least ${need.minMemories} memories; ${more} more ${more === 1 ? 'memory' : 'memories'} needed. Add more and it will appear here.`
      : 'A narrative is written once you have enough memories. Add more and it will appear here.');
  }

  private failed(): void {
    this.shown = null;
    this.setState('failed');
    this.say('error', 'Writing your narrative failed', 'The last attempt did not succeed. You can try again.');
  }

  private fail(f: Failure): void {
    this.refreshing = false;
    if (f.kind === 'unauthorized') {
      this.reset();
      this.onUnauthorized();
      return;
    }
    const { title, detail } = failureText(f);
    this.retryable = true;
    if (!this.shown) this.state = 'error';
    this.sync();
    this.say('error', title, detail);
  }

  private coolingDown(): boolean {
    return this.cooldownUntil > Date.now();
  }

  private cooldown(seconds: number): void {
    clearTimeout(this.cooldownTimer);
    this.cooldownUntil = Date.now() + seconds * 1000;
    const tick = () => {
      const left = (this.cooldownUntil - Date.now()) / 1000;
      if (left <= 0) {
        this.cooldownUntil = 0;
        this.say('info', 'You can ask for a new version again.');
        return this.sync();
      }
      this.say('warn', `You can ask again in ${minutesLeft(left)} min`, 'A new version was asked for recently.');
      this.sync();
      this.cooldownTimer = setTimeout(tick, Math.min(left * 1000, 15_000));
    };
    tick();
  }

  private setRefreshing(refreshing: boolean): void {
    this.refreshing = refreshing;
    this.sync();
  }

  private setState(state: State): void {
    this.state = state;
    this.sync();
  }

  /** Visibility and enabled state of everything, from the fields above. */
  private sync(): void {
    const { el } = this;
    el.root.dataset.state = this.state;
    el.root.setAttribute('aria-busy', String(this.state === 'loading' || this.refreshing));
    const blocked = this.refreshing || this.coolingDown();
    const focused = document.activeElement;
    el.article.hidden = this.state !== 'narrative';
    el.retry.hidden = !this.retryable;
    el.tryAgain.hidden = this.state !== 'failed';
    el.regenerate.disabled = blocked;
    el.tryAgain.disabled = blocked;
    // A button that just disappeared under the keyboard focus hands it to the heading.
    if (focused instanceof HTMLElement && focused !== document.body && el.root.contains(focused) && focused.closest('[hidden]')) {
      el.heading.focus();
    }
  }

  /** The polite live region (setStatus); unchanged text is not re-announced. */
  private say(tone: Tone | null, title: string, detail = ''): void {
    const key = `${tone}|${title}|${detail}`;
    if (key === this.said) return;
    this.said = key;
    setStatus(this.el.status, tone, title, detail);
  }
}
