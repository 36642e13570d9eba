// Workflow steps: the selected run's steps as a compact list in dependency order (each with
// its state, duration and the steps it waits for), updated in place as events arrive; a click
// shows the step's details and its log. A list reads at the sidebar's default width (~250 px)
// and for any number of steps; the whole graph, edges drawn, is the dashboard's (main area).
import { Widget } from '@lumino/widgets';
import { joinUrl, API_PATH } from './api';
import { formatDuration, orderSteps, stateLabel, stepMeta } from './format';
import type { OrchController } from './controller';
import { h, setAttr, setText } from './dom';
import type { IRun, IStep } from './types';

const SVG = 'http://www.w3.org/2000/svg';

export class DagView extends Widget {
  private header: HTMLDivElement;
  private canvas: HTMLDivElement;
  private details: HTMLDivElement;
  private shape = '';
  private nodeEls = new Map<string, HTMLElement>();
  private frame = 0;

  constructor(private readonly ctl: OrchController) {
    super();
    this.addClass('jp-OrchDag');
    this.node.dataset.testid = 'orch-dag';
    this.title.label = 'Workflow steps';
    this.header = h('div', { class: 'jp-OrchDag-header' });
    this.canvas = h('div', { class: 'jp-OrchDag-canvas jp-OrchSteps', role: 'list', 'data-testid': 'orch-dag-steps' });
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
      this.header.title = '';
      this.canvas.replaceChildren(
        h('div', { class: 'jp-OrchEmpty', text: 'Select a workflow run in Runs to see its steps.' })
      );
      delete this.details.dataset.key;
      this.details.replaceChildren();
      return;
    }
    const steps = run.steps || [];
    const done = steps.filter(s => ['succeeded', 'failed', 'cancelled', 'upstream_failed'].includes(s.state)).length;
    const head = [run.name, stateLabel(run.state), steps.length ? `${done}/${steps.length} steps done` : '', run.duration ? formatDuration(run.duration) : ''];
    setText(this.header, head.filter(Boolean).join(' · '));
    this.header.title = `Workflow run ${run.id}`;
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
      const el = this.nodeEls.get(s.name);
      if (!el) {
        continue;
      }
      setAttr(el, 'data-state', s.state);
      el.classList.toggle('jp-mod-selected', this.ctl.store.selectedStep === s.name);
      setAttr(el, 'title', `${s.name}: ${stateLabel(s.state)}${s.error ? '\n' + s.error : s.reason ? '\n' + s.reason : ''}\nClick for its log, output notebook and error.`);
      setText(el.querySelector('.jp-OrchStep-state') as HTMLElement, stateLabel(s.state) + (s.cached ? ' (cached)' : ''));
      setText(el.querySelector('.jp-OrchStep-meta') as HTMLElement, stepMeta(s));
    }
    this.renderDetails(run);
  }

  /** one row per step: a state marker, its name and state, and a line of what it waits for */
  private draw(steps: IStep[]): void {
    this.nodeEls.clear();
    const rows: HTMLElement[] = [];
    for (const { step: s, depth } of orderSteps(steps)) {
      // the marker is a small shape filled with the state's colour (as the graph's nodes were)
      const marker = document.createElementNS(SVG, 'svg');
      marker.setAttribute('class', 'jp-OrchStep-marker');
      marker.setAttribute('width', '10');
      marker.setAttribute('height', '10');
      marker.setAttribute('viewBox', '0 0 10 10');
      marker.setAttribute('aria-hidden', 'true');
      const rect = document.createElementNS(SVG, 'rect');
      for (const [k, v] of Object.entries({ x: 1, y: 1, width: 8, height: 8, rx: 2, ry: 2 })) {
        rect.setAttribute(k, String(v));
      }
      marker.appendChild(rect);
      const el = h(
        'div',
        {
          class: 'jp-OrchStep',
          'data-testid': 'orch-dag-node',
          'data-step': s.name,
          'data-state': s.state,
          'data-depth': depth,
          role: 'listitem',
          tabindex: 0
        },
        h(
          'div',
          { class: 'jp-OrchStep-line' },
          marker,
          h('span', { class: 'jp-OrchStep-name', text: s.name }),
          h('span', { class: 'jp-OrchStep-state' })
        ),
        h('div', { class: 'jp-OrchStep-meta' })
      );
      rows.push(el);
      this.nodeEls.set(s.name, el);
    }
    this.canvas.replaceChildren(...rows);
  }

  private renderDetails(run: IRun): void {
    const name = this.ctl.store.selectedStep;
    const s = run.steps?.find(x => x.name === name);
    if (!s) {
      // nothing selected: no details box (the hint is each step's tooltip), so the steps get the room
      delete this.details.dataset.key;
      this.details.replaceChildren();
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
