// Turning values into the short text the views show: durations, byte sizes, resources,
// times ("3m ago"), ids and task/run states. Pure functions, no DOM.
import type { IResources } from './types';

export function formatBytes(n: number | undefined | null): string {
  if (n === undefined || n === null || !isFinite(n)) {
    return '';
  }
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds) || seconds < 0) {
    return '';
  }
  if (seconds < 60) {
    return seconds < 10 ? `${seconds.toFixed(1)}s` : `${Math.round(seconds)}s`;
  }
  const s = Math.round(seconds);
  if (s < 3600) {
    return `${Math.floor(s / 60)}m ${s % 60}s`;
  }
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export function formatResources(r: IResources | undefined): string {
  if (!r) {
    return '';
  }
  const parts: string[] = [];
  if (r.gpus) {
    parts.push(`${r.gpus} GPU${r.gpus > 1 ? 's' : ''}${r.gpu_type ? ' ' + r.gpu_type : ''}`);
  }
  if (r.cpus) {
    parts.push(`${r.cpus} CPU`);
  }
  if (r.memory) {
    parts.push(typeof r.memory === 'number' ? formatBytes(r.memory) : String(r.memory));
  }
  return parts.join(' · ');
}

/** how long ago a server time (seconds since the epoch) was: "42s ago", "3m ago", a date */
export function ago(ts: number | null | undefined, now = Date.now() / 1000): string {
  if (!ts) {
    return '';
  }
  const d = Math.max(0, now - ts);
  if (d < 60) {
    return `${Math.round(d)}s ago`;
  }
  if (d < 3600) {
    return `${Math.round(d / 60)}m ago`;
  }
  if (d < 86400) {
    return `${Math.round(d / 3600)}h ago`;
  }
  return new Date(ts * 1000).toLocaleDateString();
}

export function shortId(id: string): string {
  return id.length > 10 ? id.slice(0, 8) + '…' : id;
}

/** a task, run or step state as words ("timed_out" -> "timed out") */
export function stateLabel(state: string): string {
  return state.replace('_', ' ');
}

/** What each slot of a worker shows: the id of the caller's task in it, `null` for another
 * user's task (the server counts it in `slots_used` but does not name it), `undefined` free. */
export function slotHolders(running: string[], slotsUsed: number, slots: number): (string | null | undefined)[] {
  const others = Math.max(0, slotsUsed - running.length);
  const out: (string | null | undefined)[] = [...running, ...Array<null>(others).fill(null)];
  while (out.length < slots) {
    out.push(undefined);
  }
  return out;
}
