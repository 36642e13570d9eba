// The admin view's state (for those who may read everyone's work): every user's running and
// queued tasks, kept live from the events stream, and what each user and group holds against
// their quotas (GET /admin/holdings, read again shortly after each change). Pure (no DOM, no
// JupyterLab imports) so that it is unit-tested; adminview.ts draws it.
import type { OrchApi } from './api';
import type { IHoldings, ITask, IUse } from './types';
import { ACTIVE_STATES } from './types';

type Listener = () => void;

const ORDER: Record<string, number> = { running: 0, scheduled: 1, pending: 2 };

function stamp(t: ITask): number {
  return t.updated_at ?? t.created_at ?? 0;
}

function plural(n: number, one: string, many = one + 's'): string {
  return n === 1 ? one : many;
}

/** What a user or a group uses, each against its limit where there is one:
 * ["2 of 4 GPUs", "1 of 2 A100", "3 of 8 running", "10 of 1000 queued"]. */
export function useParts(use: IUse): string[] {
  const { limits } = use;
  const parts = [
    limits.gpus !== null ? `${use.gpus} of ${limits.gpus} GPUs` : `${use.gpus} ${plural(use.gpus, 'GPU')}`
  ];
  for (const [type, limit] of Object.entries(limits.gpu_types || {})) {
    parts.push(`${use.gpu_types?.[type] ?? 0} of ${limit} ${type}`);
  }
  parts.push(limits.running !== null ? `${use.running} of ${limits.running} running` : `${use.running} running`);
  parts.push(limits.queued !== null ? `${use.queued} of ${limits.queued} queued` : `${use.queued} queued`);
  return parts;
}

/** "alice: 2 of 4 GPUs, 3 of 8 running, 10 of 1000 queued" */
export function quotaLine(name: string, use: IUse): string {
  return `${name}: ${useParts(use).join(', ')}`;
}

/** At (or over) one of its limits: its next task of that kind waits. */
export function atLimit(use: IUse): boolean {
  const { limits } = use;
  const full = (n: number, limit: number | null) => limit !== null && n >= limit;
  return (
    full(use.gpus, limits.gpus) ||
    full(use.running, limits.running) ||
    full(use.queued, limits.queued) ||
    Object.entries(limits.gpu_types || {}).some(([t, limit]) => full(use.gpu_types?.[t] ?? 0, limit))
  );
}

/** The one-line summary over everyone: "2 running · 1 queued · 2 of 4 GPUs held". */
export function totalsLine(h: IHoldings): string {
  const gpus = h.capacity.gpus ? `${h.totals.gpus} of ${h.capacity.gpus} GPUs held` : `${h.totals.gpus} GPUs held`;
  return `${h.totals.running} running · ${h.totals.queued} queued · ${gpus}`;
}

export class AdminModel {
  /** every user's active tasks (pending, scheduled, running), by id */
  readonly tasks = new Map<string, ITask>();
  holdings: IHoldings | null = null;
  error: string | null = null;
  loading = false;
  /** the holdings are read again this long (ms) after a task changed */
  holdingsDelay = 300;
  private listeners = new Set<Listener>();
  /** tasks seen ending (id -> the stamp of that news): older news of them is ignored */
  private ended = new Map<string, number>();
  private buffered: ITask[] | null = null;
  private holdingsTimer: ReturnType<typeof setTimeout> | null = null;
  private loadSeq = 0;
  private holdingsSeq = 0;

  constructor(
    private readonly api: OrchApi,
    readonly maxTasks = 1000
  ) {}

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(): void {
    for (const fn of [...this.listeners]) {
      fn();
    }
  }

  dispose(): void {
    if (this.holdingsTimer) {
      clearTimeout(this.holdingsTimer);
    }
    this.listeners.clear();
  }

  /** Read everyone's active tasks and the holdings; task events that come meanwhile are
   * applied over the answer, in order. */
  async load(): Promise<void> {
    const seq = ++this.loadSeq;
    this.buffered = [];
    this.loading = true;
    this.changed();
    try {
      const [tasks] = await Promise.all([
        this.api.tasks({ owner: '*', state: 'pending,scheduled,running', limit: this.maxTasks }),
        this.loadHoldings(false)
      ]);
      if (seq !== this.loadSeq) {
        return;
      }
      this.tasks.clear();
      for (const t of tasks) {
        this.put(t);
      }
      this.error = null;
    } catch (err) {
      if (seq === this.loadSeq) {
        this.error = (err as Error).message || String(err);
      }
    } finally {
      if (seq === this.loadSeq) {
        const pending = this.buffered || [];
        this.buffered = null;
        this.loading = false;
        for (const t of pending) {
          this.put(t);
        }
        this.changed();
      }
    }
  }

  /** Read the holdings now (`announce`: tell the view). */
  async loadHoldings(announce = true): Promise<void> {
    const seq = ++this.holdingsSeq;
    const holdings = await this.api.holdings();
    if (seq === this.holdingsSeq) {
      this.holdings = holdings;
      if (announce) {
        this.changed();
      }
    }
  }

  /** A task changed (an event, or a cancel's answer): kept while active, dropped once ended;
   * the holdings are read again shortly after. */
  applyTask(task: ITask): void {
    if (this.buffered) {
      this.buffered.push(task);
    } else {
      this.put(task);
      this.changed();
    }
    this.scheduleHoldings();
  }

  private put(task: ITask): void {
    const old = this.tasks.get(task.id);
    const end = this.ended.get(task.id);
    if ((old && stamp(old) > stamp(task)) || (end !== undefined && end >= stamp(task))) {
      return; // an older view of the task arrived late
    }
    if (ACTIVE_STATES.has(task.state)) {
      this.tasks.set(task.id, old ? { ...old, ...task } : task);
      return;
    }
    this.tasks.delete(task.id);
    this.ended.set(task.id, stamp(task));
    if (this.ended.size > 2 * this.maxTasks) {
      this.ended.delete(this.ended.keys().next().value as string); // the oldest news goes first
    }
  }

  private scheduleHoldings(): void {
    if (this.holdingsTimer) {
      return;
    }
    this.holdingsTimer = setTimeout(() => {
      this.holdingsTimer = null;
      this.loadHoldings().catch(err => {
        this.error = (err as Error).message || String(err);
        this.changed();
      });
    }, this.holdingsDelay);
  }

  /** Active tasks: running, then scheduled, then queued; oldest first within each. */
  rows(): ITask[] {
    return [...this.tasks.values()].sort(
      (a, b) =>
        (ORDER[a.state] ?? 3) - (ORDER[b.state] ?? 3) ||
        a.created_at - b.created_at ||
        (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
    );
  }

  /** Cancel anyone's task (needs the admin right; the server refuses others with 403). */
  async cancel(id: string): Promise<ITask> {
    const task = await this.api.cancelTask(id);
    this.applyTask(task);
    return task;
  }
}
