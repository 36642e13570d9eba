// The dashboard's 'experiments' panel: learning curves of the chosen tasks overlaid (one chart
// per metric, a line per task; chosen from the tasks that reported metrics, or all the trials of
// a search at once), live while they run; the trials table of the selected search with its best
// trial; the checkpoints of the focused task. Public API only: GET /tasks/{id}/metrics (series
// downsampled with LTTB), GET /tasks/{id}/checkpoints, and its own events socket with
// ?types=task&metrics=1, open only while the panel is shown.
import { ServerConnection } from '@jupyterlab/services';
import { wsUrl } from '../api';
import type { OrchController } from '../controller';
import { h, setAttr, setText } from '../dom';
import { formatNumber, trialColumns, trialRows, bestText, countsText, metricLabel } from '../trials';
import { stateLabel } from '../format';
import { ReconnectingSocket, SocketFactory } from '../socket';
import type { ICheckpoint, ISearch } from '../types';
import { appendPoints, buildCharts, extent, IChart, IMetricAnswer, IMetricSeries, IMetricsEvent, linePath, niceTicks, Throttle } from './expseries';
import { checkpointRows, IProbe, metricTasks, toProbe, trialLabel, trialTasks } from './expselect';
import type { IDashboardPanel } from './panel';

const SVG_NS = 'http://www.w3.org/2000/svg';
/** points per series asked of the server (and kept per live series, up to twice as many) */
const MAX_POINTS = 1000;
const PROBES_AT_ONCE = 4;
const CHART_H = 200;
const MARGIN = { left: 56, right: 12, top: 10, bottom: 24 };
/** line colours: distinct on light and dark themes */
const PALETTE = ['#2f81f7', '#e5534b', '#2da44e', '#d29922', '#a371f7', '#db6d28', '#1f9fb4', '#e85aad', '#8b949e', '#7a9e1f'];

export interface IExperimentsOptions {
  /** the events socket's URL (default: this server's /events?types=task&metrics=1) */
  eventsUrl?: () => string;
  socketFactory?: SocketFactory;
}

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    el.setAttribute(k, String(v));
  }
  return el;
}

function defaultEventsUrl(): string {
  const s = ServerConnection.makeSettings();
  return wsUrl(s.wsUrl, 'events', { types: 'task', metrics: '1' }, s.token);
}

export class ExperimentsPanel implements IDashboardPanel {
  readonly id = 'experiments';
  readonly title = 'Experiments';
  readonly node: HTMLDivElement;
  private searchPicker: HTMLSelectElement;
  private overlayButton: HTMLButtonElement;
  private status: HTMLSpanElement;
  private taskList: HTMLUListElement;
  private charts: HTMLDivElement;
  private legend: HTMLDivElement;
  private trials: HTMLDivElement;
  private checkpoints: HTMLDivElement;

  private visible = false;
  private frame = 0;
  private socket: ReconnectingSocket | null = null;
  private unsubscribe: () => void;
  private throttle: Throttle;
  /** what GET /metrics said of each task asked */
  private probes = new Map<string, IProbe>();
  private probing = new Set<string>();
  /** tasks a live point came from */
  private live = new Set<string>();
  /** the tasks whose curves are drawn, in the order chosen */
  private chosen: string[] = [];
  /** the task whose checkpoints are shown */
  private focus: string | null = null;
  private data = new Map<string, IMetricSeries[]>();
  private loading = new Set<string>();
  /** a live point came while its task's series was being read: read it again */
  private stale = new Set<string>();
  /** the search whose trials are all drawn (new trials join); null: the user chose */
  private follow: string | null = null;
  private lastSearch: string | null = null;
  private sideKey = '';
  private trialsKey = '';
  private cp: { taskId: string | null; state: string; list: ICheckpoint[] | null; error: string | null } = {
    taskId: null,
    state: '',
    list: null,
    error: null
  };
  private cpTimer: ReturnType<typeof setTimeout> | null = null;
  private cpSeq = 0;

