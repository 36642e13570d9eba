// Workflow DAG: the selected run laid out left to right with dagre; nodes coloured by state and
// updated in place as events arrive; a click shows the step's details and its log.
import { Widget } from '@lumino/widgets';
import dagre from '@dagrejs/dagre';
import { joinUrl, API_PATH } from './api';
import { formatDuration, stateLabel } from './format';
import type { OrchController } from './controller';
import { h, setAttr, setText } from './dom';
import type { IRun, IStep } from './types';

const SVG = 'http://www.w3.org/2000/svg';
const NODE_W = 150;
const NODE_H = 36;

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    el.setAttribute(k, String(v));
  }
  return el;
}

/** node positions and edge paths for the steps (pure apart from dagre) */
export function layoutSteps(steps: IStep[]): {
  width: number;
  height: number;
  nodes: Map<string, { x: number; y: number }>;
  edges: { from: string; to: string; points: { x: number; y: number }[] }[];
} {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 14, ranksep: 36, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  const names = new Set(steps.map(s => s.name));
  for (const s of steps) {
    g.setNode(s.name, { width: NODE_W, height: NODE_H });
  }
  for (const s of steps) {
    for (const d of s.depends || []) {
      if (names.has(d)) {
        g.setEdge(d, s.name);
      }
    }
  }
  dagre.layout(g);
  const nodes = new Map<string, { x: number; y: number }>();
  for (const n of g.nodes()) {
    const v = g.node(n);
    nodes.set(n, { x: v.x, y: v.y });
  }
  const edges = g.edges().map(e => ({ from: e.v, to: e.w, points: g.edge(e).points || [] }));
  const graph = g.graph();
  return { width: graph.width || 0, height: graph.height || 0, nodes, edges };
}

export class DagView extends Widget {
  private header: HTMLDivElement;
  private canvas: HTMLDivElement;
  private details: HTMLDivElement;
  private shape = '';
  private nodeEls = new Map<string, SVGGElement>();
  private frame = 0;

  constructor(private readonly ctl: OrchController) {
    super();
    this.addClass('jp-OrchDag');
    this.node.dataset.testid = 'orch-dag';
    this.title.label = 'Workflow DAG';
    this.header = h('div', { class: 'jp-OrchDag-header' });
    this.canvas = h('div', { class: 'jp-OrchDag-canvas' });
    this.details = h('div', { class: 'jp-OrchDag-details' });
    this.node.append(this.header, this.canvas, this.details);
    this.canvas.addEventListener('click', ev => {
      const g = (ev.target as Element).closest('[data-step]');
      if (g) {
        this.ctl.store.selectStep(g.getAttribute('data-step'));
      }
    });
    this.canvas.addEventListener('keydown', ev => {
      const g = (ev.target as Element).closest('[data-step]');
      if (g && (ev.key === 'Enter' || ev.key === ' ')) {
        ev.preventDefault();
        this.ctl.store.selectStep(g.getAttribute('data-step'));
      }
    });
    ctl.store.subscribe(() => this.schedule());
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
    const run = this.ctl.store.selectedRun();
    if (!run) {
      this.shape = '';
      this.nodeEls.clear();
      setText(this.header, '');
      this.canvas.replaceChildren(
        h('div', { class: 'jp-OrchEmpty', text: 'Select a workflow run in Runs to see its steps as a graph.' })
      );
      this.details.replaceChildren();
      return;
    }
    setText(this.header, `${run.name} · ${stateLabel(run.state)}${run.duration ? ' · ' + formatDuration(run.duration) : ''}`);
    const steps = run.steps || [];
    if (!steps.length) {
      this.shape = '';
      this.canvas.replaceChildren(h('div', { class: 'jp-OrchEmpty', text: 'Loading the run’s steps…' }));
      return;
    }
    const shape = run.id + '|' + steps.map(s => `${s.name}<${(s.depends || []).join(',')}`).join(';');
    if (shape !== this.shape) {
      this.shape = shape;
      this.draw(steps);
    }
    for (const s of steps) {
      const g = this.nodeEls.get(s.name);
      if (g) {
        setAttr(g, 'data-state', s.state);
        g.classList.toggle('jp-mod-selected', this.ctl.store.selectedStep === s.name);
        const title = g.querySelector('title');
        if (title) {
          setText(title, `${s.name}: ${s.state}${s.error ? '\n' + s.error : ''}`);
        }
        const sub = g.querySelector('.jp-OrchDag-sub');
        if (sub) {
          setText(sub, stateLabel(s.state) + (s.cached ? ' (cached)' : ''));
        }
      }
    }
    this.renderDetails(run);
  }

