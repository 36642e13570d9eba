// The sidebar's state: tasks, workflow runs, workers and hyperparameter searches, kept current by
// events. Pure (no DOM, no JupyterLab imports) so that its event handling is unit-tested.
import type { IProviderInfo, IRun, ISearch, ITask, IWorker, OrchEvent } from './types';
import { formatResources } from './format';
import { sortSearches } from './trials';

export type RowKind = 'task' | 'workflow';

export interface IRow {
  kind: RowKind;
  id: string;
  name: string;
  state: string;
  owner: string;
  resources: string;
  worker: string;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  duration: number | null;
  detail: string;
}

export interface IFilter {
  text: string;
  state: string; // '' = all, 'active' = pending/scheduled/running, else a state name
}

export interface ISelection {
  kind: RowKind;
  id: string;
}

type Listener = () => void;

function stamp(x: { updated_at?: number; created_at: number }): number {
  return x.updated_at ?? x.created_at ?? 0;
}

/** Is `row` shown under `filter`? Text matches name, id, owner, worker, state (case-insensitive). */
export function matchesFilter(row: IRow, filter: IFilter): boolean {
  if (filter.state) {
    if (filter.state === 'active') {
      if (!['pending', 'scheduled', 'running'].includes(row.state)) {
        return false;
      }
    } else if (filter.state === 'workflow') {
      if (row.kind !== 'workflow') {
        return false;
      }
    } else if (row.state !== filter.state) {
      return false;
    }
  }
  const text = filter.text.trim().toLowerCase();
  if (!text) {
    return true;
  }
  const hay = `${row.name} ${row.id} ${row.owner} ${row.worker} ${row.state} ${row.resources}`.toLowerCase();
  return text.split(/\s+/).every(word => hay.includes(word));
}

/** A row's duration in seconds at time `now` (seconds since the epoch). */
export function rowDuration(row: IRow, now: number): number | null {
  if (row.duration !== null && row.duration !== undefined && row.ended_at) {
    return row.duration;
  }
  const start = row.started_at ?? (row.kind === 'workflow' ? row.created_at : null);
  if (start === null || start === undefined) {
    return null;
  }
  return Math.max(0, (row.ended_at ?? now) - start);
}

/** `next` over `old` unless `old` is newer; trials from `next` when it has them (a read),
 * unless `old` is newer and has its own. */
export function mergeSearch(old: ISearch, next: ISearch): ISearch {
  const newer = (next.updated_at ?? next.created_at) >= (old.updated_at ?? old.created_at);
  const merged: ISearch = newer ? { ...old, ...next } : { ...next, ...old };
  const trials = next.trials && (newer || !old.trials) ? next.trials : old.trials;
  if (trials) {
    merged.trials = trials;
  } else {
    delete merged.trials;
  }
  return merged;
}

export class OrchStore {
  readonly tasks = new Map<string, ITask>();
  readonly runs = new Map<string, IRun>();
  readonly workers = new Map<string, IWorker>();
  /** the caller's searches (the selected one with its trials, once read) */
  readonly searches = new Map<string, ISearch>();
  /** the search whose trials are shown */
  searchId: string | null = null;
  /** why the selected search's trials could not be read */
  searchError: string | null = null;
  /** grows with every change of a search (the Searches view redraws on it) */
  searchVersion = 0;
  provider: IProviderInfo | null = null;
  filter: IFilter = { text: '', state: '' };
  selection: ISelection | null = null;
  /** the task whose log is shown (a selected task, or a DAG node's task) */
  logTaskId: string | null = null;
  /** the selected step of the selected run */
  selectedStep: string | null = null;
  /** set by the connection: called when events were lost (overflow) */
  onReload: (() => void) | null = null;
  /** keep at most this many tasks (oldest finished ones go first) */
  maxTasks = 5000;

  private listeners = new Set<Listener>();
  private rowsCache: IRow[] | null = null;
  private filteredCache: IRow[] | null = null;
  private stepTasks = new Map<string, { runId: string; step: string }>();
  private scheduled = false;
  private batch: (cb: () => void) => void;

  constructor(batch?: (cb: () => void) => void) {
    // by default changes are announced at once; the lab batches them per animation frame
    this.batch = batch || (cb => cb());
  }

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  changed(rows = true): void {
    if (rows) {
      this.rowsCache = null;
      this.filteredCache = null;
    }
    if (this.scheduled) {
      return;
    }
    this.scheduled = true;
    this.batch(() => {
      this.scheduled = false;
      for (const fn of [...this.listeners]) {
        fn();
      }
    });
  }

