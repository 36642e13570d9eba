// Turning values into the short text the views show: durations, byte sizes, resources,
// times ("3m ago"), ids and task/run states. Pure functions, no DOM.
import type { IResources, IRun, IStep } from './types';

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

/** used of total bytes, the unit said once when both share it: "3.6 / 24 GiB", "512 MiB / 24 GiB" */
export function formatUsage(used: number, total: number): string {
  const [u, t] = [formatBytes(used), formatBytes(total)];
  const [uNum, uUnit] = u.split(' ');
  return uUnit && uUnit === t.split(' ')[1] ? `${uNum} / ${t}` : `${u} / ${t}`;
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

/** A workflow run's size in the runs list: "4 steps" for every run. The list carries each
 * run's step count, not its steps' states (those are read for the selected run only), so a
 * "done/total" would show for one row and not the others, and for an ended run it would
 * read "4/4" even when steps failed; progress is the run's state and its steps' list. */
export function runStepsLabel(run: Pick<IRun, 'step_count' | 'steps'> | undefined): string {
  if (!run) {
    return '';
  }
  const n = run.steps?.length || run.step_count || 0;
  return `${n} step${n === 1 ? '' : 's'}`;
}

/** The steps in dependency order: by depth (the longest chain of steps before it), then as
 * the workflow file lists them; a step depending on an unknown step counts it as done. */
export function orderSteps<T extends Pick<IStep, 'name' | 'depends'>>(steps: T[]): { step: T; depth: number }[] {
  const byName = new Map(steps.map(s => [s.name, s]));
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const depthOf = (s: T): number => {
    const known = depth.get(s.name);
    if (known !== undefined) {
      return known;
    }
    if (visiting.has(s.name)) {
      return 0; // a cycle (the server refuses them): no infinite loop here
    }
    visiting.add(s.name);
    let d = 0;
    for (const name of s.depends || []) {
      const up = byName.get(name);
      if (up) {
        d = Math.max(d, depthOf(up) + 1);
      }
    }
    visiting.delete(s.name);
    depth.set(s.name, d);
    return d;
  };
  return steps
    .map((step, i) => ({ step, depth: depthOf(step), i }))
    .sort((a, b) => a.depth - b.depth || a.i - b.i)
    .map(({ step, depth: d }) => ({ step, depth: d }));
}

/** the second line of a step: what it waits for, its duration */
export function stepMeta(s: Pick<IStep, 'depends' | 'duration' | 'kind' | 'cached'>): string {
  const parts = [s.kind, s.depends?.length ? `after ${s.depends.join(', ')}` : '', s.duration ? formatDuration(s.duration) : ''];
  return parts.filter(Boolean).join(' · ');
}
