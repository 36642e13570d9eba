// Which tasks the experiments panel offers and how it names them, and its checkpoints table.
// Pure, no DOM.
import { formatBytes } from '../format';
import { formatNumber, formatParams, paramNames } from '../trials';
import type { ICheckpoint, ISearch, ITask } from '../types';

/** what GET /tasks/{id}/metrics said of a task: its metrics' names, when its state was `state` */
export interface IProbe {
  names: string[];
  state: string;
}

const STARTED = new Set(['running', 'succeeded', 'failed', 'cancelled']);

/** The tasks to ask whether they reported metrics: the newest `limit` tasks that ran, unless
 * asked already (a task found without metrics is asked again once its state changed: a
 * running task may report later). */
export function toProbe(tasks: Iterable<ITask>, known: ReadonlyMap<string, IProbe>, limit = 60): string[] {
  const ran = [...tasks]
    .filter(t => STARTED.has(t.state) || !!t.started_at)
    .sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? 1 : -1))
    .slice(0, limit);
  return ran.filter(t => {
    const p = known.get(t.id);
    return !p || (!p.names.length && p.state !== t.state);
  }).map(t => t.id);
}

export interface ITaskChoice {
  id: string;
  label: string;
  state: string;
  names: string[];
  created_at: number;
}

/** The tasks that reported metrics, newest first: those probed with names, and `more` (the
 * chosen ones and those a live point came from), labelled by `label`. */
export function metricTasks(
  tasks: ReadonlyMap<string, ITask>,
  known: ReadonlyMap<string, IProbe>,
  more: Iterable<string>,
  label: (id: string) => string
): ITaskChoice[] {
  const ids = new Set<string>();
  for (const [id, p] of known) {
    if (p.names.length) {
      ids.add(id);
    }
  }
  for (const id of more) {
    ids.add(id);
  }
  return [...ids]
    .map(id => {
      const t = tasks.get(id);
      return { id, label: label(id), state: t?.state ?? 'unknown', names: known.get(id)?.names ?? [], created_at: t?.created_at ?? 0 };
    })
    .sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? 1 : -1));
}

/** a trial's task as the panel names it: `#3 lr=0.01 width=8` */
export function trialLabel(search: ISearch, taskId: string): string | null {
  const t = (search.trials || []).find(x => x.task_id === taskId);
  if (!t) {
    return null;
  }
  const params = formatParams(t.params || {}, paramNames(search));
  return `#${t.number}${params ? ' ' + params : ''}`;
}

/** the trials' tasks, by trial number */
export function trialTasks(search: ISearch | undefined): string[] {
  return [...(search?.trials || [])]
    .sort((a, b) => a.number - b.number)
    .map(t => t.task_id)
    .filter((id): id is string => !!id);
}

export interface ICheckpointRow {
  id: string;
  step: string;
  size: string;
  time: string;
  attempt: string;
  metadata: string;
  files: string;
}

/** a metadata value as a short text */
function metaValue(v: unknown): string {
  if (typeof v === 'number') {
    return formatNumber(v);
  }
  if (typeof v === 'string') {
    return v.length > 40 ? v.slice(0, 39) + '…' : v;
  }
  const s = JSON.stringify(v);
  return s && s.length > 40 ? s.slice(0, 39) + '…' : s ?? '';
}

/** The checkpoints table's rows, newest first. `time` formats a time (seconds since the epoch). */
export function checkpointRows(
  checkpoints: readonly ICheckpoint[],
  time: (ts: number) => string = ts => new Date(ts * 1000).toLocaleString()
): ICheckpointRow[] {
  return [...checkpoints]
    .sort((a, b) => b.created - a.created || (b.step ?? -1) - (a.step ?? -1))
    .map(c => ({
      id: c.id,
      step: c.step === null || c.step === undefined ? '' : String(c.step),
      size: formatBytes(c.size),
      time: time(c.created),
      attempt: String(c.attempt),
      metadata: Object.entries(c.metadata || {})
        .map(([k, v]) => `${k}=${metaValue(v)}`)
        .join(' '),
      files: `${c.files.length} file${c.files.length === 1 ? '' : 's'}`
    }));
}
