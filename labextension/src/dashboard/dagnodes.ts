// What the dashboard's DAG panel writes in a step's box and which run it shows. Pure, no DOM.
import { formatDuration, stateLabel } from '../format';
import { formatNumber } from '../trials';
import type { IRun, ISearch, IStep } from '../types';

/** a step as GET /workflows/{id} tells it: a search step carries its search */
export type DagStep = IStep & { search?: boolean; search_id?: string | null };

/** the graph's shape (names and depends): the layout changes only when it does */
export function dagShape(runId: string, steps: readonly DagStep[]): string {
  return runId + '|' + steps.map(s => `${s.name}<${(s.depends || []).join(',')}${s.search ? '?' : ''}`).join(';');
}

/** how long a step ran (or has been running at `now`, seconds since the epoch) */
export function stepDuration(step: DagStep, now: number): number | null {
  if (step.duration !== null && step.duration !== undefined) {
    return step.duration;
  }
  if (step.started_at && !step.ended_at && step.state === 'running') {
    return Math.max(0, now - step.started_at);
  }
  if (step.started_at && step.ended_at) {
    return Math.max(0, step.ended_at - step.started_at);
  }
  return null;
}

/** `running · 1m 5s`, `succeeded (cached)`, `failed · 2.1s · attempt 2` */
export function stepStatus(step: DagStep, now: number): string {
  const parts = [stateLabel(step.state) + (step.cached ? ' (cached)' : '')];
  const took = step.cached ? '' : formatDuration(stepDuration(step, now));
  if (took) {
    parts.push(took);
  }
  if ((step.attempt || 1) > 1) {
    parts.push(`attempt ${step.attempt}`);
  }
  return parts.join(' · ');
}

/** a search step's line: `3/8 trials · best 0.08` (`search starting…` before it has one) */
export function searchLine(step: DagStep, search: ISearch | undefined): string {
  if (!step.search) {
    return '';
  }
  if (!search) {
    return step.search_id ? 'search · trials…' : 'search starting…';
  }
  const c = search.counts || {};
  const started = Object.entries(c)
    .filter(([k]) => k !== 'total' && k !== 'planned')
    .reduce((n, [, v]) => n + (v || 0), 0);
  const parts = [c.total ? `${started}/${c.total} trials` : `${started} trials`];
  if (search.best) {
    parts.push(`best ${formatNumber(search.best.value)}`);
  }
  return parts.join(' · ');
}

/** a name cut to `width` characters */
export function clip(text: string, width: number): string {
  return text.length > width ? text.slice(0, width - 1) + '…' : text;
}

/** The run to show: the selected one, else the one shown before (still known), else the
 * newest run. */
export function runToShow(runs: ReadonlyMap<string, IRun>, selected: string | null, before: string | null): IRun | undefined {
  if (selected && runs.has(selected)) {
    return runs.get(selected);
  }
  if (before && runs.has(before)) {
    return runs.get(before);
  }
  let newest: IRun | undefined;
  for (const r of runs.values()) {
    if (!newest || r.created_at > newest.created_at || (r.created_at === newest.created_at && r.id > newest.id)) {
      newest = r;
    }
  }
  return newest;
}
