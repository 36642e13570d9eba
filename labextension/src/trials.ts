// A hyperparameter search as the Searches view shows it: the trials table (a column per
// parameter, the best value of the metric and its step, the state, the best trial marked), the
// one-line summaries of a search, and the formatting of values. Pure functions, no DOM.
import type { ISearch, ITrial } from './types';

/** what a trial's state reads as ("stopping" is a stop decided, not done yet) */
const TRIAL_STATE_LABELS: Record<string, string> = {
  planned: 'planned',
  running: 'running',
  stopping: 'stopping',
  succeeded: 'succeeded',
  failed: 'failed',
  cancelled: 'cancelled',
  stopped: 'stopped early'
};

const TRIAL_ENDINGS = new Set(['succeeded', 'failed', 'cancelled', 'stopped']);
const TASK_ENDINGS = new Set(['succeeded', 'failed', 'cancelled']);

/** A trial's state, brought up to date by its task's: a task that ended before its search
 * took note (or after the search itself ended) ends the trial as the search would. */
export function trialState(state: string, taskState?: string): string {
  if (!taskState || TRIAL_ENDINGS.has(state) || !TASK_ENDINGS.has(taskState)) {
    return state;
  }
  if (state === 'stopping') {
    return taskState === 'succeeded' ? 'succeeded' : 'stopped';
  }
  return state === 'running' ? taskState : state;
}

/** The states a search's counts are listed in (the others follow in their own order). */
const COUNT_ORDER = ['running', 'stopping', 'planned', 'succeeded', 'stopped', 'failed', 'cancelled'];

/** A number as a short text: integers whole, others with 4 significant digits (as Python's
 * `.4g`, which the cell and the CLI use); anything else as JSON. */
export function formatNumber(value: unknown): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (typeof value !== 'number') {
    return typeof value === 'string' ? value : JSON.stringify(value);
  }
  if (!isFinite(value)) {
    return isNaN(value) ? 'NaN' : value > 0 ? '∞' : '-∞';
  }
  if (Number.isInteger(value) && Math.abs(value) < 1e15) {
    return String(value);
  }
  const text = value.toPrecision(4);
  if (text.includes('e')) {
    // 1.000e-7 -> 1e-7, 1.250e+21 -> 1.25e+21
    return text.replace(/\.?0+e/, 'e');
  }
  return String(Number(text));
}

/** a parameter's value in a cell: numbers as formatNumber, text as it is, others as JSON */
export function formatParam(value: unknown): string {
  if (typeof value === 'boolean') {
    return value ? 'true' : 'false';
  }
  return formatNumber(value);
}

/** `lr=0.01 width=8` */
export function formatParams(params: Record<string, unknown>, names?: string[]): string {
  const keys = names ?? Object.keys(params);
  return keys
    .filter(k => k in params)
    .map(k => `${k}=${formatParam(params[k])}`)
    .join(' ');
}

export function trialStateLabel(state: string): string {
  return TRIAL_STATE_LABELS[state] ?? state.replace('_', ' ');
}

/** The parameter columns: the space's names in its order, then any other name a trial has. */
export function paramNames(search: Pick<ISearch, 'space' | 'trials'>): string[] {
  const names = Object.keys(search.space || {});
  const seen = new Set(names);
  const extra = new Set<string>();
  for (const t of search.trials || []) {
    for (const k of Object.keys(t.params || {})) {
      if (!seen.has(k)) {
        extra.add(k);
      }
    }
  }
  return [...names, ...[...extra].sort()];
}

export interface ITrialColumn {
  /** `number`, `param`, `value`, `step` or `state` */
  kind: 'number' | 'param' | 'value' | 'step' | 'state';
  /** the parameter's name for `param` columns */
  name: string;
  label: string;
  title: string;
}

/** the metric and which way is better: `loss ↓` (lower is better) or `acc ↑` */
export function metricLabel(search: Pick<ISearch, 'config'>): string {
  const metric = search.config?.metric || 'metric';
  return `${metric} ${search.config?.mode === 'max' ? '↑' : '↓'}`;
}

export function trialColumns(search: Pick<ISearch, 'space' | 'trials' | 'config'>): ITrialColumn[] {
  const metric = search.config?.metric || 'metric';
  const better = search.config?.mode === 'max' ? 'higher' : 'lower';
  return [
    { kind: 'number', name: '', label: '#', title: 'trial number' },
    ...paramNames(search).map(name => ({ kind: 'param' as const, name, label: name, title: `parameter ${name}` })),
    {
      kind: 'value',
      name: metric,
      label: `best ${metricLabel(search)}`,
      title: `the best ${metric} the trial reported (${better} is better)`
    },
    { kind: 'step', name: '', label: 'step', title: `the step of its best ${metric}` },
    { kind: 'state', name: '', label: 'state', title: 'the trial’s state' }
  ];
}

