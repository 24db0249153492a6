// The four views as ARIA tabs (roving tabindex, arrow keys, Home/End), one selected at a time,
// kept in the URL hash so a reload or a shared link opens the same view and Back goes back.
export const VIEWS = ['narrative', 'notes', 'history', 'memories'] as const;
export type View = (typeof VIEWS)[number];

const viewOf = (hash: string): View => (VIEWS as readonly string[]).includes(hash.slice(1)) ? hash.slice(1) as View : 'narrative';

export class Tabs {
  private readonly tabs: HTMLButtonElement[];
  private current: View | null = null;
  private active = false;

  constructor(tablist: HTMLElement, private readonly onShow: (view: View) => void) {
    this.tabs = [...tablist.querySelectorAll<HTMLButtonElement>('[role="tab"]')];
    for (const tab of this.tabs) {
      tab.addEventListener('click', () => this.go(tab.dataset.tab as View));
      tab.addEventListener('keydown', (e) => this.key(e, tab));
    }
    window.addEventListener('hashchange', () => { if (this.active) this.select(viewOf(location.hash)); });
  }

  /** Signed in: shows the view the URL names (the narrative when it names none). */
  start(): void {
    this.active = true;
    this.current = null;
    this.select(viewOf(location.hash));
  }

  /** Signed out: the URL no longer opens views. */
  stop(): void {
    this.active = false;
  }

  private go(view: View): void {
    if (viewOf(location.hash) === view) this.select(view);
    else location.hash = view === 'narrative' ? '' : view;
  }

  private select(view: View): void {
    for (const tab of this.tabs) {
      const on = tab.dataset.tab === view;
      tab.setAttribute('aria-selected', String(on));
      tab.tabIndex = on ? 0 : -1;
      const panel = document.getElementById(tab.getAttribute('aria-controls') ?? '');
      if (panel) panel.hidden = !on;
    }
    if (this.current === view) return;
    this.current = view;
    this.onShow(view);
  }

  private key(e: KeyboardEvent, tab: HTMLButtonElement): void {
    const i = this.tabs.indexOf(tab);
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: this.tabs.length - 1 }[e.key];
    if (next === undefined) return;
    e.preventDefault();
    const target = this.tabs[(next + this.tabs.length) % this.tabs.length];
    target.focus();
    this.go(target.dataset.tab as View);
  }
}
