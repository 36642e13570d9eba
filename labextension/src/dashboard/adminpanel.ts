// The admin panel (a shared server, for one who may read everyone's work: the same rule as the
// sidebar's admin view): GPUs held per user and per group against capacity, and each one's
// quota use as bars (GPUs, running, queued, per GPU type), from GET /admin/holdings through
// admin.ts's model (kept live by task events, read again every 10 s while visible).
import { AdminModel, atLimit, quotaLine, totalsLine, useParts } from '../admin';
import type { OrchController } from '../controller';
import { h } from '../dom';
import type { IHoldings, IUse } from '../types';
import type { IDashboardPanel } from './panel';
import { ownerHue } from './timelinemodel';

const POLL_MS = 10000;

/** May this user see the admin panel? (a shared server and the read-all right) */
export function adminAvailable(ctl: OrchController): boolean {
  const info = ctl.info;
  return !!info?.shared && !!info.rights?.read_all;
}

/** The meters of a use: [label, used, limit (null: none)], GPUs first. */
export function meters(use: IUse, capacity: number): { label: string; used: number; limit: number | null; of: number }[] {
  const l = use.limits;
  const out = [
    { label: 'GPUs', used: use.gpus, limit: l.gpus, of: l.gpus ?? capacity },
    { label: 'running', used: use.running, limit: l.running, of: l.running ?? 0 },
    { label: 'queued', used: use.queued, limit: l.queued, of: l.queued ?? 0 }
  ];
  for (const [type, limit] of Object.entries(l.gpu_types || {})) {
    out.push({ label: type, used: use.gpu_types?.[type] ?? 0, limit, of: limit });
  }
  return out;
}

/** The shares of the GPUs held, per user, of `capacity` (for the stacked bar). */
export function gpuShares(h: IHoldings): { user: string; gpus: number; fraction: number }[] {
  const cap = Math.max(h.capacity.gpus, h.totals.gpus, 1);
  return h.users.filter(u => u.gpus > 0).map(u => ({ user: u.user, gpus: u.gpus, fraction: u.gpus / cap }));
}

export class AdminPanel implements IDashboardPanel {
  readonly id = 'admin';
  readonly title = 'Admin';
  readonly node: HTMLElement;
  private model: AdminModel | null = null;
  private off: (() => void)[] = [];
  private visible = false;
  private poll: ReturnType<typeof setInterval> | null = null;
  private frame = 0;
  private lastKey = '';

  constructor(private readonly ctl: OrchController) {
    this.node = h('div', { class: 'jp-OrchDashAdmin' });
    this.off.push(ctl.store.subscribe(() => this.sync()));
    this.sync();
  }

  /** the shell shows the tab only when this holds */
  available(): boolean {
    return adminAvailable(this.ctl);
  }

  /** start reading once the server says this user may (never otherwise) */
  private sync(): void {
    if (this.model || !this.available()) {
      return;
    }
    const model = (this.model = new AdminModel(this.ctl.api));
    this.off.push(
      model.subscribe(() => this.schedule()),
      this.ctl.onTask(task => model.applyTask(task)),
      this.ctl.onReload(() => void model.load()),
      () => model.dispose()
    );
    void model.load();
  }

  shown(): void {
    this.visible = true;
    this.sync();
    this.lastKey = '';
    this.render();
    if (!this.poll) {
      this.poll = setInterval(() => {
        if (this.visible && this.model && !this.model.loading) {
          this.model.loadHoldings().catch(() => undefined);
        }
      }, POLL_MS);
    }
  }

  hidden(): void {
    this.visible = false;
    if (this.poll) {
      clearInterval(this.poll);
      this.poll = null;
    }
    if (this.frame) {
      cancelAnimationFrame(this.frame);
      this.frame = 0;
    }
  }

  dispose(): void {
    this.hidden();
    for (const f of this.off) {
      f();
    }
    this.off = [];
  }