  // ------------------------------------------------------------------ loading

  /** Replace the state with what the server says now (first load, reconnect, overflow). */
  reset(tasks: ITask[], runs: IRun[], workers: IWorker[], provider?: IProviderInfo | null): void {
    this.tasks.clear();
    this.runs.clear();
    this.stepTasks.clear();
    for (const t of tasks) {
      this.tasks.set(t.id, t);
    }
    for (const r of runs) {
      this.putRun(r);
    }
    this.setWorkers(workers, provider);
    this.trim();
    this.changed();
  }

  setWorkers(workers: IWorker[], provider?: IProviderInfo | null): void {
    this.workers.clear();
    for (const w of workers) {
      this.workers.set(w.id, w);
    }
    if (provider !== undefined) {
      this.provider = provider;
    }
    this.changed(false);
  }

  // ------------------------------------------------------------------ events

  /** Apply one event from /events. Returns false for an event that asks for a reload. */
  apply(event: OrchEvent): boolean {
    switch (event.type) {
      case 'hello':
        if (event.workers) {
          this.setWorkers(event.workers);
        }
        return true;
      case 'task':
        this.putTask(event.task);
        return true;
      case 'worker':
        this.putWorker(event.worker);
        return true;
      case 'run':
        this.putRun(event.run);
        this.changed();
        return true;
      case 'search':
        this.putSearch(event.search);
        return true;
      case 'overflow':
        if (this.onReload) {
          this.onReload();
        }
        return false;
      default:
        return true;
    }
  }

  putTask(task: ITask): void {
    const old = this.tasks.get(task.id);
    if (old && stamp(old) > stamp(task)) {
      return; // an older view of the task arrived late
    }
    this.tasks.set(task.id, old ? { ...old, ...task } : task);
    const step = this.stepTasks.get(task.id);
    if (step) {
      const run = this.runs.get(step.runId);
      const s = run?.steps?.find(x => x.name === step.step);
      if (s) {
        s.state = task.state;
        s.error = task.error ?? s.error;
        s.started_at = task.started_at ?? s.started_at;
        s.ended_at = task.ended_at ?? s.ended_at;
        s.duration = task.duration ?? s.duration;
        s.worker_id = task.worker_id ?? s.worker_id;
        s.notebook_url = task.notebook_url ?? s.notebook_url;
        s.attempt = task.attempt;
      }
    }
    if (!old && this.tasks.size > this.maxTasks) {
      this.trim();
    }
    this.changed();
  }

  putRun(run: IRun): void {
    const old = this.runs.get(run.id);
    if (old && stamp(old) > stamp(run)) {
      return;
    }
    const merged: IRun = old ? { ...old, ...run } : { ...run };
    if (!run.steps && old?.steps) {
      merged.steps = old.steps;
    }
    if (merged.steps) {
      merged.steps = merged.steps.map(s => ({ ...s }));
      for (const s of merged.steps) {
        this.stepTasks.set(s.task_id, { runId: run.id, step: s.name });
        const t = this.tasks.get(s.task_id);
        // a step's task may have told us more recent news than the run did
        if (t && run.steps && t.updated_at && (!run.updated_at || t.updated_at > run.updated_at)) {
          s.state = t.state;
        }
      }
    }
    this.runs.set(run.id, merged);
  }

  putWorker(worker: IWorker): void {
    if (worker.state === 'gone') {
      this.workers.delete(worker.id);
    } else {
      this.workers.set(worker.id, worker);
    }
    this.changed(false);
  }

  /** Replace the list of searches with what the server says now; trials already read stay
   * (with their search) until a newer read replaces them. */
  setSearches(searches: ISearch[]): void {
    const old = new Map(this.searches);
    this.searches.clear();
    for (const s of searches) {
      const before = old.get(s.id);
      this.searches.set(s.id, before ? mergeSearch(before, s) : s);
    }
    // the selected one stays even when it is older than the list's page
    const sel = this.searchId ? old.get(this.searchId) : undefined;
    if (sel && !this.searches.has(sel.id)) {
      this.searches.set(sel.id, sel);
    }
    this.searchVersion++;
    this.changed(false);
  }

