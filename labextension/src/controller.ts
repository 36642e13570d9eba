// Loads the state, keeps it live from the events WebSocket (re-reading it on every reconnect
// and after an overflow; the selected search's trials are read again, debounced, when an event
// of the search or of one of its trials arrives), follows the log of the store's log task for the logs view (a LogFeed)
// and runs the actions the views ask for.
import { OrchApi, OrchApiError } from './api';
import { LogFeed, LogListener } from './logfeed';
import { OrchStore } from './store';
import { ReconnectingSocket, SocketFactory } from './socket';
import type { IInfo, ITask, OrchEvent } from './types';

export interface IControllerOptions {
  api: OrchApi;
  store: OrchStore;
  eventsUrl: () => string;
  /** the URL of a task's log socket (/tasks/{id}/logs/follow) */
  logUrl: (taskId: string) => string;
  socketFactory?: SocketFactory;
  maxRows?: number;
}

export class OrchController {
  readonly api: OrchApi;
  readonly store: OrchStore;
  /** the live log of the store's log task, while a view watches it */
  readonly logs: LogFeed;
  info: IInfo | null = null;
  /** a problem to show over the views ('no_extension' gets its own sentence) */
  error: { code: string; message: string } | null = null;
  connection: 'open' | 'closed' = 'closed';
  loading = false;
  private socket: ReconnectingSocket;
  private reloadTimer: ReturnType<typeof setTimeout> | null = null;
  private pollTimer: ReturnType<typeof setInterval> | null = null;
  private loadSeq = 0;
  private buffered: OrchEvent[] | null = null;
  maxRows: number;
  workersPollSeconds = 15;
  private taskListeners = new Set<(task: ITask) => void>();
  private reloadListeners = new Set<() => void>();
  /** the pending re-read of the selected search's trials, and the reads' order */
  private searchTimer: ReturnType<typeof setTimeout> | null = null;
  private searchSeq = 0;
  private searchApplied = 0;
  /** how long events of the selected search are gathered before its trials are read again */
  searchDebounceMs = 300;

  constructor(opts: IControllerOptions) {
    this.api = opts.api;
    this.store = opts.store;
    this.maxRows = opts.maxRows || 5000;
    this.store.maxTasks = this.maxRows;
    this.store.onReload = () => this.scheduleReload(0);
    this.socket = new ReconnectingSocket({
      url: opts.eventsUrl,
      factory: opts.socketFactory,
      onMessage: data => this.onEvent(data as OrchEvent),
      onOpen: () => this.scheduleReload(0),
      onState: s => {
        this.connection = s;
        this.store.changed(false);
      }
    });
    this.logs = new LogFeed({
      url: opts.logUrl,
      factory: opts.socketFactory,
      onTask: task => this.store.putTask(task)
    });
  }

  async start(): Promise<void> {
    const ok = await this.checkInfo();
    if (!ok) {
      // the extension is missing or the server is away: try again now and then
      this.reloadTimer = setTimeout(() => void this.start(), 10000);
      return;
    }
    this.socket.start();
    this.pollTimer = setInterval(() => void this.refreshWorkers(), this.workersPollSeconds * 1000);
  }

  stop(): void {
    this.socket.stop();
    this.logs.close();
    if (this.pollTimer) {
      clearInterval(this.pollTimer);
    }
    if (this.reloadTimer) {
      clearTimeout(this.reloadTimer);
    }
    if (this.searchTimer) {
      clearTimeout(this.searchTimer);
      this.searchTimer = null;
    }
  }

  /** re-read everything now and connect again (the palette's "Reconnect") */
  reconnect(): void {
    if (this.error?.code === 'no_extension') {
      if (this.reloadTimer) {
        clearTimeout(this.reloadTimer);
      }
      void this.start();
      return;
    }
    this.socket.reconnect();
  }

  /** Give `listener` the log of the store's log task, following the selection as it changes
   * (the socket is opened, re-opened and closed here), until the returned function is called. */
  watchLog(listener: LogListener): () => void {
    const unwatch = this.logs.watch(listener);
    const unsubscribe = this.store.subscribe(() => this.syncLog());
    this.syncLog();
    return () => {
      unsubscribe();
      unwatch();
    };
  }

  /** read the followed log again from its start (e.g. the view's buffer was replaced) */
  restartLog(): void {
    if (this.logs.taskId) {
      this.logs.follow(this.logs.taskId);
    }
  }

  private syncLog(): void {
    if (this.store.logTaskId !== this.logs.taskId) {
      this.logs.follow(this.store.logTaskId);
    }
  }

