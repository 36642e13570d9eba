// Searches: the caller's hyperparameter searches (name, state, trial counts, the best value with
// its parameters), and the selected one's trials table: a column per parameter, the best value
// of the metric and its step, the state, the best trial marked. A click on a trial shows its
// task's log; a running search has a Cancel button. Kept live by the controller (search events).
import { showErrorMessage } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';
import type { OrchController } from './controller';
import { h } from './dom';
import { formatDuration, stateLabel } from './format';
import { bestText, configText, countsText, isActiveSearch, startedText, trialColumns, trialRows } from './trials';
import type { ISearch } from './types';

const SHOWN = 300; // trial rows drawn at most (best first; the rest are counted)

export class SearchesView extends Widget {
  private frame = 0;
  private lastKey = '';
  private shownSearch: string | null = null;
  private poll: ReturnType<typeof setInterval>;
  private unsubscribe: () => void;

  constructor(
    private readonly ctl: OrchController,
    pollSeconds = 5
  ) {
    super();
    this.addClass('jp-OrchSearches');
    this.node.dataset.testid = 'orch-searches';
    this.title.label = 'Searches';
    this.title.caption = 'Hyperparameter searches and their trials';
    this.node.addEventListener('click', ev => this.onClick(ev));
    this.node.addEventListener('keydown', ev => {
      const target = ev.target as HTMLElement;
      if ((ev.key === 'Enter' || ev.key === ' ') && target.tagName !== 'BUTTON' && target.closest('[data-search], [data-task]')) {
        ev.preventDefault();
        this.onClick(ev);
      }
    });
    this.unsubscribe = ctl.store.subscribe(() => this.schedule());
    // a trial's values change between the search's events (random and grid searches tell
    // only when a trial starts or ends): a running search's trials are read now and then
    this.poll = setInterval(() => {
      const sel = this.ctl.store.selectedSearch();
      if (this.isVisible && isActiveSearch(sel) && this.ctl.connection === 'open') {
        this.ctl.scheduleSearchRead(0);
      }
    }, pollSeconds * 1000);
    this.schedule();
  }

  dispose(): void {
    clearInterval(this.poll);
    this.unsubscribe();
    if (this.frame) {
      cancelAnimationFrame(this.frame);
    }
    super.dispose();
  }

  protected onAfterShow(): void {
    this.schedule();
  }

