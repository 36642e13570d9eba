// The Orchestrator dashboard: a main-area widget with a tab per panel of PANELS (panels.ts), in
// their order. Only the current panel is told it is shown (and again when the dashboard's size
// changes); the others are told they are hidden, so their timers and animation frames stop.
// A panel that fails to build shows its error in its tab; one with `available()` false (the
// admin panel for a user without the right) has no tab until it becomes true.
import type { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';
import type { OrchController } from '../controller';
import { h, setAttr, setText } from '../dom';
import { orchIcon } from '../icon';
import type { IDashboardPanel, PanelFactory } from './panel';

export const DASHBOARD_ID = 'jupyter-orch-dashboard';

interface IEntry {
  id: string;
  panel: IDashboardPanel;
  tab: HTMLButtonElement;
}

/** a panel whose factory threw: its tab says why */
function brokenPanel(id: string, err: unknown): IDashboardPanel {
  return {
    id,
    title: id,
    node: h(
      'div',
      { class: 'jp-OrchError', role: 'alert' },
      `The ${id} panel failed to start: ${(err as Error)?.message || String(err)}`
    ),
    shown: () => undefined,
    hidden: () => undefined,
    dispose: () => undefined
  };
}

function isAvailable(panel: IDashboardPanel): boolean {
  const p = panel as IDashboardPanel & { available?: () => boolean };
  return typeof p.available === 'function' ? p.available() : true;
}

export class OrchDashboard extends Widget {
  private entries: IEntry[] = [];
  private tabBar: HTMLDivElement;
  private body: HTMLDivElement;
  private current: string | null = null;
  /** the panel asked for before it was available (the admin panel before GET /info answered) */
  private wanted: string | null = null;
  private resizeObserver: ResizeObserver | null = null;
  private resizeFrame = 0;
  private unsubscribe: () => void;
  /** told when another panel is shown (the layout restorer saves it) */
  onPanelChanged: ((id: string) => void) | null = null;

  constructor(
    readonly ctl: OrchController,
    panels: ReadonlyArray<{ id: string; create: PanelFactory }>
  ) {
    super();
    this.id = DASHBOARD_ID;
    this.addClass('jp-OrchDashboard');
    this.node.dataset.testid = 'orch-dashboard';
    this.title.label = 'Orchestrator';
    this.title.caption = 'Orchestrator dashboard: GPU timeline, queue and more';
    this.title.icon = orchIcon;
    this.title.closable = true;
    this.tabBar = h('div', { class: 'jp-OrchDash-tabs', role: 'tablist', 'aria-label': 'Dashboard panels' });
    this.body = h('div', { class: 'jp-OrchDash-body' });
    this.node.append(this.tabBar, this.body);
    const seen = new Set<string>();
    for (const entry of panels) {
      if (seen.has(entry.id)) {
        console.warn(`jupyter-orch: dashboard panel ${entry.id} is listed twice; the first is kept`);
        continue;
      }
      seen.add(entry.id);
      let panel: IDashboardPanel;
      try {
        panel = entry.create(ctl);
      } catch (err) {
        console.error(`jupyter-orch: dashboard panel ${entry.id} failed`, err);
        panel = brokenPanel(entry.id, err);
      }
      const id = entry.id;
      panel.node.classList.add('jp-OrchDash-panel');
      panel.node.dataset.testid = `orch-dash-${id}`;
      panel.node.id = `${DASHBOARD_ID}-${id}`;
      panel.node.setAttribute('role', 'tabpanel');
      panel.node.hidden = true;
      const tab = h('button', {
        class: 'jp-OrchDash-tab',
        role: 'tab',
        'data-testid': `orch-dash-tab-${id}`,
        'data-panel': id,
        'aria-controls': panel.node.id,
        'aria-selected': 'false'
      });
      tab.addEventListener('click', () => this.select(id));
      tab.addEventListener('keydown', ev => this.onTabKey(ev, id));
      this.entries.push({ id, panel, tab });
      this.tabBar.append(tab);
      this.body.append(panel.node);
    }
    this.unsubscribe = ctl.store.subscribe(() => this.refreshTabs());
    this.refreshTabs();
  }

  /** the id of the panel shown */
  get currentPanel(): string | null {
    return this.current;
  }

  get panelIds(): string[] {
    return this.entries.map(e => e.id);
  }

  panel(id: string): IDashboardPanel | undefined {
    return this.entries.find(e => e.id === id)?.panel;
  }

  /** Show panel `id` (one not available yet is shown once it is). */
  select(id: string): void {
    const entry = this.entries.find(e => e.id === id);
    if (!entry) {
      return;
    }
    if (!isAvailable(entry.panel)) {
      this.wanted = id;
      return;
    }
    this.wanted = null;
    if (this.current === id) {
      if (this.isVisible) {
        entry.panel.shown();
      }
      return;
    }
    const old = this.entries.find(e => e.id === this.current);
    if (old) {
      old.panel.node.hidden = true;
      old.panel.hidden();
    }
    this.current = id;
    entry.panel.node.hidden = false;
    this.refreshTabs();
    this.onPanelChanged?.(id);
    if (this.isVisible) {
      entry.panel.shown();
    }
  }

  /** tab titles (a panel's may change: the queue counts), availability, the selected tab */
  private refreshTabs(): void {
    for (const e of this.entries) {
      const ok = isAvailable(e.panel);
      e.tab.hidden = !ok;
      setText(e.tab, e.panel.title);
      setAttr(e.tab, 'aria-selected', String(e.id === this.current));
      e.tab.tabIndex = e.id === this.current ? 0 : -1;
      e.tab.classList.toggle('jp-mod-current', e.id === this.current);
    }
    if (this.wanted && this.entries.some(e => e.id === this.wanted && isAvailable(e.panel))) {
      this.select(this.wanted);
      return;
    }
    const cur = this.entries.find(e => e.id === this.current);
    if (!cur || !isAvailable(cur.panel)) {
      const first = this.entries.find(e => isAvailable(e.panel));
      if (first && first.id !== this.current) {
        this.select(first.id);
      }
    }
  }

  private onTabKey(ev: KeyboardEvent, id: string): void {
    const shown = this.entries.filter(e => !e.tab.hidden);
    const i = shown.findIndex(e => e.id === id);
    let next = -1;
    if (ev.key === 'ArrowRight') {
      next = (i + 1) % shown.length;
    } else if (ev.key === 'ArrowLeft') {
      next = (i - 1 + shown.length) % shown.length;
    } else if (ev.key === 'Home') {
      next = 0;
    } else if (ev.key === 'End') {
      next = shown.length - 1;
    }
    if (next >= 0) {
      ev.preventDefault();
      this.select(shown[next].id);
      shown[next].tab.focus();
    }
  }

  private currentPanelObj(): IDashboardPanel | undefined {
    return this.entries.find(e => e.id === this.current)?.panel;
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (typeof ResizeObserver !== 'undefined' && !this.resizeObserver) {
      this.resizeObserver = new ResizeObserver(() => {
        // once per frame however many times it fires
        if (!this.resizeFrame) {
          this.resizeFrame = requestAnimationFrame(() => {
            this.resizeFrame = 0;
            if (this.isVisible) {
              this.currentPanelObj()?.shown();
            }
          });
        }
      });
      this.resizeObserver.observe(this.body);
    }
    if (this.isVisible) {
      this.currentPanelObj()?.shown();
    }
  }

  protected onBeforeDetach(msg: Message): void {
    this.resizeObserver?.disconnect();
    this.resizeObserver = null;
    this.currentPanelObj()?.hidden();
    super.onBeforeDetach(msg);
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.currentPanelObj()?.shown();
  }

  protected onBeforeHide(msg: Message): void {
    this.currentPanelObj()?.hidden();
    super.onBeforeHide(msg);
  }

  protected onResize(msg: Widget.ResizeMessage): void {
    super.onResize(msg);
    if (this.isVisible) {
      this.currentPanelObj()?.shown();
    }
  }

  /** closed: gone (the restorer forgets it; the command makes a new one) */
  protected onCloseRequest(msg: Message): void {
    super.onCloseRequest(msg);
    this.dispose();
  }

  protected onActivateRequest(msg: Message): void {
    super.onActivateRequest(msg);
    const tab = this.entries.find(e => e.id === this.current)?.tab;
    (tab || this.node).focus?.();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.unsubscribe();
    if (this.resizeFrame) {
      cancelAnimationFrame(this.resizeFrame);
    }
    this.resizeObserver?.disconnect();
    for (const e of this.entries) {
      try {
        e.panel.hidden();
        e.panel.dispose();
      } catch (err) {
        console.error(`jupyter-orch: dashboard panel ${e.id} failed to close`, err);
      }
    }
    this.entries = [];
    super.dispose();
  }
}
