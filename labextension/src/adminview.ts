// Admin: for those who may read everyone's work (JupyterHub scope custom:orch:read-all), every
// user's running and queued tasks with their owner, and GPUs held and quota use per user and per
// group; with custom:orch:admin (or as a hub admin), a Cancel button on anyone's task.
import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';
import { AdminModel, atLimit, quotaLine, totalsLine } from './admin';
import type { OrchController } from './controller';
import { h } from './dom';
import { formatResources, shortId, stateLabel } from './format';
import type { IGroupHolding, ITask, IUse, IUserHolding } from './types';
import { bar } from './workersview';

const SHOWN = 200; // task rows drawn at most (the rest are counted)

export class AdminView extends Widget {
  private frame = 0;
  private lastKey = '';
  private poll: ReturnType<typeof setInterval>;
  private unsubscribe: () => void;

  constructor(
    private readonly ctl: OrchController,
    readonly model: AdminModel,
    pollSeconds = 10
  ) {
    super();
    this.addClass('jp-OrchAdmin');
    this.node.dataset.testid = 'orch-admin';
    this.title.label = 'Admin';
    this.title.caption = "Every user's running and queued work, GPUs held and quota use";
    this.node.addEventListener('click', ev => this.onClick(ev));
    const offModel = model.subscribe(() => this.schedule());
    const offStore = ctl.store.subscribe(() => this.schedule()); // workers' names, the rights
    this.unsubscribe = () => {
      offModel();
      offStore();
    };
    // the holdings also change without a task event (workers come and go)
    this.poll = setInterval(() => {
      if (this.isVisible && !model.loading) {
        model.loadHoldings().catch(() => undefined);
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

  private get mayCancel(): boolean {
    return !!this.ctl.info?.rights?.admin;
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
    const m = this.model;
    const rows = m.rows();
    const workers = rows.map(t => (t.worker_id ? this.ctl.store.workers.get(t.worker_id)?.name : ''));
    const key = JSON.stringify([m.error, m.loading && !m.holdings, m.holdings, rows, workers, this.mayCancel]);
    if (key === this.lastKey) {
      return;
    }
    this.lastKey = key;
    const out: HTMLElement[] = [];
    if (m.error) {
      out.push(h('div', { class: 'jp-OrchError', role: 'alert', text: m.error }));
    }
    const holdings = m.holdings;
    if (!holdings) {
      out.push(h('div', { class: 'jp-OrchEmpty', text: m.loading ? 'Loading…' : 'No holdings read yet.' }));
      this.node.replaceChildren(...out);
      return;
    }
    out.push(
      h('div', { class: 'jp-OrchAdmin-summary', 'data-testid': 'orch-admin-summary', text: totalsLine(holdings) })
    );
    out.push(h('div', { class: 'jp-OrchSubhead', text: 'Users' }));
    if (!holdings.users.length) {
      out.push(h('div', { class: 'jp-OrchHint', text: 'Nobody has work running or queued.' }));
    }
    for (const u of holdings.users) {
      out.push(this.renderUse('user', u.user, u, userHint(u), holdings.capacity.gpus));
    }
    if (holdings.groups.length) {
      out.push(h('div', { class: 'jp-OrchSubhead', text: 'Groups' }));
      for (const g of holdings.groups) {
        out.push(this.renderUse('group', g.group, g, groupHint(g), holdings.capacity.gpus));
      }
    }
    out.push(h('div', { class: 'jp-OrchSubhead', text: `Running and queued (${rows.length})` }));
    for (const t of rows.slice(0, SHOWN)) {
      out.push(this.renderTask(t));
    }
    if (rows.length > SHOWN) {
      out.push(h('div', { class: 'jp-OrchHint', text: `… and ${rows.length - SHOWN} more` }));
    }
    this.node.replaceChildren(...out);
  }

  private renderUse(kind: 'user' | 'group', name: string, use: IUse, hint: string, capacity: number): HTMLElement {
    const limit = use.limits.gpus ?? capacity;
    return h(
      'div',
      {
        class: 'jp-OrchAdmin-use',
        'data-testid': `orch-admin-${kind}`,
        [`data-${kind}`]: name,
        'data-full': atLimit(use) ? 'true' : 'false'
      },
      h('div', { class: 'jp-OrchAdmin-quota', 'data-testid': 'orch-admin-quota', text: quotaLine(name, use) }),
      limit ? bar(use.gpus / limit, `${use.gpus}/${limit} GPUs`, 'util') : null,
      hint ? h('div', { class: 'jp-OrchHint', text: hint }) : null
    );
  }

  private renderTask(t: ITask): HTMLElement {
    const started = t.started_at ?? null;
    const meta = [
      formatResources(t.resources),
      t.worker_id ? this.ctl.store.workers.get(t.worker_id)?.name || shortId(t.worker_id) : '',
      started ? `since ${clock(started)}` : `queued since ${clock(t.created_at)}`,
      shortId(t.id)
    ];
    return h(
      'div',
      {
        class: 'jp-OrchAdmin-task',
        'data-testid': 'orch-admin-task',
        'data-id': t.id,
        'data-owner': t.owner,
        'data-state': t.state
      },
      h(
        'div',
        { class: 'jp-OrchRow-line' },
        h('span', { class: 'jp-OrchDot' }),
        h('span', {
          class: 'jp-OrchChip jp-OrchAdmin-owner',
          'data-testid': 'orch-admin-owner',
          title: 'owner',
          text: t.owner
        }),
        h('span', { class: 'jp-OrchRow-name', title: `Task ${t.id}`, text: t.name || t.id }),
        h('span', { class: 'jp-OrchRow-state', text: stateLabel(t.state) }),
        this.mayCancel
          ? h('button', {
              class: 'jp-OrchButton',
              'data-testid': 'orch-admin-cancel',
              title: `Cancel ${t.owner}'s task`,
              text: 'Cancel'
            })
          : null
      ),
      h('div', { class: 'jp-OrchRow-meta', text: meta.filter(Boolean).join(' · ') }),
      t.state === 'pending' && t.reason ? h('div', { class: 'jp-OrchHint jp-OrchAdmin-reason', text: t.reason }) : null
    );
  }

  private onClick(ev: MouseEvent): void {
    const button = (ev.target as Element).closest('[data-testid="orch-admin-cancel"]') as HTMLButtonElement | null;
    const row = button?.closest('[data-testid="orch-admin-task"]') as HTMLElement | null;
    const id = row?.dataset.id;
    if (!button || !id) {
      return;
    }
    const task = this.model.tasks.get(id);
    const what = `${task?.owner || 'another user'}'s task ${task?.name || id}`;
    button.disabled = true;
    void showDialog({
      title: 'Cancel task',
      body: `Cancel ${what}? Its owner sees it cancelled.`,
      buttons: [Dialog.cancelButton({ label: 'Keep' }), Dialog.warnButton({ label: 'Cancel task' })]
    })
      .then(result => (result.button.accept ? this.model.cancel(id) : undefined))
      .catch(err => showErrorMessage('Cancel failed', err as Error))
      .finally(() => {
        button.disabled = false;
      });
  }
}

/** a server time (seconds since the epoch) as the local time of day: it needs no ticking */
function clock(ts: number): string {
  return new Date(ts * 1000).toLocaleTimeString();
}

function userHint(u: IUserHolding): string {
  const parts = [u.groups.length ? u.groups.join(', ') : ''];
  if (u.weight !== 1) {
    parts.push(`weight ${u.weight}`);
  }
  parts.push(`${u.recent_gpu_hours.toFixed(1)} GPU-h recently`);
  parts.push(...Object.entries(u.gpu_models).map(([model, n]) => `${n}× ${model}`));
  return parts.filter(Boolean).join(' · ');
}

function groupHint(g: IGroupHolding): string {
  const parts = [g.members.length ? `members: ${g.members.join(', ')}` : 'no members seen yet'];
  if (g.weight !== 1) {
    parts.push(`weight ${g.weight}`);
  }
  return parts.join(' · ');
}