  constructor(
    private readonly ctl: OrchController,
    private readonly opts: IExperimentsOptions = {}
  ) {
    this.node = h('div', { class: 'jp-OrchExp' });
    this.searchPicker = h('select', { class: 'jp-OrchExp-search', 'data-testid': 'orch-exp-search', 'aria-label': 'Search' });
    this.overlayButton = h('button', {
      class: 'jp-OrchButton',
      'data-testid': 'orch-exp-overlay',
      title: 'Draw the curves of every trial of the selected search',
      text: 'Overlay all trials'
    });
    const clear = h('button', { class: 'jp-OrchButton', 'data-testid': 'orch-exp-clear', text: 'Clear' });
    this.status = h('span', { class: 'jp-OrchExp-status', 'data-testid': 'orch-exp-status' });
    const toolbar = h(
      'div',
      { class: 'jp-OrchDash-toolbar jp-OrchExp-toolbar' },
      h('label', { class: 'jp-OrchExp-label' }, 'Search ', this.searchPicker),
      this.overlayButton,
      clear,
      this.status
    );
    this.taskList = h('ul', { class: 'jp-OrchExp-tasks', 'data-testid': 'orch-exp-tasks', 'aria-label': 'Tasks that reported metrics' });
    const side = h(
      'div',
      { class: 'jp-OrchExp-side' },
      h('div', { class: 'jp-OrchExp-heading', text: 'Tasks with metrics' }),
      this.taskList
    );
    this.legend = h('div', { class: 'jp-OrchExp-legend', 'data-testid': 'orch-exp-legend' });
    this.charts = h('div', { class: 'jp-OrchExp-charts', 'data-testid': 'orch-exp-charts' });
    this.trials = h('div', { class: 'jp-OrchExp-section', 'data-testid': 'orch-exp-trials-section' });
    this.checkpoints = h('div', { class: 'jp-OrchExp-section', 'data-testid': 'orch-exp-checkpoints-section' });
    const main = h('div', { class: 'jp-OrchExp-main' }, this.legend, this.charts, this.trials, this.checkpoints);
    this.node.append(toolbar, h('div', { class: 'jp-OrchExp-body' }, side, main));

    this.searchPicker.addEventListener('change', () => this.ctl.selectSearch(this.searchPicker.value || null));
    this.overlayButton.addEventListener('click', () => this.overlaySearch());
    clear.addEventListener('click', () => {
      this.follow = null;
      this.choose([]);
    });
    this.taskList.addEventListener('change', ev => {
      const box = ev.target as HTMLInputElement;
      const id = box.closest('[data-id]')?.getAttribute('data-id');
      if (id) {
        this.follow = null;
        this.choose(box.checked ? [...this.chosen, id] : this.chosen.filter(x => x !== id));
        if (box.checked) {
          this.setFocus(id);
        }
      }
    });
    this.taskList.addEventListener('click', ev => {
      const label = (ev.target as Element).closest('.jp-OrchExp-taskname');
      const id = label?.closest('[data-id]')?.getAttribute('data-id');
      if (id) {
        this.setFocus(id);
      }
    });
    this.trials.addEventListener('click', ev => {
      const row = (ev.target as Element).closest('[data-task]');
      const id = row?.getAttribute('data-task');
      if (id) {
        if (!this.chosen.includes(id)) {
          this.choose([...this.chosen, id]);
        }
        this.setFocus(id);
      }
    });
    this.checkpoints.addEventListener('click', ev => {
      if ((ev.target as Element).closest('[data-testid="orch-exp-checkpoints-refresh"]')) {
        this.loadCheckpoints(true);
      }
    });
    this.throttle = new Throttle(() => this.drawCharts(), 100);
    this.unsubscribe = ctl.store.subscribe(() => this.schedule());
  }

  shown(): void {
    const wasVisible = this.visible;
    this.visible = true;
    if (!this.socket) {
      this.socket = new ReconnectingSocket({
        url: this.opts.eventsUrl || defaultEventsUrl,
        factory: this.opts.socketFactory,
        onMessage: data => this.onEvent(data as { type: string }),
        onOpen: () => this.reread(),
        onState: s => {
          setAttr(this.node, 'data-live', s);
          setText(this.status, s === 'open' ? '● live' : '○ reconnecting…');
        }
      });
      this.socket.start();
    }
    this.update();
    if (wasVisible) {
      this.throttle.request(); // the size changed
    } else {
      this.drawCharts();
    }
  }