  /** A search as an event or a read tells it: a view older than the one held does not
   * replace it, but its trials are kept when the held one has none. */
  putSearch(search: ISearch): void {
    const old = this.searches.get(search.id);
    const merged = old ? mergeSearch(old, search) : search;
    if (old && JSON.stringify(merged) === JSON.stringify(old)) {
      return; // read again, unchanged: the view is not redrawn
    }
    this.searches.set(search.id, merged);
    this.searchVersion++;
    this.changed(false);
  }

  selectSearch(id: string | null): void {
    if (this.searchId !== id) {
      this.searchError = null;
    }
    this.searchId = id;
    this.searchVersion++;
    this.changed(false);
  }

  setSearchError(message: string | null): void {
    this.searchError = message;
    this.searchVersion++;
    this.changed(false);
  }

  selectedSearch(): ISearch | undefined {
    return this.searchId ? this.searches.get(this.searchId) : undefined;
  }

  /** newest first */
  searchList(): ISearch[] {
    return sortSearches(this.searches.values());
  }

  /** Keep the newest tasks; finished ones beyond maxTasks are forgotten. */
  trim(): void {
    if (this.tasks.size <= this.maxTasks) {
      return;
    }
    const sorted = [...this.tasks.values()].sort((a, b) => a.created_at - b.created_at);
    let excess = this.tasks.size - this.maxTasks;
    for (const t of sorted) {
      if (excess <= 0) {
        break;
      }
      if (['pending', 'scheduled', 'running'].includes(t.state) || t.id === this.selection?.id) {
        continue;
      }
      this.tasks.delete(t.id);
      excess--;
    }
  }

  // ------------------------------------------------------------------ views

  rows(): IRow[] {
    if (this.rowsCache) {
      return this.rowsCache;
    }
    const out: IRow[] = [];
    for (const t of this.tasks.values()) {
      const w = t.worker_id ? this.workers.get(t.worker_id) : undefined;
      out.push({
        kind: 'task',
        id: t.id,
        name: t.name || t.id,
        state: t.state,
        owner: t.owner,
        resources: formatResources(t.resources),
        worker: w ? w.name : t.worker_id || '',
        created_at: t.created_at,
        started_at: t.started_at ?? null,
        ended_at: t.ended_at ?? null,
        duration: t.duration ?? null,
        detail: t.error || t.reason || ''
      });
    }
    for (const r of this.runs.values()) {
      const steps = r.steps || [];
      const done = steps.filter(s => ['succeeded', 'failed', 'cancelled', 'upstream_failed'].includes(s.state)).length;
      out.push({
        kind: 'workflow',
        id: r.id,
        name: r.name || r.id,
        state: r.state,
        owner: r.owner,
        resources: steps.length ? `${done}/${steps.length} steps` : `${r.step_count} steps`,
        worker: '',
        created_at: r.created_at,
        started_at: r.created_at,
        ended_at: r.ended_at ?? null,
        duration: r.duration ?? null,
        detail: ''
      });
    }
    out.sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    this.rowsCache = out;
    return out;
  }

  filteredRows(): IRow[] {
    if (!this.filteredCache) {
      this.filteredCache = this.rows().filter(r => matchesFilter(r, this.filter));
    }
    return this.filteredCache;
  }

  setFilter(filter: Partial<IFilter>): void {
    this.filter = { ...this.filter, ...filter };
    this.filteredCache = null;
    this.changed(false);
  }

  select(sel: ISelection | null): void {
    this.selection = sel;
    this.selectedStep = null;
    if (sel?.kind === 'task') {
      this.logTaskId = sel.id;
    }
    this.changed(false);
  }

  selectStep(step: string | null): void {
    this.selectedStep = step;
    const run = this.selection?.kind === 'workflow' ? this.runs.get(this.selection.id) : undefined;
    const s = run?.steps?.find(x => x.name === step);
    if (s) {
      this.logTaskId = s.task_id;
    }
    this.changed(false);
  }

  selectedRun(): IRun | undefined {
    return this.selection?.kind === 'workflow' ? this.runs.get(this.selection.id) : undefined;
  }

  /** the task holding each GPU of a worker, by index (from the worker's own report, else tasks) */
  gpuHolders(worker: IWorker): Map<number, string> {
    const out = new Map<number, string>();
    for (const g of worker.gpus) {
      if (g.task_id) {
        out.set(g.index, g.task_id);
      }
    }
    if (out.size === 0) {
      for (const id of worker.running || []) {
        const t = this.tasks.get(id);
        for (const i of t?.gpus || []) {
          out.set(i, id);
        }
      }
    }
    return out;
  }
}