export interface ITrialRow {
  number: number;
  taskId: string | null;
  /** the trial's state (brought up to date by its task's, see trialState) */
  state: string;
  /** the state as shown: `running` trials whose task waits for a worker read `queued` */
  stateText: string;
  /** one text per parameter column, in order */
  params: string[];
  value: string;
  step: string;
  /** the search's best trial */
  best: boolean;
  /** why it was stopped, or its last value */
  title: string;
}

/** The table's rows, in the server's order (best first, trials without a value last).
 * `taskState` tells the state of a trial's task when known (to say a trial is queued). */
export function trialRows(search: ISearch, taskState?: (taskId: string) => string | undefined): ITrialRow[] {
  const names = paramNames(search);
  const bestNumber = search.best?.number;
  return (search.trials || []).map((t: ITrial) => {
    const task = t.task_id && taskState ? taskState(t.task_id) : undefined;
    const state = trialState(t.state, task);
    const queued = state === 'running' && (task === 'pending' || task === 'scheduled');
    const title: string[] = [];
    if (t.reason) {
      title.push(t.reason);
    }
    if (t.last !== null && t.last !== undefined) {
      title.push(`last ${search.config?.metric || 'value'} ${formatNumber(t.last)} at step ${formatNumber(t.step)}`);
    }
    return {
      number: t.number,
      taskId: t.task_id ?? null,
      state,
      stateText: queued ? 'queued' : trialStateLabel(state),
      params: names.map(n => formatParam((t.params || {})[n])),
      value: formatNumber(t.best),
      step: formatNumber(t.best_step),
      best: bestNumber !== undefined && t.number === bestNumber && t.best !== null,
      title: title.join('\n')
    };
  });
}

/** `5/8 trials · 2 running · 3 succeeded` (the total is what the search runs at most) */
export function countsText(counts: Record<string, number> | undefined): string {
  const c = counts || {};
  const started = Object.entries(c)
    .filter(([k]) => k !== 'total' && k !== 'planned')
    .reduce((n, [, v]) => n + (v || 0), 0);
  const parts = [c.total ? `${started}/${c.total} trials` : `${started} trials`];
  const states = [...COUNT_ORDER, ...Object.keys(c).filter(k => k !== 'total' && !COUNT_ORDER.includes(k))];
  for (const s of states) {
    if (c[s]) {
      parts.push(`${c[s]} ${trialStateLabel(s)}`);
    }
  }
  return parts.join(' · ');
}

/** `best loss 0.08 at step 1 · #3 lr=0.01 width=8`, or a sentence while none has one */
export function bestText(search: ISearch): string {
  const metric = search.config?.metric || 'metric';
  const b = search.best;
  if (!b) {
    return search.state === 'running' ? `no ${metric} reported yet` : `no trial reported ${metric}`;
  }
  const at = b.step !== null && b.step !== undefined ? ` at step ${formatNumber(b.step)}` : '';
  const params = formatParams(b.params || {}, paramNames({ space: search.space, trials: [{ params: b.params } as ITrial] }));
  return `best ${metric} ${formatNumber(b.value)}${at} · #${b.number}${params ? ' ' + params : ''}`;
}

/** `grid · loss min · 2 at a time` */
export function configText(search: Pick<ISearch, 'config'>): string {
  const c = search.config || {};
  const parts = [c.scheduler || 'asha', `${c.metric || 'metric'} ${c.mode || 'min'}`];
  if (c.max_concurrent) {
    parts.push(`${c.max_concurrent} at a time`);
  }
  if (c.scheduler === 'asha' && c.max_t) {
    parts.push(`max_t ${c.max_t}`);
  }
  return parts.join(' · ');
}

/** when a search started: the time today, else the date and time (unlike "3m ago", it does
 * not go stale between redraws) */
export function startedText(ts: number, now = Date.now() / 1000): string {
  const d = new Date(ts * 1000);
  const today = new Date(now * 1000).toDateString() === d.toDateString();
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return `started ${today ? time : `${d.toLocaleDateString()} ${time}`}`;
}

/** newest first */
export function sortSearches(searches: Iterable<ISearch>): ISearch[] {
  return [...searches].sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}

export function isActiveSearch(search: Pick<ISearch, 'state'> | undefined | null): boolean {
  return search?.state === 'running';
}
