// The REST client of /orch/api/v1 (URLs, errors, one method per endpoint; formatting is in
// format.ts). Pure: the transport is injected (in the lab it is
// ServerConnection.makeRequest, so Jupyter's own auth applies), which keeps it unit-testable.
import type { ICheckpoint, IHoldings, IInfo, IParameter, IProviderInfo, IRun, ISearch, ITask, IWorker, ILogLine } from './types';

export const API_PATH = 'orch/api/v1';

export type Fetcher = (url: string, init: RequestInit) => Promise<Response>;

/** An API failure, with a message a user can act on. */
export class OrchApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string = '',
    readonly field?: string
  ) {
    super(message);
    this.name = 'OrchApiError';
  }
}

export function joinUrl(base: string, ...parts: string[]): string {
  let out = base.replace(/\/+$/, '');
  for (const part of parts) {
    const p = part.replace(/^\/+/, '').replace(/\/+$/, '');
    if (p) {
      out += '/' + p;
    }
  }
  return out;
}

export function queryString(query?: Record<string, string | number | undefined | null>): string {
  if (!query) {
    return '';
  }
  const pairs: string[] = [];
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === '') {
      continue;
    }
    pairs.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  }
  return pairs.length ? '?' + pairs.join('&') : '';
}

/** The full URL of an API path (e.g. `tasks/abc/logs`) under the server's base URL. */
export function apiUrl(
  baseUrl: string,
  path: string,
  query?: Record<string, string | number | undefined | null>
): string {
  return joinUrl(baseUrl, API_PATH, path) + queryString(query);
}

/** The WebSocket URL of an API path; the token (if any) rides along as Jupyter expects. */
export function wsUrl(wsBase: string, path: string, query?: Record<string, string>, token?: string): string {
  const q: Record<string, string> = { ...(query || {}) };
  if (token) {
    q.token = token;
  }
  return joinUrl(wsBase, API_PATH, path) + queryString(q);
}

export const NO_EXTENSION_MESSAGE =
  'The jupyter-orch server extension is not enabled on this Jupyter server. ' +
  'Install it into the environment that runs JupyterLab (pip install jupyter-orch), then enable it ' +
  'with `jupyter server extension enable jupyter_orch` and restart JupyterLab.';

/** A sentence for a failed response (the server's JSON error when there is one). */
export function errorMessage(status: number, body: unknown, what = 'request'): string {
  let message = '';
  if (body && typeof body === 'object') {
    const b = body as { message?: unknown; error?: unknown; field?: unknown; problems?: unknown };
    if (typeof b.message === 'string') {
      message = b.message;
    } else if (typeof b.error === 'string') {
      message = b.error;
    }
    if (Array.isArray(b.problems) && b.problems.length) {
      message += (message ? ': ' : '') + b.problems.join('; ');
    }
  } else if (typeof body === 'string' && body.trim() && !body.trim().startsWith('<')) {
    message = body.trim().slice(0, 300);
  }
  if (message) {
    return message;
  }
  switch (status) {
    case 0:
      return `The Jupyter server cannot be reached (${what}); is it still running?`;
    case 401:
      return 'Not signed in to the Jupyter server (401): reload the page and log in again.';
    case 403:
      return `Not allowed (403): ${what}.`;
    case 404:
      return `Not found (404): ${what}.`;
    case 409:
      return `Not possible in its current state (409): ${what}.`;
    case 413:
      return `Too large (413): ${what}.`;
    default:
      if (status >= 500) {
        return `The server failed (${status}) on ${what}; see the Jupyter server's log.`;
      }
      return `${what} failed (${status}).`;
  }
}

export interface ITaskQuery {
  /** whose tasks: the caller's by default; another user's or everyone's (`*`) with read-all */
  owner?: string;
  state?: string;
  q?: string;
  limit?: number;
  before?: number;
}

export interface INotebookJob {
  path: string;
  parameters: Record<string, unknown>;
  resources: { gpus?: number; cpus?: number; memory?: string | null };
  image?: string | null;
}

export class OrchApi {
  constructor(
    readonly baseUrl: string,
    private readonly fetcher: Fetcher
  ) {}

  url(path: string, query?: Record<string, string | number | undefined | null>): string {
    return apiUrl(this.baseUrl, path, query);
  }