  private draw(steps: IStep[]): void {
    const lay = layoutSteps(steps);
    this.nodeEls.clear();
    const root = svg('svg', { width: lay.width, height: lay.height, class: 'jp-OrchDag-svg' });
    root.setAttribute('viewBox', `0 0 ${lay.width} ${lay.height}`);
    const defs = svg('defs');
    const marker = svg('marker', { id: 'jp-orch-arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 6, markerHeight: 6, orient: 'auto' });
    marker.appendChild(svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'jp-OrchDag-arrow' }));
    defs.appendChild(marker);
    root.appendChild(defs);
    for (const e of lay.edges) {
      const d = e.points.map((p, i) => `${i ? 'L' : 'M'}${p.x},${p.y}`).join(' ');
      root.appendChild(svg('path', { d, class: 'jp-OrchDag-edge', 'marker-end': 'url(#jp-orch-arrow)' }));
    }
    for (const s of steps) {
      const pos = lay.nodes.get(s.name);
      if (!pos) {
        continue;
      }
      const g = svg('g', {
        class: 'jp-OrchDag-node',
        transform: `translate(${pos.x - NODE_W / 2},${pos.y - NODE_H / 2})`,
        'data-testid': 'orch-dag-node',
        'data-step': s.name,
        'data-state': s.state,
        tabindex: 0,
        role: 'button'
      });
      g.appendChild(svg('title'));
      g.appendChild(svg('rect', { width: NODE_W, height: NODE_H, rx: 5, ry: 5 }));
      const label = svg('text', { x: 8, y: 15, class: 'jp-OrchDag-label' });
      label.textContent = s.name.length > 22 ? s.name.slice(0, 21) + '…' : s.name;
      const sub = svg('text', { x: 8, y: 29, class: 'jp-OrchDag-sub' });
      g.append(label, sub);
      root.appendChild(g);
      this.nodeEls.set(s.name, g);
    }
    this.canvas.replaceChildren(root);
  }

  private renderDetails(run: IRun): void {
    const name = this.ctl.store.selectedStep;
    const s = run.steps?.find(x => x.name === name);
    if (!s) {
      this.details.replaceChildren(h('div', { class: 'jp-OrchHint', text: 'Click a step for its log, output notebook and error.' }));
      return;
    }
    const key = JSON.stringify([s.name, s.state, s.error, s.notebook_url, s.duration, s.worker_id, s.attempt]);
    if (this.details.dataset.key === key) {
      return;
    }
    this.details.dataset.key = key;
    const rows: (Node | string)[] = [
      h('div', { class: 'jp-OrchDag-stepname' }, h('strong', { text: s.name }), ` · ${s.kind} · ${stateLabel(s.state)}`),
      h('div', {
        class: 'jp-OrchHint',
        text: [s.attempt ? `attempt ${s.attempt}` : '', s.duration ? formatDuration(s.duration) : '', s.target || '']
          .filter(Boolean)
          .join(' · ')
      })
    ];
    if (s.notebook_url) {
      const href = joinUrl(this.ctl.api.baseUrl, API_PATH, s.notebook_url.replace(/^\/?orch\/api\/v1\//, ''));
      rows.push(
        h('a', { href: href + (href.includes('?') ? '&' : '?') + 'download=1', target: '_blank', rel: 'noopener', class: 'jp-OrchLink', text: 'Output notebook ⤓' })
      );
    }
    if (s.error) {
      rows.push(h('pre', { class: 'jp-OrchErrorText', text: s.error }));
    }
    if (s.reason && !s.error) {
      rows.push(h('div', { class: 'jp-OrchHint', text: s.reason }));
    }
    rows.push(h('div', { class: 'jp-OrchHint', text: 'Its log is in the Logs section.' }));
    this.details.replaceChildren(...rows);
  }
}
