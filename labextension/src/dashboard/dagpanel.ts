// The dashboard's 'dag' panel: the whole DAG of a workflow run (the selected one, else the one
// shown before, else the newest), laid out by daglayout.ts (layers left to right, edges routed
// around the boxes), scaled to fit the panel (scrolling only below a readable size). Nodes are
// coloured by state with their name, state and duration, updated in place from the store; a
// search step shows its trials and best value and opens the experiments panel. A click on a
// node selects its step's task and opens its log.
import { h, setAttr, setText } from '../dom';
import { formatDuration, stateLabel } from '../format';
import type { OrchController } from '../controller';
import { bestText, countsText } from '../trials';
import type { IRun } from '../types';
import { edgePath, fitScale, IDagLayout, layoutDag } from './daglayout';
import { clip, DagStep, dagShape, runToShow, searchLine, stepStatus } from './dagnodes';
import type { IDashboardPanel } from './panel';

const SVG_NS = 'http://www.w3.org/2000/svg';
/** the event the dashboard answers by showing the sidebar's Logs (as the timeline's bars do) */
const OPEN_LOG_EVENT = 'orch-open-log';
const MIN_SCALE = 0.55;
const MAX_SCALE = 1.25;
const NODE_W = 170;

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    el.setAttribute(k, String(v));
  }
  return el;
}

interface INodeEls {
  g: SVGGElement;
  title: SVGTitleElement;
  status: SVGTextElement;
  search: SVGTextElement | null;
}

export class DagPanel implements IDashboardPanel {
  readonly id = 'dag';
  readonly title = 'Workflow DAG';
  readonly node: HTMLDivElement;
  private toolbar: HTMLDivElement;
  private picker: HTMLSelectElement;
  private summary: HTMLSpanElement;
  private canvas: HTMLDivElement;
  private details: HTMLDivElement;
  private root: SVGSVGElement | null = null;
  private layout: IDagLayout | null = null;
  private shape = '';
  private runId: string | null = null;
  private nodeEls = new Map<string, INodeEls>();
  private visible = false;
  private frame = 0;
  private ticker: ReturnType<typeof setInterval> | null = null;
  private unsubscribe: () => void;
  private asked = new Set<string>();
  private pickerKey = '';

  constructor(private readonly ctl: OrchController) {
    this.node = h('div', { class: 'jp-OrchDagP' });
    this.picker = h('select', { class: 'jp-OrchDagP-run', 'data-testid': 'orch-dagp-run', 'aria-label': 'Workflow run' });
    this.summary = h('span', { class: 'jp-OrchDagP-summary', 'data-testid': 'orch-dagp-summary' });
    this.toolbar = h('div', { class: 'jp-OrchDash-toolbar jp-OrchDagP-toolbar' }, this.picker, this.summary);
    this.canvas = h('div', { class: 'jp-OrchDagP-canvas', 'data-testid': 'orch-dagp-canvas' });
    this.details = h('div', { class: 'jp-OrchDagP-details', 'data-testid': 'orch-dagp-details' });
    this.node.append(this.toolbar, this.canvas, this.details);
    this.picker.addEventListener('change', () => {
      if (this.picker.value) {
        this.ctl.selectRow('workflow', this.picker.value);
      }
    });
    this.canvas.addEventListener('click', ev => this.onClick(ev));
    this.canvas.addEventListener('keydown', ev => {
      if (ev.key === 'Enter' || ev.key === ' ') {
        this.onClick(ev);
      }
    });
    this.details.addEventListener('click', ev => {
      const link = (ev.target as Element).closest('[data-search]');
      if (link) {
        this.openSearch(link.getAttribute('data-search') || '');
      }
    });
    this.unsubscribe = ctl.store.subscribe(() => this.schedule());
  }

  shown(): void {
    this.visible = true;
    this.shape = this.shape && this.root ? this.shape : '';
    this.render();
    this.fit();
    if (!this.ticker) {
      this.ticker = setInterval(() => this.tick(), 1000);
    }
  }