  async request<T>(
    method: string,
    path: string,
    opts: { query?: Record<string, string | number | undefined | null>; body?: unknown; what?: string } = {}
  ): Promise<T> {
    const init: RequestInit = { method };
    if (opts.body !== undefined) {
      init.body = JSON.stringify(opts.body);
      init.headers = { 'Content-Type': 'application/json' };
    }
    const what = opts.what || `${method} ${path}`;
    let response: Response;
    try {
      response = await this.fetcher(this.url(path, opts.query), init);
    } catch (err) {
      throw new OrchApiError(errorMessage(0, null, what), 0, 'network');
    }
    const text = await response.text();
    let data: unknown = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = text;
      }
    }
    if (!response.ok) {
      const b = (data && typeof data === 'object' ? data : {}) as { error?: string; field?: string };
      throw new OrchApiError(errorMessage(response.status, data, what), response.status, b.error || '', b.field);
    }
    return data as T;
  }

  async info(): Promise<IInfo> {
    try {
      return await this.request<IInfo>('GET', 'info', { what: 'reading the orchestrator info' });
    } catch (err) {
      if (err instanceof OrchApiError && err.status === 404) {
        throw new OrchApiError(NO_EXTENSION_MESSAGE, 404, 'no_extension');
      }
      throw err;
    }
  }

  async tasks(query: ITaskQuery = {}): Promise<ITask[]> {
    const r = await this.request<{ tasks: ITask[] }>('GET', 'tasks', {
      query: { ...query },
      what: 'listing tasks'
    });
    return r.tasks;
  }

  task(id: string): Promise<ITask> {
    return this.request<ITask>('GET', `tasks/${encodeURIComponent(id)}`, { what: `reading task ${id}` });
  }

  cancelTask(id: string): Promise<ITask> {
    return this.request<ITask>('POST', `tasks/${encodeURIComponent(id)}/cancel`, { what: `cancelling task ${id}` });
  }

  retryTask(id: string): Promise<ITask> {
    return this.request<ITask>('POST', `tasks/${encodeURIComponent(id)}/retry`, { what: `retrying task ${id}` });
  }

  async logs(
    id: string,
    query: { offset?: number; limit?: number; attempt?: number } = {}
  ): Promise<{ lines: ILogLine[]; next_offset: number; state?: string; attempt: number }> {
    return this.request('GET', `tasks/${encodeURIComponent(id)}/logs`, { query, what: `reading the log of ${id}` });
  }

  async checkpoints(id: string): Promise<ICheckpoint[]> {
    const r = await this.request<{ checkpoints: ICheckpoint[] }>('GET', `tasks/${encodeURIComponent(id)}/checkpoints`, {
      what: `listing the checkpoints of ${id}`
    });
    return r.checkpoints;
  }

  async runs(query: { state?: string; limit?: number; before?: string } = {}): Promise<IRun[]> {
    const r = await this.request<{ runs: IRun[] }>('GET', 'workflows', { query, what: 'listing workflow runs' });
    return r.runs;
  }

  run(id: string): Promise<IRun> {
    return this.request<IRun>('GET', `workflows/${encodeURIComponent(id)}`, { what: `reading run ${id}` });
  }

  cancelRun(id: string): Promise<IRun> {
    return this.request<IRun>('POST', `workflows/${encodeURIComponent(id)}/cancel`, { what: `cancelling run ${id}` });
  }

  retryRun(id: string): Promise<IRun> {
    return this.request<IRun>('POST', `workflows/${encodeURIComponent(id)}/retry`, { what: `retrying run ${id}` });
  }

  /** the caller's hyperparameter searches, newest first (without their trials) */
  async searches(query: { limit?: number } = {}): Promise<ISearch[]> {
    const r = await this.request<{ searches?: ISearch[] }>('GET', 'searches', { query, what: 'listing searches' });
    return r?.searches || [];
  }

  /** a search with its trials, best first */
  search(id: string): Promise<ISearch> {
    return this.request<ISearch>('GET', `searches/${encodeURIComponent(id)}`, { what: `reading search ${id}` });
  }

  cancelSearch(id: string): Promise<ISearch> {
    return this.request<ISearch>('POST', `searches/${encodeURIComponent(id)}/cancel`, {
      what: `cancelling search ${id}`
    });
  }

  /** per user and group: work placed and waiting, GPUs held, against their quotas (read-all) */
  holdings(): Promise<IHoldings> {
    return this.request<IHoldings>('GET', 'admin/holdings', { what: "reading every user's holdings" });
  }

  workers(): Promise<{ workers: IWorker[]; provider?: IProviderInfo }> {
    return this.request('GET', 'workers', { what: 'listing workers' });
  }

  async notebookParameters(path: string): Promise<IParameter[]> {
    const r = await this.request<{ parameters: IParameter[] }>('GET', 'notebooks/parameters', {
      query: { path },
      what: `reading the parameters of ${path}`
    });
    return r.parameters || [];
  }

  runNotebook(job: INotebookJob): Promise<ITask> {
    return this.request<ITask>('POST', 'notebooks/run', { body: job, what: `running ${job.path} as a job` });
  }
}