  schedule(): void {
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.render();
      });
    }
  }

  render(): void {
    const store = this.ctl.store;
    const sel = store.selectedSearch();
    // task states tell a queued trial from a running one
    const taskStates = (sel?.trials || []).map(t => (t.task_id ? store.tasks.get(t.task_id)?.state : ''));
    const key = JSON.stringify([store.searchVersion, store.logTaskId, taskStates, this.ctl.error?.code, this.ctl.loading]);
    if (key === this.lastKey) {
      return;
    }
    this.lastKey = key;
    const searches = store.searchList();
    const out: HTMLElement[] = [];
    if (!searches.length) {
      out.push(this.emptyState());
    } else {
      out.push(h('div', { class: 'jp-OrchSearchList', role: 'list' }, ...searches.map(s => this.renderSearch(s, s.id === store.searchId))));
    }
    const detail = sel ? this.renderDetail(sel) : null;
    if (detail) {
      out.push(detail);
    }
    this.node.replaceChildren(...out);
    if (detail && this.shownSearch !== sel!.id) {
      detail.scrollIntoView({ block: 'nearest' }); // a new selection: its trials in view
    }
    this.shownSearch = sel?.id ?? null;
  }

  private emptyState(): HTMLElement {
    if (this.ctl.error?.code === 'no_extension') {
      return h('div', { class: 'jp-OrchEmpty', text: 'Searches appear here once the orchestrator runs on this server (see Runs).' });
    }
    if (this.ctl.loading) {
      return h('div', { class: 'jp-OrchEmpty', text: 'Loading…' });
    }
    return h(
      'div',
      { class: 'jp-OrchEmpty jp-OrchEmpty-box', 'data-testid': 'orch-empty-searches' },
      h('strong', { text: 'No hyperparameter searches yet.' }),
      h('p', { text: 'Start one from a notebook; its trials show here as they run:' }),
      h('code', { text: 'jupyter_orch.connect().search(train, {"lr": [0.1, 0.01]}, metric="loss", scheduler="grid")' })
    );
  }

  private renderSearch(s: ISearch, selected: boolean): HTMLElement {
    const running = isActiveSearch(s);
    const line = h(
      'div',
      { class: 'jp-OrchRow-line' },
      h('span', { class: 'jp-OrchDot' }),
      h('span', { class: 'jp-OrchRow-name', title: `Search ${s.id}`, text: s.name || s.id }),
      h('span', { class: 'jp-OrchRow-state', 'data-testid': 'orch-search-state', text: stateLabel(s.state) }),
      running
        ? h('span', { class: 'jp-OrchRow-buttons' }, h('button', { class: 'jp-OrchButton', 'data-testid': 'orch-search-cancel', title: 'Cancel the search: its running trials are cancelled, no new one starts', text: 'Cancel' }))
        : null
    );
    const took = s.ended_at ? formatDuration(s.ended_at - s.created_at) : '';
    const meta = [countsText(s.counts), configText(s), startedText(s.created_at), took && `took ${took}`].filter(Boolean).join(' · ');
    return h(
      'div',
      {
        class: `jp-OrchSearch${selected ? ' jp-mod-selected' : ''}`,
        'data-testid': 'orch-search',
        'data-search': s.id,
        'data-id': s.id,
        'data-state': s.state,
        role: 'listitem',
        tabindex: 0,
        'aria-selected': selected
      },
      line,
      h('div', { class: 'jp-OrchRow-meta', 'data-testid': 'orch-search-counts', title: meta, text: meta }),
      h('div', { class: 'jp-OrchSearch-best', 'data-testid': 'orch-search-best', text: bestText(s) }),
      s.error ? h('div', { class: 'jp-OrchSearch-error', text: s.error }) : null
    );
  }

  private renderDetail(s: ISearch): HTMLElement {
    const store = this.ctl.store;
    const detail = h('div', { class: 'jp-OrchSearchDetail', 'data-testid': 'orch-search-detail', 'data-id': s.id, 'data-state': s.state });
    detail.append(
      h(
        'div',
        { class: 'jp-OrchSubhead' },
        `Trials of ${s.name || s.id}`,
        h('span', { class: 'jp-OrchHint', text: ` · ${configText(s)}${s.step?.name ? ` · workflow step ${s.step.name}` : ''}` })
      )
    );
    if (store.searchError) {
      detail.append(h('div', { class: 'jp-OrchError', role: 'alert', text: store.searchError }));
    }
    if (!s.trials) {
      detail.append(h('div', { class: 'jp-OrchHint', text: 'Reading its trials…' }));
      return detail;
    }
    if (!s.trials.length) {
      detail.append(h('div', { class: 'jp-OrchHint', text: 'No trial has started yet.' }));
      return detail;
    }
    const columns = trialColumns(s);
    const params = columns.filter(c => c.kind === 'param');
    const rows = trialRows(s, id => store.tasks.get(id)?.state);
    const head = h('tr', {}, ...columns.map(c => h('th', { title: c.title, 'data-col': c.kind, text: c.label })));
    const body = h('tbody', {});
    for (const r of rows.slice(0, SHOWN)) {
      const selected = !!r.taskId && r.taskId === store.logTaskId;
      const tr = h(
        'tr',
        {
          class: `jp-OrchTrial${r.best ? ' jp-mod-best' : ''}${selected ? ' jp-mod-selected' : ''}`,
          'data-testid': 'orch-trial',
          'data-number': r.number,
          'data-state': r.state,
          'data-best': r.best ? 'true' : 'false',
          'data-task': r.taskId || undefined,
          tabindex: r.taskId ? 0 : undefined,
          title: [r.taskId ? 'Show its log' : 'Not started yet', r.title].filter(Boolean).join('\n')
        },
        h('td', { 'data-testid': 'orch-trial-number', text: `${r.best ? '★ ' : ''}${r.number}` })
      );
      params.forEach((c, i) => tr.append(h('td', { 'data-testid': 'orch-trial-param', 'data-name': c.name, text: r.params[i] })));
      tr.append(
        h('td', { 'data-testid': 'orch-trial-value', class: 'jp-OrchTrial-num', text: r.value }),
        h('td', { 'data-testid': 'orch-trial-step', class: 'jp-OrchTrial-num', text: r.step }),
        h('td', { 'data-testid': 'orch-trial-state', text: r.stateText })
      );
      body.append(tr);
    }
    detail.append(
      h('div', { class: 'jp-OrchTrials-scroll' }, h('table', { class: 'jp-OrchTrials', 'data-testid': 'orch-trials' }, h('thead', {}, head), body))
    );
    if (rows.length > SHOWN) {
      detail.append(h('div', { class: 'jp-OrchHint', text: `and ${rows.length - SHOWN} more trials (the best ${SHOWN} are shown)` }));
    }
    return detail;
  }

  private onClick(ev: Event): void {
    const target = ev.target as HTMLElement;
    const button = target.closest('button');
    const searchEl = target.closest('[data-search]') as HTMLElement | null;
    if (button && button.dataset.testid === 'orch-search-cancel' && searchEl) {
      ev.stopPropagation();
      const id = searchEl.dataset.search || '';
      button.disabled = true;
      this.ctl
        .cancelSearch(id)
        .catch(err => showErrorMessage('Cancel failed', err as Error))
        .finally(() => {
          button.disabled = false;
        });
      return;
    }
    if (searchEl) {
      const id = searchEl.dataset.search || '';
      this.ctl.selectSearch(id);
      return;
    }
    const trial = target.closest('[data-task]') as HTMLElement | null;
    if (trial?.dataset.task) {
      // the trial's task: its log in the Logs view, its row in Runs
      this.ctl.selectRow('task', trial.dataset.task);
    }
  }
}