  /** Call `fn` with every task event (everyone's, for one who may read all: the admin view),
   * until the returned function is called. */
  onTask(fn: (task: ITask) => void): () => void {
    this.taskListeners.add(fn);
    return () => this.taskListeners.delete(fn);
  }

  /** Call `fn` whenever the state is read again (connect, reconnect, lost events). */
  onReload(fn: () => void): () => void {
    this.reloadListeners.add(fn);
    return () => this.reloadListeners.delete(fn);
  }

  /** On a shared server, one who may read all gets everyone's events; the views other than
   * the admin view show the caller's own work, as the lists they load do. */
  private isOthers(owner: string | undefined): boolean {
    const info = this.info;
    return !!info?.shared && !!info.rights?.read_all && owner !== undefined && owner !== info.owner;
  }

  private async checkInfo(): Promise<boolean> {
    try {
      const before = this.info;
      this.info = await this.api.info();
      const rightsChanged =
        !before ||
        before.shared !== this.info.shared ||
        before.rights?.read_all !== this.info.rights?.read_all ||
        before.rights?.admin !== this.info.rights?.admin;
      if (this.error || rightsChanged) {
        this.error = null;
        this.store.changed(false); // the views learn the caller's rights
      }
      return true;
    } catch (err) {
      this.setError(err);
      return false;
    }
  }

  setError(err: unknown): void {
    if (err instanceof OrchApiError) {
      this.error = { code: err.code || String(err.status), message: err.message };
    } else {
      this.error = { code: 'error', message: String((err as Error)?.message || err) };
    }
    this.store.changed(false);
  }

  private onEvent(event: OrchEvent): void {
    if (event.type === 'task') {
      for (const fn of [...this.taskListeners]) {
        fn(event.task);
      }
      if (this.isOthers(event.task.owner)) {
        return;
      }
      const trial = event.task.metadata?.trial as { search?: unknown } | undefined;
      if (this.store.searchId && trial?.search === this.store.searchId) {
        this.scheduleSearchRead(); // one of its trials started or ended
      }
    } else if (event.type === 'run' && this.isOthers(event.run.owner)) {
      return;
    } else if (event.type === 'search') {
      if (this.isOthers(event.owner ?? event.search.owner)) {
        return;
      }
      if (event.search.id === this.store.searchId) {
        this.scheduleSearchRead();
      }
    }
    if (this.buffered) {
      // a reload is under way: these are applied over its answer, in order
      this.buffered.push(event);
      return;
    }
    this.store.apply(event);
  }

  private scheduleReload(delay: number): void {
    if (this.reloadTimer) {
      clearTimeout(this.reloadTimer);
    }
    this.reloadTimer = setTimeout(() => {
      this.reloadTimer = null;
      void this.reload();
    }, delay);
  }

  /** Read tasks (newest first, up to maxRows), runs and workers, then apply what came meanwhile. */
  async reload(): Promise<void> {
    const seq = ++this.loadSeq;
    for (const fn of [...this.reloadListeners]) {
      fn();
    }
    let older: number | null = null;
    this.buffered = [];
    this.loading = true;
    this.store.changed(false);
    try {
      const [first, runs, workers, searches] = await Promise.all([
        this.loadTasks(),
        this.api.runs({ limit: 500 }).catch(() => []),
        this.api.workers(),
        this.api.searches({ limit: 200 }).catch(() => null)
      ]);
      if (seq !== this.loadSeq) {
        return;
      }
      // the first page is drawn at once; older pages are read after it (loadOlder)
      this.store.reset(first.tasks, runs, workers.workers, workers.provider ?? null);
      if (searches) {
        this.store.setSearches(searches);
      }
      if (this.store.searchId) {
        void this.loadSearch(this.store.searchId);
      }
      older = first.older;
      this.error = null;
      const sel = this.store.selection;
      if (sel?.kind === 'workflow') {
        void this.loadRun(sel.id);
      }
    } catch (err) {
      if (seq === this.loadSeq) {
        this.setError(err);
      }
    } finally {
      if (seq === this.loadSeq) {
        const pending = this.buffered || [];
        this.buffered = null;
        this.loading = false;
        for (const ev of pending) {
          this.store.apply(ev);
        }
        this.store.changed(false);
        if (older !== null) {
          void this.loadOlder(seq, older);
        }
      }
    }
  }

