import { describe, expect, it } from 'vitest';
import { clip, DagStep, dagShape, runToShow, searchLine, stepDuration, stepStatus } from '../dashboard/dagnodes';
import type { IRun, ISearch } from '../types';

function step(name: string, state: string, extra: Partial<DagStep> = {}): DagStep {
  return { name, kind: 'shell', task_id: `t-${name}`, depends: [], state, ...extra };
}

function run(id: string, at: number): IRun {
  return { id, name: id, owner: 'ann', state: 'running', params: {}, created_at: at, step_count: 1 };
}

describe('what a DAG node says', () => {
  it('state, duration (live while running), cached, attempt', () => {
    expect(stepStatus(step('a', 'succeeded', { duration: 2.5 }), 0)).toBe('succeeded · 2.5s');
    expect(stepStatus(step('a', 'running', { started_at: 100 }), 165)).toBe('running · 1m 5s');
    expect(stepStatus(step('a', 'succeeded', { cached: true, duration: 0 }), 0)).toBe('succeeded (cached)');
    expect(stepStatus(step('a', 'upstream_failed', { attempt: 2 }), 0)).toBe('upstream failed · attempt 2');
    expect(stepDuration(step('a', 'pending'), 5)).toBeNull();
    expect(stepDuration(step('a', 'failed', { started_at: 1, ended_at: 4 }), 9)).toBe(3);
  });

  it('a search step: trials and best value', () => {
    const s = step('tune', 'running', { search: true, search_id: 'S' });
    expect(searchLine(step('x', 'running'), undefined)).toBe('');
    expect(searchLine(s, undefined)).toBe('search · trials…');
    expect(searchLine({ ...s, search_id: null }, undefined)).toBe('search starting…');
    const search = { counts: { running: 2, succeeded: 3, planned: 1, total: 8 }, best: { value: 0.0812345 } } as unknown as ISearch;
    expect(searchLine(s, search)).toBe('5/8 trials · best 0.08123');
  });

  it('the shape changes with the graph, not with states', () => {
    const a = [step('a', 'pending'), step('b', 'pending', { depends: ['a'] })];
    const b = [step('a', 'succeeded'), step('b', 'running', { depends: ['a'] })];
    expect(dagShape('r', a)).toBe(dagShape('r', b));
    expect(dagShape('r', a)).not.toBe(dagShape('r', [a[0], step('b', 'pending')]));
    expect(clip('abcdef', 4)).toBe('abc…');
  });

  it('shows the selected run, else the one shown before, else the newest', () => {
    const runs = new Map([run('old', 1), run('new', 5), run('mid', 3)].map(r => [r.id, r]));
    expect(runToShow(runs, 'mid', 'old')?.id).toBe('mid');
    expect(runToShow(runs, null, 'old')?.id).toBe('old');
    expect(runToShow(runs, 'gone', null)?.id).toBe('new');
    expect(runToShow(new Map(), null, null)).toBeUndefined();
  });
});
