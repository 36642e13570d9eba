// The queue panel's rows: the store's waiting tasks (pending, scheduled), oldest first, with why
// each waits, its priority, what it asks for and how long it has waited. Pure.
import { formatResources } from '../format';
import type { ITask } from '../types';

export const WAITING_STATES = new Set(['pending', 'scheduled']);

export interface IQueueRow {
  id: string;
  name: string;
  owner: string;
  state: string;
  priority: number;
  resources: string;
  reason: string;
  /** when it started waiting (seconds since the epoch) */
  since: number;
  /** a retry waits for its delay to pass: when it may run again */
  retryAt: number | null;
}

/** the waiting tasks, oldest first (ties: higher priority first, then by id) */
export function queueRows(tasks: Iterable<ITask>): IQueueRow[] {
  const out: IQueueRow[] = [];
  for (const t of tasks) {
    if (!WAITING_STATES.has(t.state)) {
      continue;
    }
    const extra = t as ITask & { priority?: number; retry_at?: number | null };
    out.push({
      id: t.id,
      name: t.name || t.id,
      owner: t.owner,
      state: t.state,
      priority: typeof extra.priority === 'number' ? extra.priority : 0,
      resources: formatResources(t.resources) || '1 slot',
      reason: t.reason || (t.state === 'scheduled' ? 'placed on a worker, starting' : 'waiting for a free slot'),
      since: t.created_at,
      retryAt: extra.retry_at ?? null
    });
  }
  out.sort((a, b) => a.since - b.since || b.priority - a.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return out;
}

/** "Queue" with the count of waiting tasks: "Queue (3)" */
export function queueTitle(count: number): string {
  return count ? `Queue (${count})` : 'Queue';
}

/** how long a row has waited at `now`: "42s", "3m 5s", "2h 10m" */
export function waited(since: number, now: number): string {
  const s = Math.max(0, Math.floor(now - since));
  if (s < 60) {
    return `${s}s`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)}m ${s % 60}s`;
  }
  if (s < 86400) {
    return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  }
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}
