// Workers: each with labels and slots (and the task in each), each GPU with utilisation and
// memory bars from heartbeats, and the cluster's free GPUs per node (kubernetes provider).
import { Widget } from '@lumino/widgets';
import { formatBytes, formatUsage, slotHolders } from './format';
import type { OrchController } from './controller';
import { h } from './dom';
import type { IGpu, IWorker } from './types';

/** a horizontal bar filled to `fraction` (0..1; null: empty), with `label` over it */
export function bar(fraction: number | null, label: string, kind: string): HTMLElement {
  const pct = fraction === null || !isFinite(fraction) ? 0 : Math.max(0, Math.min(1, fraction)) * 100;
  const fill = h('div', { class: `jp-OrchBar-fill jp-OrchBar-${kind}` });
  fill.style.width = `${pct.toFixed(1)}%`;
  return h('div', { class: 'jp-OrchBar', title: label }, fill, h('span', { class: 'jp-OrchBar-label', text: label }));
}

export class WorkersView extends Widget {
  private frame = 0;
  private lastKey = '';

  constructor(private readonly ctl: OrchController) {
    super();
    this.addClass('jp-OrchWorkers');
    this.node.dataset.testid = 'orch-workers';
    this.title.label = 'Workers';
    this.node.addEventListener('click', ev => {
      const a = (ev.target as Element).closest('[data-task]') as HTMLElement | null;
      if (a?.dataset.task) {
        this.ctl.selectRow('task', a.dataset.task);
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

  private taskName(id: string): string {
    const t = this.ctl.store.tasks.get(id);
    return t ? t.name || id : id.slice(0, 8) + '…';
  }

  render(): void {
    const store = this.ctl.store;
    const workers = [...store.workers.values()].sort((a, b) => a.name.localeCompare(b.name));
    const provider = store.provider;
    const key = JSON.stringify([this.ctl.error?.code, workers, provider, this.ctl.info?.provider, workers.map(w => (w.running || []).map(id => store.tasks.get(id)?.name))]);
    if (key === this.lastKey) {
      return;
    }
    this.lastKey = key;
    const out: HTMLElement[] = [];
    if (this.ctl.error?.code === 'no_extension') {
      out.push(h('div', { class: 'jp-OrchEmpty', text: 'Workers appear here once the orchestrator runs on this server (see Runs).' }));
    } else if (!workers.length) {
      out.push(this.emptyState());
    }
    for (const w of workers) {
      out.push(this.renderWorker(w));
    }
    const nodes = provider?.cluster?.nodes;
    if (provider?.cluster) {
      const c = provider.cluster;
      const section = h('div', { class: 'jp-OrchCluster' }, h('div', { class: 'jp-OrchSubhead', text: `Cluster GPUs (${c.gpus_free ?? 0} free)` }));
      if (c.error) {
        section.append(h('div', { class: 'jp-OrchHint', text: c.error }));
      }
      for (const n of nodes || []) {
        section.append(
          h(
            'div',
            { class: 'jp-OrchClusterNode', 'data-testid': 'orch-cluster-node', 'data-name': n.name },
            h('span', { class: 'jp-OrchClusterNode-name', text: `${n.name}${n.gpu_type ? ' · ' + n.gpu_type : ''}${n.schedulable === false ? ' (cordoned)' : ''}` }),
            bar(n.allocatable ? n.free / n.allocatable : 0, `${n.free}/${n.allocatable} GPUs free`, 'free')
          )
        );
      }
      if (!(nodes || []).length && !c.error) {
        section.append(h('div', { class: 'jp-OrchHint', text: 'No GPU nodes reported yet.' }));
      }
      out.push(section);
    }
    this.node.replaceChildren(...out);
  }

  private emptyState(): HTMLElement {
    const provider = this.ctl.info?.provider || this.ctl.store.provider?.name || '';
    const hint = (this.ctl.store.provider?.hint as string | undefined) || '';
    const lines: (HTMLElement | string)[] = [h('strong', { text: 'No workers yet.' })];
    if (provider === 'kubernetes') {
      lines.push(h('p', { text: hint || 'Worker pods start when tasks need them: submit a task and one appears here.' }));
    } else if (provider === 'local') {
      lines.push(
        h('p', { text: 'The local provider starts workers with the server; set how many with c.LocalProvider.workers (e.g. jupyter lab --LocalProvider.workers=2), or start one by hand:' }),
        h('code', { text: 'jupyter orch worker' })
      );
    } else {
      lines.push(
        h('p', { text: 'Start a worker anywhere that can reach this server, with a worker token:' }),
        h('code', { text: 'jupyter orch token create my-worker' }),
        h('code', { text: 'jupyter orch worker --server URL --token TOKEN' })
      );
    }
    return h('div', { class: 'jp-OrchEmpty jp-OrchEmpty-box', 'data-testid': 'orch-empty-workers' }, ...lines);
  }

  private renderWorker(w: IWorker): HTMLElement {
    const m = w.metrics || {};
    // one line at the sidebar's width: name, size, its slots; the host in the tooltip
    const slots = h('span', { class: 'jp-OrchSlots' });
    slotHolders(w.running || [], w.slots_used, w.slots).forEach((id, i) => {
      slots.append(
        id
          ? h('span', { class: 'jp-OrchSlot jp-mod-busy', 'data-task': id, title: `slot ${i + 1}: ${id}`, text: this.taskName(id) })
          : id === null
            ? h('span', { class: 'jp-OrchSlot jp-mod-busy', title: `slot ${i + 1}: another user's task`, text: 'in use' })
            : h('span', { class: 'jp-OrchSlot', title: `slot ${i + 1}: free`, text: 'free' })
      );
    });
    const head = h(
      'div',
      {
        class: 'jp-OrchWorker-head',
        title: `${w.name}${w.hostname ? ' on ' + w.hostname : ''} · ${w.slots_used}/${w.slots} slots in use · ${w.cpus} CPU · ${formatBytes(w.memory)} · ${w.state}`
      },
      h('span', { class: `jp-OrchDot`, 'data-state': w.state === 'connected' ? 'running' : 'cancelled' }),
      h('strong', { class: 'jp-OrchWorker-name', text: w.name }),
      h('span', { class: 'jp-OrchHint', text: `${w.cpus} CPU · ${formatBytes(w.memory)}${w.state !== 'connected' ? ' · ' + w.state : ''}` }),
      slots
    );
    const labelChips = Object.entries(w.labels || {}).map(([k, v]) => h('span', { class: 'jp-OrchChip', text: `${k}=${v}` }));
    const labels = labelChips.length ? h('div', { class: 'jp-OrchLabels' }, ...labelChips) : null;
    const metrics = h('div', { class: 'jp-OrchMetrics' });
    if (typeof m.cpu_percent === 'number') {
      metrics.append(bar(m.cpu_percent / 100, `CPU ${Math.round(m.cpu_percent)}%`, 'util'));
    }
    if (typeof m.memory_used === 'number' && m.memory_total) {
      metrics.append(bar(m.memory_used / m.memory_total, `RAM ${formatUsage(m.memory_used, m.memory_total)}`, 'mem'));
    }
    const holders = this.ctl.store.gpuHolders(w);
    const gpus = w.gpus.map(g => this.renderGpu(g, holders.get(g.index) || null));
    return h('div', { class: 'jp-OrchWorker', 'data-testid': 'orch-worker', 'data-name': w.name, 'data-state': w.state }, head, labels, metrics, ...gpus);
  }

  private renderGpu(g: IGpu, holder: string | null): HTMLElement {
    const total = g.memory_total || g.memory || 0;
    return h(
      'div',
      { class: 'jp-OrchGpu', 'data-testid': 'orch-gpu', 'data-index': g.index },
      h(
        'div',
        { class: 'jp-OrchGpu-head' },
        h('span', { text: `GPU ${g.index} · ${g.model || 'GPU'} · ${formatBytes(total)}` }),
        holder
          ? h('span', { class: 'jp-OrchLink', 'data-task': holder, title: holder, text: this.taskName(holder) })
          : g.busy
            ? h('span', { class: 'jp-OrchHint', title: "another user's task", text: 'in use' })
            : h('span', { class: 'jp-OrchHint', text: 'free' })
      ),
      h(
        'div',
        { class: 'jp-OrchGpu-bars' },
        bar(typeof g.utilization === 'number' ? g.utilization / 100 : null, typeof g.utilization === 'number' ? `util ${g.utilization}%` : 'util n/a', 'util'),
        bar(typeof g.memory_used === 'number' && total ? g.memory_used / total : null, typeof g.memory_used === 'number' ? `mem ${formatUsage(g.memory_used, total)}` : 'mem n/a', 'mem')
      )
    );
  }
}
