// The queue panel: the user's waiting tasks (pending, scheduled), oldest first, each with why it
// waits, its priority, what it asks for, how long it has waited (ticking) and its owner; the
// tab's title counts them. A row selects its task (the sidebar's runs and logs follow).
import type { OrchController } from '../controller';
import { h, setAttr, setText } from '../dom';
import { stateLabel } from '../format';
import type { IDashboardPanel } from './panel';
import { IQueueRow, queueRows, queueTitle, waited } from './queue';

export class QueuePanel implements IDashboardPanel {
  readonly id = 'queue';
  readonly node: HTMLElement;
  private body: HTMLTableSectionElement;
  private empty: HTMLDivElement;
  private summary: HTMLSpanElement;
  private rows: IQueueRow[] = [];
  private rowEls = new Map<string, HTMLTableRowElement>();
  private visible = false;
  private ticker: ReturnType<typeof setInterval> | null = null;
  private frame = 0;
  private unsubscribe: () => void;

  constructor(private readonly ctl: OrchController) {
    this.node = h('div', { class: 'jp-OrchQueue' });
    this.summary = h('span', { class: 'jp-OrchHint', 'data-testid': 'orch-queue-summary' });
    this.body = h('tbody');
    this.empty = h('div', { class: 'jp-OrchEmpty', 'data-testid': 'orch-queue-empty', hidden: true });
    const head = h(
      'tr',
      {},
      ...['Task', 'Why it waits', 'Priority', 'Asks for', 'Waited', 'Owner'].map(t => h('th', { scope: 'col', text: t }))
    );
    this.node.append(
      h('div', { class: 'jp-OrchDash-toolbar' }, this.summary),
      h(
        'div',
        { class: 'jp-OrchQueue-scroller' },
        h('table', { class: 'jp-OrchTable jp-OrchQueue-table', 'data-testid': 'orch-queue-table' }, h('thead', {}, head), this.body),
        this.empty
      )
    );
    this.body.addEventListener('click', ev => {
      const tr = (ev.target as Element).closest('tr[data-id]') as HTMLElement | null;
      if (tr?.dataset.id) {
        this.ctl.selectRow('task', tr.dataset.id);
      }
    });
    this.body.addEventListener('keydown', ev => {
      const tr = (ev.target as Element).closest('tr[data-id]') as HTMLElement | null;
      if (tr?.dataset.id && (ev.key === 'Enter' || ev.key === ' ')) {
        ev.preventDefault();
        this.ctl.selectRow('task', tr.dataset.id);
      }
    });
    this.unsubscribe = ctl.store.subscribe(() => this.onStore());
    this.onStore();
  }

  /** "Queue (n)": the shell reads it again when the store changes */
  get title(): string {
    return queueTitle(this.rows.length);
  }

  shown(): void {
    this.visible = true;
    this.render();
    if (!this.ticker) {
      this.ticker = setInterval(() => this.tick(), 1000);
    }
  }

  hidden(): void {
    this.visible = false;
    if (this.ticker) {
      clearInterval(this.ticker);
      this.ticker = null;
    }
    if (this.frame) {
      cancelAnimationFrame(this.frame);
      this.frame = 0;
    }
  }

  dispose(): void {
    this.hidden();
    this.unsubscribe();
  }

  private onStore(): void {
    this.rows = queueRows(this.ctl.store.tasks.values());
    if (this.visible && !this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.render();
      });
    }
  }

  private tick(): void {
    const now = Date.now() / 1000;
    for (const row of this.rows) {
      const el = this.rowEls.get(row.id);
      if (el) {
        setText(el.children[4], waited(row.since, now));
      }
    }
  }

  render(): void {
    const now = Date.now() / 1000;
    const sel = this.ctl.store.selection;
    const keep = new Set<string>();
    let prev: HTMLTableRowElement | null = null;
    for (const row of this.rows) {
      keep.add(row.id);
      let tr = this.rowEls.get(row.id);
      if (!tr) {
        tr = h(
          'tr',
          { 'data-testid': 'orch-queue-row', tabindex: 0 },
          h('td', { class: 'jp-OrchQueue-name' }, h('span', { class: 'jp-OrchDot' }), h('span')),
          h('td', { class: 'jp-OrchQueue-reason', 'data-testid': 'orch-queue-reason' }),
          h('td', { class: 'jp-OrchQueue-num' }),
          h('td'),
          h('td', { class: 'jp-OrchQueue-num', 'data-testid': 'orch-queue-waited' }),
          h('td')
        );
        this.rowEls.set(row.id, tr);
      }
      // in order: move it only when it is out of place
      const want: ChildNode | null = prev ? prev.nextSibling : this.body.firstChild;
      if (want !== tr) {
        this.body.insertBefore(tr, want);
      }
      prev = tr;
      setAttr(tr, 'data-id', row.id);
      setAttr(tr, 'data-state', row.state);
      tr.classList.toggle('jp-mod-selected', sel?.kind === 'task' && sel.id === row.id);
      const name = tr.children[0].lastElementChild as HTMLElement;
      setText(name, row.name);
      setAttr(name, 'title', `${row.name} · ${stateLabel(row.state)} · ${row.id}`);
      const retry = row.retryAt && row.retryAt > now ? ` (again in ${waited(now, row.retryAt)})` : '';
      setText(tr.children[1], row.reason + retry);
      setAttr(tr.children[1], 'title', row.reason);
      setText(tr.children[2], String(row.priority));
      setText(tr.children[3], row.resources);
      setText(tr.children[4], waited(row.since, now));
      setText(tr.children[5], row.owner);
    }
    for (const [id, tr] of this.rowEls) {
      if (!keep.has(id)) {
        tr.remove();
        this.rowEls.delete(id);
      }
    }
    const n = this.rows.length;
    setText(
      this.summary,
      n
        ? `${n} waiting · oldest first · the oldest has waited ${waited(this.rows[0].since, now)}`
        : 'Nothing waiting'
    );
    this.empty.hidden = n > 0;
    setText(
      this.empty,
      this.ctl.loading ? 'Loading…' : 'No task is waiting: everything submitted has a worker. Tasks that wait for a GPU, a slot or a quota appear here with the reason.'
    );
  }
}
