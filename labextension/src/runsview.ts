// Runs: tasks and workflow runs, newest first, in a virtualised list (only the rows in view
// are in the DOM, so thousands of rows stay fast).
import { Widget } from '@lumino/widgets';
import { showErrorMessage } from '@jupyterlab/apputils';
import { NO_EXTENSION_MESSAGE } from './api';
import { formatDuration, runStepsLabel, shortId, stateLabel } from './format';
import type { OrchController } from './controller';
import { h, setAttr, setText } from './dom';
import { IRow, rowDuration } from './store';
import { TASK_STATES } from './types';

export const ROW_HEIGHT = 46;
const OVERSCAN = 8;
const ACTIVE = new Set(['pending', 'scheduled', 'running']);
const RETRYABLE = new Set(['failed', 'cancelled', 'upstream_failed', 'lost']);

/** Asked by a row's dashboard button: open the Orchestrator dashboard on this run or task. */
export const OPEN_DASHBOARD_EVENT = 'orch-open-dashboard';
export interface IOpenDashboard {
  panel: string;
  kind: 'task' | 'workflow';
  id: string;
}
const WAITING = new Set(['pending', 'scheduled']);

export class RunsView extends Widget {
  private scroller: HTMLDivElement;
  private spacer: HTMLDivElement;
  private banner: HTMLDivElement;
  private countEl: HTMLSpanElement;
  private textInput: HTMLInputElement;
  private stateSelect: HTMLSelectElement;
  private rowEls = new Map<string, HTMLDivElement>();
  private frame = 0;
  private ticker: ReturnType<typeof setInterval>;

  constructor(private readonly ctl: OrchController) {
    super();
    this.addClass('jp-OrchRuns');
    this.node.dataset.testid = 'orch-runs';
    this.title.label = 'Runs';
    this.textInput = h('input', {
      class: 'jp-OrchInput',
      type: 'search',
      placeholder: 'Filter runs',
      title: 'Filter runs by name, id, owner, worker or resources',
      'data-testid': 'orch-filter-text',
      'aria-label': 'Filter runs'
    });
    this.stateSelect = h(
      'select',
      { class: 'jp-OrchSelect', 'data-testid': 'orch-filter-state', 'aria-label': 'Show runs by state or kind', title: 'Show runs by state or kind' },
      // short labels: the closed dropdown shows the chosen one whole at the sidebar's width
      h('option', { value: '', text: 'All states' }),
      h('option', { value: 'active', text: 'Active' }),
      h('option', { value: 'workflow', text: 'Workflows' }),
      ...TASK_STATES.map(s => h('option', { value: s, text: stateLabel(s) }))
    );
    this.countEl = h('span', { class: 'jp-OrchCount' });
    this.banner = h('div', { class: 'jp-OrchBanner' });
    this.spacer = h('div', { class: 'jp-OrchSpacer' });
    this.scroller = h('div', { class: 'jp-OrchScroller', role: 'list' }, this.spacer);
    this.node.append(
      this.banner,
      h('div', { class: 'jp-OrchToolbar' }, this.textInput, this.stateSelect, this.countEl),
      this.scroller
    );
    let searchTimer: ReturnType<typeof setTimeout> | null = null;
    this.textInput.addEventListener('input', () => {
      ctl.store.setFilter({ text: this.textInput.value });
      // older tasks than the list holds are found by the server
      if (searchTimer) {
        clearTimeout(searchTimer);
      }
      searchTimer = setTimeout(() => void ctl.searchServer(this.textInput.value), 300);
    });
    this.stateSelect.addEventListener('change', () => ctl.store.setFilter({ state: this.stateSelect.value }));
    this.scroller.addEventListener('scroll', () => this.schedule());
    this.scroller.addEventListener('click', ev => this.onClick(ev));
    this.scroller.addEventListener('keydown', ev => {
      const rowEl = (ev.target as HTMLElement).closest('.jp-OrchRow') as HTMLElement | null;
      if (rowEl && (ev.key === 'Enter' || ev.key === ' ') && (ev.target as HTMLElement).tagName !== 'BUTTON') {
        ev.preventDefault();
        this.ctl.selectRow(rowEl.dataset.kind as 'task' | 'workflow', rowEl.dataset.id || '');
      }
    });
    ctl.store.subscribe(() => this.schedule());
    // durations of active rows tick
    this.ticker = setInterval(() => {
      if ([...this.rowEls.values()].some(el => ACTIVE.has(el.dataset.state || ''))) {
        this.schedule();
      }
    }, 1000);
  }