  hidden(): void {
    this.visible = false;
    if (this.frame) {
      cancelAnimationFrame(this.frame);
      this.frame = 0;
    }
    if (this.ticker) {
      clearInterval(this.ticker);
      this.ticker = null;
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
        this.render();
      });
    }
  }

  /** the run shown now */
  private run(): IRun | undefined {
    const sel = this.ctl.store.selection;
    return runToShow(this.ctl.store.runs, sel?.kind === 'workflow' ? sel.id : null, this.runId);
  }

  render(): void {
    const store = this.ctl.store;
    this.renderPicker();
    const run = this.run();
    if (!run) {
      this.clear('No workflow runs yet: submit one (client.submit_workflow or jupyter orch submit) to see its graph here.');
      setText(this.summary, '');
      return;
    }
    this.runId = run.id;
    setAttr(this.node, 'data-run', run.id);
    if (this.picker.value !== run.id) {
      this.picker.value = run.id;
    }
    const steps = (run.steps || []) as DagStep[];
    const done = steps.filter(s => ['succeeded', 'failed', 'cancelled', 'upstream_failed'].includes(s.state)).length;
    setText(
      this.summary,
      [stateLabel(run.state), steps.length ? `${done}/${steps.length} steps done` : `${run.step_count} steps`, formatDuration(run.duration)]
        .filter(Boolean)
        .join(' · ')
    );
    if (!steps.length) {
      if (!this.asked.has(run.id)) {
        this.asked.add(run.id);
        void this.ctl.loadRun(run.id);
      }
      this.clear('Loading the run’s steps…');
      return;
    }
    const shape = dagShape(run.id, steps);
    if (shape !== this.shape || !this.root) {
      this.shape = shape;
      this.draw(steps);
      this.fit();
    }
    const now = Date.now() / 1000;
    for (const s of steps) {
      const el = this.nodeEls.get(s.name);
      if (!el) {
        continue;
      }
      setAttr(el.g, 'data-state', s.state);
      setAttr(el.g, 'data-task', s.task_id);
      el.g.classList.toggle('jp-mod-selected', store.selectedStep === s.name && store.selection?.id === run.id);
      setText(el.title, `${s.name}: ${stateLabel(s.state)}${s.error ? '\n' + s.error : ''}`);
      setText(el.status, stepStatus(s, now));
      if (el.search) {
        const search = s.search_id ? store.searches.get(s.search_id) : undefined;
        if (s.search_id && !search && !this.asked.has(s.search_id)) {
          this.asked.add(s.search_id);
          void this.ctl.api
            .search(s.search_id)
            .then(found => store.putSearch(found))
            .catch(() => undefined);
        }
        setText(el.search, searchLine(s, search));
        setAttr(el.g, 'data-search', s.search_id || '');
      }
    }
    this.renderDetails(run, steps);
  }

  private renderPicker(): void {
    const runs = [...this.ctl.store.runs.values()].sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? 1 : -1)).slice(0, 200);
    const key = runs.map(r => `${r.id}:${r.state}`).join(',');
    if (key === this.pickerKey) {
      return;
    }
    this.pickerKey = key;
    this.picker.replaceChildren(
      ...runs.map(r => h('option', { value: r.id, text: `${r.name || r.id} · ${stateLabel(r.state)} · ${r.id.slice(0, 8)}` }))
    );
    this.picker.hidden = runs.length === 0;
    if (this.runId) {
      this.picker.value = this.runId;
    }
  }

  private clear(message: string): void {
    this.shape = '';
    this.root = null;
    this.layout = null;
    this.nodeEls.clear();
    this.canvas.replaceChildren(h('div', { class: 'jp-OrchEmpty', text: message }));
    this.details.replaceChildren();
  }

  private draw(steps: DagStep[]): void {
    const withSearch = steps.some(s => s.search);
    const nodeH = withSearch ? 56 : 42;
    const lay = layoutDag(
      steps.map(s => ({ id: s.name, deps: s.depends || [] })),
      { nodeW: NODE_W, nodeH }
    );
    this.layout = lay;
    this.nodeEls.clear();
    const root = svg('svg', {
      class: 'jp-OrchDagP-svg',
      'data-testid': 'orch-dagp-svg',
      viewBox: `0 0 ${lay.width} ${lay.height}`,
      'data-width': lay.width,
      'data-height': lay.height,
      role: 'group',
      'aria-label': `Workflow graph: ${steps.length} steps`
    });
    const defs = svg('defs');
    const marker = svg('marker', {
      id: 'jp-orch-dagp-arrow',
      viewBox: '0 0 10 10',
      refX: 9,
      refY: 5,
      markerWidth: 7,
      markerHeight: 7,
      orient: 'auto'
    });
    marker.appendChild(svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'jp-OrchDagP-arrow' }));
    defs.appendChild(marker);
    root.appendChild(defs);
    const edges = svg('g', { class: 'jp-OrchDagP-edges' });
    for (const e of lay.edges) {
      edges.appendChild(
        svg('path', {
          d: edgePath(e.points),
          class: 'jp-OrchDagP-edge',
          'data-testid': 'orch-dagp-edge',
          'data-from': e.from,
          'data-to': e.to,
          'marker-end': 'url(#jp-orch-dagp-arrow)'
        })
      );
    }
    root.appendChild(edges);
    for (const s of steps) {
      const box = lay.nodes.get(s.name);
      if (!box) {
        continue;
      }
      const g = svg('g', {
        class: 'jp-OrchDagP-node',
        'data-testid': 'orch-dagp-node',
        'data-step': s.name,
        'data-state': s.state,
        tabindex: 0,
        role: 'button'
      });
      const title = svg('title');
      const rect = svg('rect', { x: box.x, y: box.y, width: box.w, height: box.h, rx: 6, ry: 6 });
      const name = svg('text', { x: box.x + 9, y: box.y + 17, class: 'jp-OrchDagP-name' });
      name.textContent = clip(s.name, 22);
      const status = svg('text', { x: box.x + 9, y: box.y + 33, class: 'jp-OrchDagP-status' });
      g.append(title, rect, name, status);
      let search: SVGTextElement | null = null;
      if (s.search) {
        search = svg('text', { x: box.x + 9, y: box.y + 49, class: 'jp-OrchDagP-search', 'data-testid': 'orch-dagp-search' });
        g.append(search);
      }
      root.appendChild(g);
      this.nodeEls.set(s.name, { g, title, status, search });
    }
    this.root = root;
    this.canvas.replaceChildren(root);
  }

  /** scale the drawing to the panel (width and height; scrolling below MIN_SCALE) */
  private fit(): void {
    if (!this.root || !this.layout || !this.visible) {
      return;
    }
    const w = this.canvas.clientWidth - 4;
    const hgt = this.canvas.clientHeight - 4;
    if (w <= 0) {
      return;
    }
    const scale = fitScale(this.layout.width, this.layout.height, w, hgt, MIN_SCALE, MAX_SCALE);
    setAttr(this.root, 'width', String(Math.round(this.layout.width * scale)));
    setAttr(this.root, 'height', String(Math.round(this.layout.height * scale)));
    setAttr(this.root, 'data-scale', scale.toFixed(3));
  }

  /** running steps' durations go on while nothing else changes */
  private tick(): void {
    const run = this.run();
    if (this.visible && run?.steps?.some(s => s.state === 'running')) {
      this.schedule();
    }
  }

  private onClick(ev: Event): void {
    const target = ev.target as Element;
    const run = this.run();
    if (!run) {
      return;
    }
    const searchText = target.closest('.jp-OrchDagP-search');
    const g = target.closest('[data-step]');
    if (!g) {
      return;
    }
    ev.preventDefault();
    const name = g.getAttribute('data-step') || '';
    const step = (run.steps || []).find(s => s.name === name) as DagStep | undefined;
    if (!step) {
      return;
    }
    const store = this.ctl.store;
    if (store.selection?.kind !== 'workflow' || store.selection.id !== run.id) {
      this.ctl.selectRow('workflow', run.id);
    }
    store.selectStep(name);
    if (searchText && step.search_id) {
      this.openSearch(step.search_id);
      return;
    }
    this.node.dispatchEvent(new CustomEvent(OPEN_LOG_EVENT, { bubbles: true, detail: { taskId: step.task_id } }));
  }

  /** select the search and show it in the experiments panel (its tab, when the dashboard has one) */
  private openSearch(id: string): void {
    if (!id) {
      return;
    }
    this.ctl.selectSearch(id);
    const dash = this.node.closest('.jp-OrchDashboard');
    const tab = dash?.querySelector<HTMLElement>('[data-testid="orch-dash-tab-experiments"]');
    tab?.click();
  }

  private renderDetails(run: IRun, steps: DagStep[]): void {
    const store = this.ctl.store;
    const name = store.selection?.id === run.id ? store.selectedStep : null;
    const s = steps.find(x => x.name === name);
    if (!s) {
      const key = 'hint';
      if (this.details.dataset.key !== key) {
        this.details.dataset.key = key;
        this.details.replaceChildren(
          h('span', { class: 'jp-OrchHint', text: 'Click a step for its details; its log opens in the sidebar’s Logs section.' })
        );
      }
      return;
    }
    const search = s.search_id ? store.searches.get(s.search_id) : undefined;
    const now = Date.now() / 1000;
    const key = JSON.stringify([run.id, s.name, stepStatus(s, now), s.error, s.reason, search?.updated_at, search?.counts]);
    if (this.details.dataset.key === key) {
      return;
    }
    this.details.dataset.key = key;
    const rows: (Node | string)[] = [
      h(
        'div',
        { class: 'jp-OrchDagP-stepname' },
        h('strong', { text: s.name }),
        ` · ${s.kind}${s.target ? ' ' + clip(s.target, 60) : ''} · ${stepStatus(s, now)}`
      )
    ];
    if (s.search) {
      rows.push(
        h(
          'div',
          { class: 'jp-OrchHint' },
          search ? `${countsText(search.counts)} · ${bestText(search)} ` : 'A search step: its trials are copies of the step. ',
          s.search_id
            ? h('button', { class: 'jp-OrchButton', 'data-search': s.search_id, 'data-testid': 'orch-dagp-open-search', text: 'Learning curves and trials →' })
            : null
        )
      );
    }
    if (s.error) {
      rows.push(h('pre', { class: 'jp-OrchErrorText', text: s.error }));
    } else if (s.reason) {
      rows.push(h('div', { class: 'jp-OrchHint', text: s.reason }));
    }
    this.details.replaceChildren(...rows);
  }
}