  private schedule(): void {
    if (this.visible && !this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.render();
      });
    }
  }

  render(): void {
    const m = this.model;
    const key = JSON.stringify([m?.error, m?.loading && !m?.holdings, m?.holdings, this.available()]);
    if (key === this.lastKey) {
      return;
    }
    this.lastKey = key;
    const out: (HTMLElement | null)[] = [];
    if (!this.available()) {
      out.push(h('div', { class: 'jp-OrchEmpty', text: 'Only for those who may read everyone’s work on a shared server.' }));
    } else if (m?.error) {
      out.push(h('div', { class: 'jp-OrchError', role: 'alert', text: m.error }));
    }
    const holdings = m?.holdings;
    if (!holdings) {
      if (this.available()) {
        out.push(h('div', { class: 'jp-OrchEmpty', text: m?.loading ? 'Loading…' : 'No holdings read yet.' }));
      }
      this.node.replaceChildren(...(out.filter(Boolean) as HTMLElement[]));
      return;
    }
    const cap = holdings.capacity.gpus;
    out.push(
      h(
        'div',
        { class: 'jp-OrchDash-toolbar' },
        h('span', { 'data-testid': 'orch-dash-admin-summary', text: totalsLine(holdings) }),
        h('span', {
          class: 'jp-OrchHint',
          text: `${holdings.capacity.workers} workers · ${holdings.capacity.slots} slots${holdings.fair_share ? ' · fair share on' : ''}`
        })
      ),
      this.sharesBar(holdings),
      h('h3', { class: 'jp-OrchDashAdmin-head', text: 'Users' }),
      this.table(
        'user',
        holdings.users.map(u => ({
          name: u.user,
          use: u as IUse,
          extra: [u.groups.join(', '), `${u.recent_gpu_hours.toFixed(1)} GPU-h`, u.weight !== 1 ? `weight ${u.weight}` : '']
        })),
        cap
      )
    );
    if (holdings.groups.length) {
      out.push(
        h('h3', { class: 'jp-OrchDashAdmin-head', text: 'Groups' }),
        this.table(
          'group',
          holdings.groups.map(g => ({
            name: g.group,
            use: g as IUse,
            extra: [g.members.join(', '), '', g.weight !== 1 ? `weight ${g.weight}` : '']
          })),
          cap
        )
      );
    }
    this.node.replaceChildren(...(out.filter(Boolean) as HTMLElement[]));
  }

  private sharesBar(holdings: IHoldings): HTMLElement {
    const shares = gpuShares(holdings);
    const barEl = h('div', {
      class: 'jp-OrchDashAdmin-shares',
      'data-testid': 'orch-dash-admin-shares',
      role: 'img',
      'aria-label': `GPUs held: ${shares.map(s => `${s.user} ${s.gpus}`).join(', ') || 'none'} of ${holdings.capacity.gpus}`
    });
    for (const s of shares) {
      const seg = h('div', { class: 'jp-OrchDashAdmin-share', title: `${s.user}: ${s.gpus} GPU${s.gpus === 1 ? '' : 's'}`, text: s.user });
      seg.style.width = `${(s.fraction * 100).toFixed(2)}%`;
      seg.style.background = `hsl(${ownerHue(s.user)}, 55%, 55%)`;
      barEl.append(seg);
    }
    return h(
      'div',
      { class: 'jp-OrchDashAdmin-sharesRow' },
      h('span', { class: 'jp-OrchHint', text: `GPUs held (${holdings.totals.gpus} of ${holdings.capacity.gpus})` }),
      barEl
    );
  }

  private table(kind: 'user' | 'group', rows: { name: string; use: IUse; extra: string[] }[], capacity: number): HTMLElement {
    if (!rows.length) {
      return h('div', { class: 'jp-OrchHint', text: kind === 'user' ? 'Nobody has work running or queued.' : 'No groups.' });
    }
    const head = h(
      'tr',
      {},
      ...[kind === 'user' ? 'User' : 'Group', 'GPUs', 'Running', 'Queued', 'Per GPU type', kind === 'user' ? 'Groups' : 'Members', kind === 'user' ? 'Recent' : '']
        .map(t => h('th', { scope: 'col', text: t }))
    );
    const body = h('tbody');
    for (const r of rows) {
      const ms = meters(r.use, capacity);
      const types = ms.slice(3);
      body.append(
        h(
          'tr',
          {
            'data-testid': `orch-dash-admin-${kind}`,
            [`data-${kind}`]: r.name,
            'data-full': atLimit(r.use) ? 'true' : 'false',
            title: quotaLine(r.name, r.use)
          },
          h('th', { scope: 'row', text: r.name }),
          ...ms.slice(0, 3).map(m => h('td', {}, meter(m.used, m.of, m.limit, m.label))),
          h('td', {}, ...types.map(m => meter(m.used, m.of, m.limit, m.label))),
          h('td', { class: 'jp-OrchHint', text: r.extra[0] }),
          h('td', { class: 'jp-OrchHint', text: [r.extra[1], r.extra[2]].filter(Boolean).join(' · ') })
        )
      );
    }
    return h(
      'div',
      { class: 'jp-OrchDashAdmin-tableWrap' },
      h('table', { class: 'jp-OrchTable jp-OrchDashAdmin-table' }, h('thead', {}, head), body),
      h('div', { class: 'jp-OrchVisuallyHidden', text: rows.map(r => useParts(r.use).join(', ')).join('; ') })
    );
  }
}

/** a bar filled to used/of, red at its limit; "2 of 4" over it (no limit: "2") */
function meter(used: number, of: number, limit: number | null, label: string): HTMLElement {
  const frac = of > 0 ? Math.max(0, Math.min(1, used / of)) : 0;
  const full = limit !== null && used >= limit;
  const fill = h('div', { class: 'jp-OrchMeter-fill' });
  fill.style.width = `${(frac * 100).toFixed(1)}%`;
  const text = limit !== null ? `${used} of ${limit} ${label}` : `${used} ${label}`;
  return h(
    'div',
    { class: `jp-OrchMeter${full ? ' jp-mod-full' : ''}`, 'data-testid': 'orch-dash-admin-meter', title: text },
    fill,
    h('span', { class: 'jp-OrchMeter-label', text })
  );
}