  /** The newest page of tasks and the active ones (so none of them is missed when there are
   * more than a page); `older`: the seq to page back from, when there may be more. */
  private async loadTasks(): Promise<{ tasks: ITask[]; older: number | null }> {
    const out = new Map<string, ITask>();
    const [newest, active] = await Promise.all([
      this.api.tasks({ limit: Math.min(1000, this.maxRows) }),
      this.api.tasks({ state: 'pending,scheduled,running', limit: Math.min(1000, this.maxRows) })
    ]);
    for (const t of [...newest, ...active]) {
      out.set(t.id, t);
    }
    const last = newest[newest.length - 1] as (ITask & { seq?: number }) | undefined;
    const more = newest.length >= 1000 && typeof last?.seq === 'number' && out.size < this.maxRows;
    return { tasks: [...out.values()], older: more ? (last!.seq as number) : null };
  }

  /** Older tasks, a page at a time up to maxRows, merged in after the first page is drawn
   * (a newer view from the events stream wins). Stops when a later reload starts. */
  private async loadOlder(seq: number, before: number): Promise<void> {
    let cursor: number | null = before;
    try {
      while (cursor !== null && this.store.tasks.size < this.maxRows) {
        const page = await this.api.tasks({ limit: 1000, before: cursor });
        if (seq !== this.loadSeq) {
          return;
        }
        for (const t of page) {
          if (!this.store.tasks.has(t.id)) {
            this.store.putTask(t);
          }
        }
        this.store.changed(false);
        const last = page[page.length - 1] as (ITask & { seq?: number }) | undefined;
        cursor = page.length >= 1000 && typeof last?.seq === 'number' ? last.seq : null;
      }
    } catch {
      // what was read stays; the next reload reads again
    }
  }

  /** Tasks matching `text` on the server (older ones may not be in the list), merged in. */
  async searchServer(text: string): Promise<void> {
    const q = text.trim();
    if (!q || this.error) {
      return;
    }
    try {
      const found = await this.api.tasks({ q, limit: 500 });
      for (const t of found) {
        if (!this.store.tasks.has(t.id)) {
          this.store.putTask(t);
        }
      }
    } catch {
      // the local filter still applies
    }
  }

  async refreshWorkers(): Promise<void> {
    if (this.connection !== 'open') {
      return;
    }
    try {
      const w = await this.api.workers();
      this.store.setWorkers(w.workers, w.provider ?? null);
    } catch {
      // the events socket reports the outage
    }
  }

  /** the run with its steps (the list may not carry them) */
  async loadRun(id: string): Promise<void> {
    try {
      const run = await this.api.run(id);
      this.store.putRun(run);
      this.store.changed();
    } catch (err) {
      this.setError(err);
    }
  }

  /** Read the selected search (with its trials) again soon: the events of a while are
   * gathered into one read (a read already due is not put off). */
  scheduleSearchRead(delay = this.searchDebounceMs): void {
    if (this.searchTimer) {
      return;
    }
    this.searchTimer = setTimeout(() => {
      this.searchTimer = null;
      if (this.store.searchId) {
        void this.loadSearch(this.store.searchId);
      }
    }, delay);
  }

  /** a search with its trials; an answer older than one already applied is dropped */
  async loadSearch(id: string): Promise<void> {
    const seq = ++this.searchSeq;
    try {
      const search = await this.api.search(id);
      if (seq < this.searchApplied) {
        return;
      }
      this.searchApplied = seq;
      this.store.putSearch(search);
      if (this.store.searchId === id && this.store.searchError) {
        this.store.setSearchError(null);
      }
    } catch (err) {
      if (seq >= this.searchApplied && this.store.searchId === id) {
        this.store.setSearchError((err as Error)?.message || String(err));
      }
    }
  }

  /** show the trials of search `id` (null: none) */
  selectSearch(id: string | null): void {
    this.store.selectSearch(id);
    if (id) {
      void this.loadSearch(id);
    }
  }

  async cancelSearch(id: string): Promise<void> {
    this.store.putSearch(await this.api.cancelSearch(id));
  }

  selectRow(kind: 'task' | 'workflow', id: string): void {
    this.store.select({ kind, id });
    if (kind === 'workflow') {
      const run = this.store.runs.get(id);
      if (!run?.steps) {
        void this.loadRun(id);
      }
    }
  }

  async cancel(kind: 'task' | 'workflow', id: string): Promise<void> {
    if (kind === 'task') {
      this.store.putTask(await this.api.cancelTask(id));
    } else {
      this.store.putRun(await this.api.cancelRun(id));
      this.store.changed();
    }
  }

  async retry(kind: 'task' | 'workflow', id: string): Promise<void> {
    if (kind === 'task') {
      this.store.putTask(await this.api.retryTask(id));
    } else {
      this.store.putRun(await this.api.retryRun(id));
      this.store.changed();
    }
  }
}
