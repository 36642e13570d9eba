import { describe, expect, it } from 'vitest';
import { matchesFilter, OrchStore, rowDuration } from '../store';
import type { IRun, ITask, IWorker } from '../types';

function task(id: string, state: string, at: number, extra: Partial<ITask> = {}): ITask {
  return { id, name: `task-${id}`, kind: 'shell', owner: 'ann', state, resources: { gpus: 1 }, attempt: 1, created_at: at, updated_at: at, ...extra };
}

function worker(id: string, extra: Partial<IWorker> = {}): IWorker {
  return { id, name: `w-${id}`, state: 'connected', labels: {}, slots: 2, slots_used: 0, cpus: 4, memory: 1 << 30, gpus: [], ...extra };
}

describe('events', () => {
  it('applies task events in order and ignores stale ones', () => {
    const s = new OrchStore();
    s.apply({ type: 'task', task: task('a', 'pending', 1) });
    s.apply({ type: 'task', task: task('a', 'running', 1, { updated_at: 3, worker_id: 'w1' }) });
    s.apply({ type: 'task', task: task('a', 'scheduled', 1, { updated_at: 2 }) }); // late
    expect(s.tasks.get('a')!.state).toBe('running');
    s.apply({ type: 'task', task: task('a', 'succeeded', 1, { updated_at: 4, duration: 1.5, ended_at: 4 }) });
    expect(s.rows()[0]).toMatchObject({ id: 'a', state: 'succeeded', kind: 'task', duration: 1.5 });
  });

  it('lists tasks and runs newest first', () => {
    const s = new OrchStore();
    s.reset([task('a', 'running', 10), task('b', 'failed', 30)], [{ id: 'r', name: 'pipe', owner: 'ann', state: 'running', params: {}, created_at: 20, step_count: 2 }], []);
    expect(s.rows().map(r => `${r.kind}:${r.id}`)).toEqual(['task:b', 'workflow:r', 'task:a']);
  });

  it('updates a run step from its task event', () => {
    const s = new OrchStore();
    const run: IRun = {
      id: 'r', name: 'pipe', owner: 'ann', state: 'running', params: {}, created_at: 1, updated_at: 1, step_count: 2,
      steps: [
        { name: 'prep', kind: 'shell', task_id: 't1', depends: [], state: 'running' },
        { name: 'train', kind: 'notebook', task_id: 't2', depends: ['prep'], state: 'pending' }
      ]
    };
    s.apply({ type: 'run', run });
    s.apply({ type: 'task', task: task('t1', 'succeeded', 1, { updated_at: 2 }) });
    s.apply({ type: 'task', task: task('t2', 'running', 1, { updated_at: 3 }) });
    const steps = s.runs.get('r')!.steps!;
    expect(steps.map(x => x.state)).toEqual(['succeeded', 'running']);
    // a run event without steps keeps the steps known
    s.apply({ type: 'run', run: { ...run, steps: undefined, state: 'succeeded', updated_at: 5 } });
    expect(s.runs.get('r')!.state).toBe('succeeded');
    expect(s.runs.get('r')!.steps!.length).toBe(2);
  });

  it('tracks workers from hello and worker events', () => {
    const s = new OrchStore();
    s.apply({ type: 'hello', seq: 1, workers: [worker('1'), worker('2')] });
    expect(s.workers.size).toBe(2);
    s.apply({ type: 'worker', worker: worker('2', { slots_used: 1, running: ['t'] }) });
    expect(s.workers.get('2')!.slots_used).toBe(1);
    s.apply({ type: 'worker', worker: worker('1', { state: 'gone' }) });
    expect([...s.workers.keys()]).toEqual(['2']);
  });

  it('asks for a reload on overflow', () => {
    const s = new OrchStore();
    let reloads = 0;
    s.onReload = () => reloads++;
    expect(s.apply({ type: 'overflow' })).toBe(false);
    expect(reloads).toBe(1);
  });

  it('batches change notifications', () => {
    const queue: (() => void)[] = [];
    const s = new OrchStore(cb => queue.push(cb));
    let calls = 0;
    s.subscribe(() => calls++);
    for (let i = 0; i < 100; i++) {
      s.apply({ type: 'task', task: task(String(i), 'pending', i) });
    }
    expect(queue.length).toBe(1);
    queue.shift()!();
    expect(calls).toBe(1);
  });

  it('keeps at most maxTasks, never dropping active ones', () => {
    const s = new OrchStore();
    s.maxTasks = 3;
    s.reset([task('old-running', 'running', 1), task('b', 'succeeded', 2), task('c', 'succeeded', 3)], [], []);
    s.apply({ type: 'task', task: task('d', 'pending', 4) });
    expect([...s.tasks.keys()].sort()).toEqual(['c', 'd', 'old-running']);
  });

  it('finds which task holds each GPU', () => {
    const s = new OrchStore();
    const w = worker('1', { gpus: [{ index: 0, task_id: 'x' }, { index: 1 }] });
    expect([...s.gpuHolders(w)]).toEqual([[0, 'x']]);
    s.reset([task('y', 'running', 1, { gpus: [1], worker_id: '2' })], [], []);
    expect([...s.gpuHolders(worker('2', { gpus: [{ index: 1 }], running: ['y'] }))]).toEqual([[1, 'y']]);
  });
});

describe('filter', () => {
  const s = new OrchStore();
  s.reset(
    [task('a1', 'running', 1, { name: 'train resnet' }), task('b2', 'failed', 2, { name: 'eval', owner: 'bob' }), task('c3', 'succeeded', 3, { name: 'prep data' })],
    [{ id: 'r9', name: 'nightly', owner: 'ann', state: 'running', params: {}, created_at: 4, step_count: 3 }],
    []
  );
  it('filters by state', () => {
    s.setFilter({ state: 'failed', text: '' });
    expect(s.filteredRows().map(r => r.id)).toEqual(['b2']);
    s.setFilter({ state: 'active' });
    expect(s.filteredRows().map(r => r.id)).toEqual(['r9', 'a1']);
    s.setFilter({ state: 'workflow' });
    expect(s.filteredRows().map(r => r.id)).toEqual(['r9']);
  });
  it('filters by words in name, id, owner', () => {
    s.setFilter({ state: '', text: 'BOB' });
    expect(s.filteredRows().map(r => r.id)).toEqual(['b2']);
    s.setFilter({ text: 'data prep' });
    expect(s.filteredRows().map(r => r.id)).toEqual(['c3']);
    s.setFilter({ text: 'a1' });
    expect(s.filteredRows().map(r => r.id)).toEqual(['a1']);
  });
  it('matches rows', () => {
    const row = s.rows().find(r => r.id === 'a1')!;
    expect(matchesFilter(row, { text: '', state: '' })).toBe(true);
    expect(matchesFilter(row, { text: 'nothing', state: '' })).toBe(false);
  });
  it('computes live durations', () => {
    const row = { ...s.rows().find(r => r.id === 'a1')!, started_at: 100, ended_at: null, duration: null };
    expect(rowDuration(row, 130)).toBe(30);
    expect(rowDuration({ ...row, started_at: null }, 130)).toBe(null);
  });
  it('is fast for 5,000 rows', () => {
    const big = new OrchStore();
    big.reset(Array.from({ length: 5000 }, (_, i) => task(`t${i}`, i % 3 ? 'succeeded' : 'running', i)), [], []);
    const t0 = performance.now();
    big.setFilter({ text: 't49', state: 'running' });
    const n = big.filteredRows().length;
    expect(n).toBeGreaterThan(0);
    expect(performance.now() - t0).toBeLessThan(200);
  });
});