  dispose(): void {
    clearInterval(this.ticker);
    super.dispose();
  }

  protected onAfterShow(): void {
    this.schedule();
  }

  protected onResize(): void {
    this.schedule();
  }

  schedule(): void {
    if (this.frame) {
      return;
    }
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  /** scroll so that the row is in view */
  reveal(id: string): void {
    const rows = this.ctl.store.filteredRows();
    const i = rows.findIndex(r => r.id === id);
    if (i >= 0) {
      const top = i * ROW_HEIGHT;
      if (top < this.scroller.scrollTop || top + ROW_HEIGHT > this.scroller.scrollTop + this.scroller.clientHeight) {
        this.scroller.scrollTop = Math.max(0, top - ROW_HEIGHT);
      }
    }
    this.schedule();
  }

  private renderBanner(): void {
    const err = this.ctl.error;
    const key = err ? `${err.code}:${err.message}` : '';
    if (this.banner.dataset.key === key && this.banner.dataset.key !== undefined) {
      return;
    }
    this.banner.dataset.key = key;
    this.banner.replaceChildren();
    if (!err) {
      this.banner.hidden = true;
      return;
    }
    this.banner.hidden = false;
    if (err.code === 'no_extension') {
      this.banner.append(
        h(
          'div',
          { class: 'jp-OrchError', 'data-testid': 'orch-error-no-extension', role: 'alert' },
          h('strong', { text: 'The orchestrator is not running on this server.' }),
          h('p', { text: NO_EXTENSION_MESSAGE }),
          h('code', { text: 'jupyter server extension enable jupyter_orch' })
        )
      );
    } else {
      this.banner.append(h('div', { class: 'jp-OrchError', role: 'alert', text: err.message }));
    }
  }

  render(): void {
    this.renderBanner();
    const store = this.ctl.store;
    const rows = store.filteredRows();
    const total = store.rows().length;
    setText(this.countEl, rows.length === total ? `${total}` : `${rows.length}/${total}`);
    this.spacer.style.height = `${rows.length * ROW_HEIGHT}px`;
    const viewTop = this.scroller.scrollTop;
    const viewH = this.scroller.clientHeight || 400;
    const first = Math.max(0, Math.floor(viewTop / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(rows.length, Math.ceil((viewTop + viewH) / ROW_HEIGHT) + OVERSCAN);
    const now = Date.now() / 1000;
    const keep = new Set<string>();
    for (let i = first; i < last; i++) {
      const row = rows[i];
      const key = `${row.kind}:${row.id}`;
      keep.add(key);
      let el = this.rowEls.get(key);
      if (!el) {
        el = this.makeRow();
        this.rowEls.set(key, el);
        this.spacer.appendChild(el);
      }
      this.updateRow(el, row, i, now);
    }
    for (const [key, el] of this.rowEls) {
      if (!keep.has(key)) {
        el.remove();
        this.rowEls.delete(key);
      }
    }
    if (!rows.length) {
      let empty = this.spacer.querySelector('.jp-OrchEmpty');
      if (!empty) {
        empty = h('div', { class: 'jp-OrchEmpty' });
        this.spacer.appendChild(empty);
      }
      setText(
        empty,
        total
          ? 'No run matches the filter.'
          : this.ctl.loading
            ? 'Loading…'
            : 'No runs yet. Run a cell with %%orch run, submit with jupyter_orch.connect().submit(...), or use "Run as job" on a notebook.'
      );
    } else {
      this.spacer.querySelector('.jp-OrchEmpty')?.remove();
    }
  }

  private makeRow(): HTMLDivElement {
    const el = h(
      'div',
      { class: 'jp-OrchRow', 'data-testid': 'orch-run-row', role: 'listitem', tabindex: 0 },
      h(
        'div',
        { class: 'jp-OrchRow-line' },
        h('span', { class: 'jp-OrchDot' }),
        h('span', { class: 'jp-OrchRow-name' }),
        h('span', { class: 'jp-OrchRow-state' }),
        h('span', { class: 'jp-OrchRow-buttons' })
      ),
      h('div', { class: 'jp-OrchRow-meta' })
    );
    return el;
  }

  private updateRow(el: HTMLDivElement, row: IRow, index: number, now: number): void {
    el.style.transform = `translateY(${index * ROW_HEIGHT}px)`;
    setAttr(el, 'data-id', row.id);
    setAttr(el, 'data-kind', row.kind);
    setAttr(el, 'data-state', row.state);
    const sel = this.ctl.store.selection;
    el.classList.toggle('jp-mod-selected', !!sel && sel.id === row.id && sel.kind === row.kind);
    const [line, meta] = [el.children[0], el.children[1]];
    const name = line.children[1] as HTMLElement;
    setText(name, row.name);
    setAttr(name, 'title', `${row.kind === 'workflow' ? 'Workflow run' : 'Task'} ${row.id}${row.detail ? '\n' + row.detail : ''}`);
    setText(line.children[2], row.kind === 'workflow' ? `workflow · ${stateLabel(row.state)}` : stateLabel(row.state));
    const buttons = line.children[3] as HTMLElement;
    const want = ACTIVE.has(row.state) ? 'cancel' : RETRYABLE.has(row.state) ? 'retry' : '';
    if (buttons.dataset.want !== want) {
      buttons.dataset.want = want;
      buttons.replaceChildren(
        h('button', {
          class: 'jp-OrchButton jp-OrchRow-open',
          'data-testid': 'orch-row-dashboard',
          title: 'Open in the Orchestrator dashboard',
          'aria-label': 'Open in the Orchestrator dashboard',
          text: '⧉'
        })
      );
      if (want === 'cancel') {
        buttons.append(
          h('button', { class: 'jp-OrchButton', 'data-testid': 'orch-cancel', title: 'Cancel', text: 'Cancel' })
        );
      } else if (want === 'retry') {
        buttons.append(
          h('button', { class: 'jp-OrchButton', 'data-testid': 'orch-retry', title: 'Run again', text: 'Retry' })
        );
      }
    }
    // a run's steps read the same on every row, loaded or not (see runStepsLabel)
    const size = row.kind === 'workflow' ? runStepsLabel(this.ctl.store.runs.get(row.id)) || row.resources : row.resources;
    const parts = [row.owner, size, row.worker, formatDuration(rowDuration(row, now)) || '', shortId(row.id)];
    const facts = parts.filter(Boolean).join(' · ');
    // a waiting task says why under its name (its place in line, a quota, no worker fits)
    const waiting = row.kind === 'task' && row.state === 'pending' ? row.detail : '';
    el.classList.toggle('jp-mod-waiting', !!waiting);
    setText(meta, waiting || facts);
    setAttr(meta, 'title', waiting ? `${waiting}\n${facts}` : facts);
  }

  private onClick(ev: MouseEvent): void {
    const target = ev.target as HTMLElement;
    const rowEl = target.closest('.jp-OrchRow') as HTMLElement | null;
    if (!rowEl) {
      return;
    }
    const kind = rowEl.dataset.kind as 'task' | 'workflow';
    const id = rowEl.dataset.id || '';
    const button = target.closest('button');
    if (button && button.dataset.testid === 'orch-row-dashboard') {
      ev.stopPropagation();
      // a run opens on its DAG; a task on the timeline, or on the queue while it waits
      const state = rowEl.dataset.state || '';
      const panel = kind === 'workflow' ? 'dag' : WAITING.has(state) ? 'queue' : 'timeline';
      this.node.dispatchEvent(
        new CustomEvent<IOpenDashboard>(OPEN_DASHBOARD_EVENT, { bubbles: true, detail: { panel, kind, id } })
      );
      return;
    }
    if (button) {
      ev.stopPropagation();
      const action = button.dataset.testid === 'orch-cancel' ? 'cancel' : 'retry';
      (button as HTMLButtonElement).disabled = true;
      const p = action === 'cancel' ? this.ctl.cancel(kind, id) : this.ctl.retry(kind, id);
      p.catch(err =>
        showErrorMessage(action === 'cancel' ? 'Cancel failed' : 'Retry failed', err as Error)
      ).finally(() => {
        (button as HTMLButtonElement).disabled = false;
      });
      return;
    }
    this.ctl.selectRow(kind, id);
  }
}