  hidden(): void {
    this.visible = false;
    this.socket?.stop();
    this.socket = null;
    this.throttle.cancel();
    if (this.frame) {
      cancelAnimationFrame(this.frame);
      this.frame = 0;
    }
    if (this.cpTimer) {
      clearTimeout(this.cpTimer);
      this.cpTimer = null;
    }
  }

  dispose(): void {
    this.hidden();
    this.unsubscribe();
  }

  private schedule(): void {
    if (this.visible && !this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.update();
      });
    }
  }

  // ------------------------------------------------------------------ state

  private selectedSearch(): ISearch | undefined {
    return this.ctl.store.selectedSearch();
  }

  /** what the store says now: the search followed, tasks to ask about, the views */
  private update(): void {
    const store = this.ctl.store;
    const search = this.selectedSearch();
    if (store.searchId !== this.lastSearch) {
      // a search was selected (here, in the sidebar or from the DAG): draw all its trials
      this.lastSearch = store.searchId;
      if (store.searchId) {
        this.follow = store.searchId;
        this.choose(trialTasks(search), false);
      }
    } else if (this.follow && this.follow === store.searchId) {
      const more = trialTasks(search).filter(id => !this.chosen.includes(id));
      if (more.length) {
        this.choose([...this.chosen, ...more], false);
      }
    }
    if (this.focus === null && this.chosen.length) {
      this.setFocus(this.chosen[0]);
    }
    this.probe();
    this.renderSide();
    this.renderTrials();
    const t = this.cp.taskId ? store.tasks.get(this.cp.taskId) : undefined;
    if (t && t.state !== this.cp.state) {
      this.loadCheckpoints(); // it ended (or started): what it saved may have changed
    }
  }

  private overlaySearch(): void {
    const search = this.selectedSearch();
    if (!search) {
      return;
    }
    this.follow = search.id;
    this.choose(trialTasks(search));
  }

  private choose(ids: string[], redraw = true): void {
    this.chosen = [...new Set(ids)];
    for (const id of this.chosen) {
      if (!this.data.has(id) && !this.loading.has(id)) {
        void this.load(id);
      }
    }
    if (this.focus && !this.chosen.includes(this.focus) && !this.isCandidate(this.focus)) {
      this.setFocus(this.chosen[0] ?? null);
    }
    if (redraw) {
      this.renderSide();
    }
    this.throttle.request();
  }

  private isCandidate(id: string): boolean {
    return !!this.probes.get(id)?.names.length || this.live.has(id);
  }

  /** read a task's series (again) */
  private async load(id: string): Promise<void> {
    this.loading.add(id);
    this.stale.delete(id);
    try {
      const answer = await this.ctl.api.request<IMetricAnswer>('GET', `tasks/${encodeURIComponent(id)}/metrics`, {
        query: { max_points: MAX_POINTS },
        what: `reading the metrics of ${id}`
      });
      this.data.set(id, answer.series || []);
      const t = this.ctl.store.tasks.get(id);
      this.probes.set(id, { names: answer.names || [], state: t?.state ?? '' });
    } catch (err) {
      if (!this.data.has(id)) {
        this.data.set(id, []);
      }
      console.warn(`jupyter-orch: the metrics of ${id} could not be read`, err);
    } finally {
      this.loading.delete(id);
    }
    if (this.stale.has(id) && this.chosen.includes(id)) {
      void this.load(id);
      return;
    }
    this.throttle.request();
    this.schedule();
  }

  /** everything read again: the socket (re)connected, points may have been missed */
  private reread(): void {
    for (const id of this.chosen) {
      if (this.loading.has(id)) {
        this.stale.add(id);
      } else {
        void this.load(id);
      }
    }
  }

  /** ask GET /metrics (one point) of the newest tasks whether they reported metrics */
  private probe(): void {
    if (!this.visible) {
      return;
    }
    const want = toProbe(this.ctl.store.tasks.values(), this.probes).filter(id => !this.probing.has(id));
    for (const id of want) {
      if (this.probing.size >= PROBES_AT_ONCE) {
        return;
      }
      this.probing.add(id);
      const state = this.ctl.store.tasks.get(id)?.state ?? '';
      void this.ctl.api
        .request<IMetricAnswer>('GET', `tasks/${encodeURIComponent(id)}/metrics`, { query: { max_points: 1 }, what: `reading the metrics of ${id}` })
        .then(
          a => this.probes.set(id, { names: a.names || [], state }),
          () => this.probes.set(id, { names: [], state })
        )
        .finally(() => {
          this.probing.delete(id);
          this.schedule();
        });
    }
  }

  private onEvent(msg: { type: string }): void {
    if (msg.type !== 'metrics') {
      return; // task events: the store has them from the lab's own socket
    }
    const ev = msg as IMetricsEvent;
    const id = ev.task_id;
    if (!this.live.has(id)) {
      this.live.add(id);
      this.schedule(); // it joins the list
    }
    const p = this.probes.get(id);
    const names = Object.keys(ev.points[0]?.[3] || {});
    if (!p || names.some(n => !p.names.includes(n))) {
      this.probes.set(id, { names: [...new Set([...(p?.names || []), ...names])], state: this.ctl.store.tasks.get(id)?.state ?? '' });
    }
    if (this.chosen.includes(id)) {
      if (this.loading.has(id)) {
        this.stale.add(id);
      } else {
        const series = this.data.get(id) || [];
        this.data.set(id, series);
        appendPoints(series, ev, MAX_POINTS);
        this.throttle.request();
      }
    }
    if (id === this.cp.taskId) {
      // a task that reports often saves checkpoints alongside: look again in a while
      if (!this.cpTimer) {
        this.cpTimer = setTimeout(() => {
          this.cpTimer = null;
          this.loadCheckpoints();
        }, 2000);
      }
    }
  }

  private label(id: string): string {
    const search = this.selectedSearch();
    const trial = search ? trialLabel(search, id) : null;
    const t = this.ctl.store.tasks.get(id);
    const name = t?.name || id.slice(0, 8);
    // a trial's task is named after its search and number already (`search #3 lr=0.1`)
    return trial && !name.includes(trial.split(' ')[0]) ? `${name} ${trial}` : name;
  }

  private setFocus(id: string | null): void {
    if (this.focus === id) {
      return;
    }
    this.focus = id;
    this.sideKey = '';
    this.renderSide();
    this.renderTrials();
    this.loadCheckpoints(true);
  }

  // ------------------------------------------------------------------ views

  private renderSide(): void {
    const store = this.ctl.store;
    // the search picker
    const searches = store.searchList();
    const sKey = searches.map(s => `${s.id}:${s.state}`).join(',') + '|' + store.searchId;
    if (this.searchPicker.dataset.key !== sKey) {
      this.searchPicker.dataset.key = sKey;
      this.searchPicker.replaceChildren(
        h('option', { value: '', text: searches.length ? '(none)' : '(no searches yet)' }),
        ...searches.map(s => h('option', { value: s.id, text: `${s.name || s.id} · ${stateLabel(s.state)}` }))
      );
      this.searchPicker.value = store.searchId || '';
    }
    this.overlayButton.disabled = !this.selectedSearch()?.trials?.length;
    // the tasks that reported metrics (the chosen ones among them)
    const choices = metricTasks(store.tasks, this.probes, [...this.chosen, ...this.live], id => this.label(id));
    const key = JSON.stringify([choices.map(c => [c.id, c.label, c.state]), this.chosen, this.focus]);
    if (key === this.sideKey) {
      return;
    }
    this.sideKey = key;
    if (!choices.length) {
      this.taskList.replaceChildren(
        h('li', {
          class: 'jp-OrchHint',
          text: 'No task has reported metrics yet: call jupyter_orch.report(step=..., loss=...) in a task.'
        })
      );
      return;
    }
    this.taskList.replaceChildren(
      ...choices.map(c => {
        const i = this.chosen.indexOf(c.id);
        const colour = i >= 0 ? PALETTE[i % PALETTE.length] : 'transparent';
        return h(
          'li',
          {
            class: 'jp-OrchExp-task' + (c.id === this.focus ? ' jp-mod-selected' : ''),
            'data-testid': 'orch-exp-task',
            'data-id': c.id,
            'data-state': c.state,
            'data-chosen': i >= 0 ? 'true' : 'false',
            title: `${c.id} · ${stateLabel(c.state)}${c.names.length ? ' · ' + c.names.join(', ') : ''}`
          },
          h('input', { type: 'checkbox', checked: i >= 0, 'aria-label': `Draw ${c.label}` }),
          h('span', { class: 'jp-OrchExp-swatch', style: `background:${colour}` }),
          h('span', { class: 'jp-OrchExp-taskname', text: c.label }),
          h('span', { class: 'jp-OrchExp-state', text: stateLabel(c.state) })
        );
      })
    );
  }

  private drawCharts(): void {
    if (!this.visible) {
      return;
    }
    const charts = buildCharts(this.chosen, this.data);
    setAttr(this.node, 'data-chosen', String(this.chosen.length));
    // the legend: one entry per chosen task
    this.legend.replaceChildren(
      ...this.chosen.map((id, i) =>
        h(
          'span',
          { class: 'jp-OrchExp-legenditem', 'data-testid': 'orch-exp-legend-item', 'data-task': id },
          h('span', { class: 'jp-OrchExp-swatch', style: `background:${PALETTE[i % PALETTE.length]}` }),
          this.label(id)
        )
      )
    );
    if (!charts.length) {
      const loading = this.chosen.some(id => this.loading.has(id));
      this.charts.replaceChildren(
        h('div', {
          class: 'jp-OrchEmpty',
          text: this.chosen.length
            ? loading
              ? 'Reading the metrics…'
              : 'The chosen tasks have not reported metrics yet; their curves appear as they do.'
            : 'Choose tasks on the left (or a search, then “Overlay all trials”) to see their learning curves.'
        })
      );
      return;
    }
    const existing = new Map<string, HTMLElement>();
    for (const el of Array.from(this.charts.children) as HTMLElement[]) {
      if (el.dataset.metric) {
        existing.set(el.dataset.metric, el);
      }
    }
    const boxes = charts.map(
      chart => existing.get(chart.metric) || h('div', { class: 'jp-OrchExp-chart', 'data-testid': 'orch-exp-chart', 'data-metric': chart.metric })
    );
    this.charts.replaceChildren(...boxes); // placed first, so that each is measured in its cell
    charts.forEach((chart, i) => this.drawChart(boxes[i], chart));
  }

  private drawChart(box: HTMLElement, chart: IChart): void {
    const width = Math.max(260, Math.floor(box.clientWidth || this.charts.clientWidth || 400));
    const height = CHART_H;
    const ext = extent(chart.lines);
    const root = svg('svg', { width, height, class: 'jp-OrchExp-svg', role: 'img', 'aria-label': `${chart.metric} by step` });
    const title = h('div', { class: 'jp-OrchExp-charttitle', text: chart.metric });
    if (!ext) {
      box.replaceChildren(title, h('div', { class: 'jp-OrchHint', text: 'no finite values yet' }));
      return;
    }
    const pw = width - MARGIN.left - MARGIN.right;
    const ph = height - MARGIN.top - MARGIN.bottom;
    const sx = (v: number) => MARGIN.left + ((v - ext.x0) / (ext.x1 - ext.x0)) * pw;
    const sy = (v: number) => MARGIN.top + (1 - (v - ext.y0) / (ext.y1 - ext.y0)) * ph;
    const axes = svg('g', { class: 'jp-OrchExp-axes' });
    for (const t of niceTicks(ext.y0, ext.y1, 4)) {
      const y = sy(t);
      axes.appendChild(svg('line', { x1: MARGIN.left, x2: width - MARGIN.right, y1: y, y2: y, class: 'jp-OrchExp-grid' }));
      const label = svg('text', { x: MARGIN.left - 6, y: y + 4, 'text-anchor': 'end', class: 'jp-OrchExp-tick' });
      label.textContent = formatNumber(t);
      axes.appendChild(label);
    }
    for (const t of niceTicks(ext.x0, ext.x1, Math.max(2, Math.floor(pw / 80)))) {
      const x = sx(t);
      axes.appendChild(svg('line', { x1: x, x2: x, y1: height - MARGIN.bottom, y2: height - MARGIN.bottom + 4, class: 'jp-OrchExp-axis' }));
      const label = svg('text', { x, y: height - 6, 'text-anchor': 'middle', class: 'jp-OrchExp-tick' });
      label.textContent = formatNumber(t);
      axes.appendChild(label);
    }
    axes.appendChild(
      svg('rect', { x: MARGIN.left, y: MARGIN.top, width: pw, height: ph, class: 'jp-OrchExp-frame' })
    );
    root.appendChild(axes);
    const groups = [...new Set(chart.lines.map(l => l.group))];
    let total = 0;
    for (const line of chart.lines) {
      const { d, points } = linePath(line.x, line.y, sx, sy);
      total += points;
      const path = svg('path', {
        d,
        class: 'jp-OrchExp-line',
        'data-testid': 'orch-exp-line',
        'data-task': line.taskId,
        'data-group': line.group,
        'data-points': points,
        'data-count': line.count,
        stroke: PALETTE[line.index % PALETTE.length],
        'stroke-dasharray': groups.indexOf(line.group) > 0 ? '5 3' : 'none'
      });
      const tip = svg('title');
      const last = [...line.y].reverse().find(v => v !== null && v !== undefined);
      tip.textContent = `${this.label(line.taskId)}${groups.length > 1 ? ' · ' + line.group : ''}: ${chart.metric} ${formatNumber(last)} (${line.count} points)`;
      path.appendChild(tip);
      root.appendChild(path);
    }
    box.dataset.points = String(total);
    box.dataset.lines = String(chart.lines.length);
    box.replaceChildren(title, root);
    if (groups.length > 1) {
      box.appendChild(h('div', { class: 'jp-OrchHint', text: `groups: ${groups.join(', ')} (dashed after the first)` }));
    }
  }

  private renderTrials(): void {
    const store = this.ctl.store;
    const search = this.selectedSearch();
    const key = search
      ? JSON.stringify([search.id, store.searchVersion, search.trials?.map(t => [t.task_id, t.task_id ? store.tasks.get(t.task_id)?.state : '']), this.focus])
      : 'none';
    if (key === this.trialsKey) {
      return;
    }
    this.trialsKey = key;
    if (!search) {
      this.trials.replaceChildren(
        h('div', { class: 'jp-OrchExp-heading', text: 'Trials' }),
        h('div', { class: 'jp-OrchHint', text: 'Select a search above (or a search step in the DAG) to see its trials.' })
      );
      return;
    }
    const heading = h(
      'div',
      { class: 'jp-OrchExp-heading' },
      `Trials of ${search.name || search.id} · `,
      h('span', { 'data-testid': 'orch-exp-counts', text: countsText(search.counts) })
    );
    const best = h('div', { class: 'jp-OrchExp-best', 'data-testid': 'orch-exp-best', text: bestText(search) });
    if (!search.trials) {
      this.trials.replaceChildren(heading, best, h('div', { class: 'jp-OrchHint', text: store.searchError || 'Reading the trials…' }));
      return;
    }
    const cols = trialColumns(search);
    const rows = trialRows(search, id => store.tasks.get(id)?.state);
    const paramIndex = new Map(cols.filter(c => c.kind === 'param').map((c, i) => [c.name, i]));
    const table = h(
      'table',
      { class: 'jp-OrchExp-table', 'data-testid': 'orch-exp-trials', 'aria-label': `Trials, ${metricLabel(search)}` },
      h('thead', {}, h('tr', {}, ...cols.map(c => h('th', { title: c.title, text: c.label })))),
      h(
        'tbody',
        {},
        ...rows.map(r =>
          h(
            'tr',
            {
              class: (r.best ? 'jp-mod-best' : '') + (r.taskId && r.taskId === this.focus ? ' jp-mod-selected' : ''),
              'data-testid': 'orch-exp-trial',
              'data-number': r.number,
              'data-task': r.taskId || undefined,
              'data-state': r.state,
              'data-best': r.best ? 'true' : 'false',
              title: r.title || undefined
            },
            ...cols.map(c => {
              const text =
                c.kind === 'number'
                  ? r.best
                    ? `★ ${r.number}`
                    : String(r.number)
                  : c.kind === 'param'
                    ? r.params[paramIndex.get(c.name) ?? 0]
                    : c.kind === 'value'
                      ? r.value
                      : c.kind === 'step'
                        ? r.step
                        : r.stateText;
              return h('td', { 'data-col': c.kind, text });
            })
          )
        )
      )
    );
    this.trials.replaceChildren(heading, best, table);
  }

  /** read the focused task's checkpoints (again) */
  private loadCheckpoints(force = false): void {
    const id = this.focus;
    const state = id ? this.ctl.store.tasks.get(id)?.state ?? '' : '';
    if (!force && id === this.cp.taskId && state === this.cp.state && this.cp.list) {
      return;
    }
    const seq = ++this.cpSeq;
    const same = id === this.cp.taskId;
    this.cp = { taskId: id, state, list: same ? this.cp.list : null, error: null };
    this.renderCheckpoints();
    if (!id) {
      return;
    }
    this.ctl.api.checkpoints(id).then(
      list => {
        if (seq === this.cpSeq) {
          this.cp = { ...this.cp, list, error: null };
          this.renderCheckpoints();
        }
      },
      err => {
        if (seq === this.cpSeq) {
          this.cp = { ...this.cp, error: (err as Error)?.message || String(err) };
          this.renderCheckpoints();
        }
      }
    );
  }

  private renderCheckpoints(): void {
    const id = this.cp.taskId;
    const refresh = h('button', { class: 'jp-OrchButton jp-OrchExp-refresh', 'data-testid': 'orch-exp-checkpoints-refresh', text: 'Refresh', title: 'Read the checkpoints again' });
    const heading = h('div', { class: 'jp-OrchExp-heading' }, id ? `Checkpoints of ${this.label(id)} ` : 'Checkpoints ', id ? refresh : null);
    setAttr(this.checkpoints, 'data-task', id || '');
    if (!id) {
      this.checkpoints.replaceChildren(heading, h('div', { class: 'jp-OrchHint', text: 'Click a task or a trial to see the checkpoints it saved.' }));
      return;
    }
    if (this.cp.error) {
      this.checkpoints.replaceChildren(heading, h('div', { class: 'jp-OrchError', role: 'alert', text: this.cp.error }));
      return;
    }
    if (!this.cp.list) {
      this.checkpoints.replaceChildren(heading, h('div', { class: 'jp-OrchHint', text: 'Reading the checkpoints…' }));
      return;
    }
    if (!this.cp.list.length) {
      this.checkpoints.replaceChildren(
        heading,
        h('div', { class: 'jp-OrchHint', 'data-testid': 'orch-exp-no-checkpoints', text: 'No checkpoints: a task saves them with jupyter_orch.checkpoint.save(path, metadata).' })
      );
      return;
    }
    const rows = checkpointRows(this.cp.list);
    const table = h(
      'table',
      { class: 'jp-OrchExp-table', 'data-testid': 'orch-exp-checkpoints' },
      h('thead', {}, h('tr', {}, ...['step', 'size', 'saved', 'attempt', 'metadata', 'files'].map(t => h('th', { text: t })))),
      h(
        'tbody',
        {},
        ...rows.map(r =>
          h(
            'tr',
            { 'data-testid': 'orch-exp-checkpoint', 'data-id': r.id, 'data-step': r.step },
            h('td', { 'data-col': 'step', text: r.step }),
            h('td', { 'data-col': 'size', text: r.size }),
            h('td', { 'data-col': 'time', text: r.time }),
            h('td', { 'data-col': 'attempt', text: r.attempt }),
            h('td', { 'data-col': 'metadata', text: r.metadata }),
            h('td', { 'data-col': 'files', text: r.files })
          )
        )
      )
    );
    this.checkpoints.replaceChildren(heading, table);
  }
}
