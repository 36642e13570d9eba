import { describe, expect, it, vi } from 'vitest';
import { appendPoints, buildCharts, extent, IMetricSeries, linePath, lttb, niceTicks, Throttle } from '../dashboard/expseries';
import { checkpointRows, IProbe, metricTasks, toProbe, trialLabel, trialTasks } from '../dashboard/expselect';
import type { ICheckpoint, ISearch, ITask } from '../types';

function task(id: string, state: string, at: number, extra: Partial<ITask> = {}): ITask {
  return { id, name: id, kind: 'function', owner: 'ann', state, resources: {}, attempt: 1, created_at: at, ...extra };
}

describe('LTTB downsampling', () => {
  it('keeps short series, the first and last points, and the peaks', () => {
    expect(lttb([1, 2, 3], [1, null, 3], 5)).toEqual({ x: [1, 2, 3], y: [1, null, 3] });
    const xs = Array.from({ length: 10000 }, (_, i) => i);
    const ys = xs.map(i => (i === 5000 ? 100 : Math.sin(i / 300)));
    const out = lttb(xs, ys, 200);
    expect(out.x).toHaveLength(200);
    expect(out.x[0]).toBe(0);
    expect(out.x[199]).toBe(9999);
    expect(out.y).toContain(100); // a spike survives
    for (let i = 1; i < out.x.length; i++) {
      expect(out.x[i]).toBeGreaterThan(out.x[i - 1]);
    }
  });

  it('drops gaps once a series is cut down, as the server does', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i);
    const ys = xs.map(i => (i % 10 === 0 ? null : i));
    const out = lttb(xs, ys, 20);
    expect(out.y.every(v => v !== null)).toBe(true);
    expect(out.x).toHaveLength(20);
  });
});

describe('live points', () => {
  it('appends to the series of their metric and group; no step: the offset is x', () => {
    const series: IMetricSeries[] = [{ name: 'loss', group: 'train', x: [0], y: [2], count: 1, downsampled: false }];
    const added = appendPoints(series, {
      offset: 1,
      points: [
        [1, 1, 'train', { loss: 1.5, acc: 0.5 }],
        [2, null, 'train', { loss: NaN }],
        [3, 3, 'val', { loss: 1.2 }]
      ]
    });
    expect(added).toBe(4);
    const loss = series.find(s => s.name === 'loss' && s.group === 'train')!;
    expect(loss.x).toEqual([0, 1, 2]); // the second point's offset in the attempt: 2
    expect(loss.y).toEqual([2, 1.5, null]);
    expect(loss.count).toBe(3);
    expect(series.find(s => s.name === 'acc')!.y).toEqual([0.5]);
    expect(series.find(s => s.group === 'val')!.x).toEqual([3]);
  });

  it('cuts a long live series down (at twice the limit, to the limit)', () => {
    const series: IMetricSeries[] = [];
    for (let i = 0; i < 50; i++) {
      appendPoints(series, { offset: i * 10, points: Array.from({ length: 10 }, (_, k) => [0, i * 10 + k, 'g', { loss: Math.random() }]) }, 100);
    }
    expect(series[0].count).toBe(500);
    expect(series[0].x.length).toBeLessThanOrEqual(200);
    expect(series[0].downsampled).toBe(true);
    expect(series[0].x[series[0].x.length - 1]).toBe(499); // the newest point stays
  });
});

describe('charts', () => {
  it('one chart per metric, a line per task (in the order chosen) and group', () => {
    const data = new Map<string, IMetricSeries[]>([
      ['a', [{ name: 'loss', group: 'g', x: [0, 1], y: [2, 1], count: 2, downsampled: false }]],
      [
        'b',
        [
          { name: 'acc', group: 'g', x: [0], y: [0.1], count: 1, downsampled: false },
          { name: 'loss', group: 'g', x: [0, 1, 2], y: [3, 2, 1], count: 3, downsampled: false }
        ]
      ]
    ]);
    const charts = buildCharts(['b', 'a', 'missing'], data);
    expect(charts.map(c => c.metric)).toEqual(['acc', 'loss']);
    expect(charts[1].lines.map(l => [l.taskId, l.index])).toEqual([
      ['b', 0],
      ['a', 1]
    ]);
    expect(extent(charts[1].lines)).toEqual({ x0: 0, x1: 2, y0: 1, y1: 3 });
    expect(extent([{ x: [5], y: [2] }])).toEqual({ x0: 4, x1: 6, y0: 1.9, y1: 2.1 });
    expect(extent([{ x: [1], y: [null] }])).toBeNull();
  });

  it('round ticks and a path with gaps', () => {
    expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(3, 97, 4)).toEqual([20, 40, 60, 80]);
    expect(niceTicks(0.013, 0.031, 4)).toEqual([0.015, 0.02, 0.025, 0.03]);
    const { d, points } = linePath([0, 1, 2, 3], [1, null, 2, 3], v => v * 10, v => 100 - v);
    expect(d).toBe('M0.0,99.0M20.0,98.0L30.0,97.0');
    expect(points).toBe(3);
  });

  it('redraws at most ten times a second', () => {
    vi.useFakeTimers();
    try {
      let clock = 0;
      const draws: number[] = [];
      const t = new Throttle(() => draws.push(clock), 100, () => clock);
      for (let i = 0; i < 100; i++) {
        t.request();
        clock += 10;
        vi.advanceTimersByTime(10);
      }
      expect(draws.length).toBeLessThanOrEqual(11);
      expect(draws.length).toBeGreaterThanOrEqual(9);
      for (let i = 1; i < draws.length; i++) {
        expect(draws[i] - draws[i - 1]).toBeGreaterThanOrEqual(100);
      }
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('which tasks, and their checkpoints', () => {
  it('asks about the newest tasks that ran, and again when a task without metrics changes state', () => {
    const tasks = [task('old', 'succeeded', 1), task('new', 'running', 3), task('queued', 'pending', 4), task('mid', 'failed', 2)];
    const known = new Map<string, IProbe>();
    expect(toProbe(tasks, known)).toEqual(['new', 'mid', 'old']);
    expect(toProbe(tasks, known, 2)).toEqual(['new', 'mid']);
    known.set('new', { names: [], state: 'running' });
    known.set('mid', { names: ['loss'], state: 'running' });
    known.set('old', { names: [], state: 'succeeded' });
    expect(toProbe(tasks, known)).toEqual([]);
    tasks[1] = task('new', 'succeeded', 3);
    expect(toProbe(tasks, known)).toEqual(['new']);
  });

  it('lists the tasks with metrics newest first, with the chosen and live ones', () => {
    const tasks = new Map([task('a', 'succeeded', 1), task('b', 'running', 2), task('c', 'succeeded', 3)].map(t => [t.id, t]));
    const known = new Map<string, IProbe>([
      ['a', { names: ['loss'], state: 'succeeded' }],
      ['c', { names: [], state: 'succeeded' }]
    ]);
    const out = metricTasks(tasks, known, ['b'], id => id.toUpperCase());
    expect(out.map(c => [c.id, c.label, c.state])).toEqual([
      ['b', 'B', 'running'],
      ['a', 'A', 'succeeded']
    ]);
  });

  it('names trials by number and parameters; a search overlays its trials by number', () => {
    const search = {
      id: 's',
      space: { lr: [0.1, 0.01], width: [8] },
      trials: [
        { number: 1, task_id: 't1', params: { lr: 0.01, width: 8 }, state: 'succeeded', best: 0.08, best_step: 1 },
        { number: 0, task_id: 't0', params: { lr: 0.1, width: 8 }, state: 'succeeded', best: 0.8, best_step: 1 },
        { number: 2, task_id: null, params: { lr: 0.1, width: 8 }, state: 'planned', best: null, best_step: null }
      ]
    } as unknown as ISearch;
    expect(trialLabel(search, 't1')).toBe('#1 lr=0.01 width=8');
    expect(trialLabel(search, 'zz')).toBeNull();
    expect(trialTasks(search)).toEqual(['t0', 't1']);
    expect(trialTasks(undefined)).toEqual([]);
  });

  it('a checkpoint row: step, size, time, attempt, metadata, files (newest first)', () => {
    const cps: ICheckpoint[] = [
      { id: 'c1', attempt: 1, step: 1, metadata: { loss: 0.5 }, size: 2048, files: ['m.pt'], created: 10, url: '' },
      { id: 'c2', attempt: 1, step: 2, metadata: { loss: 0.25, note: 'best', extra: { a: 1 } }, size: 10, files: ['m.pt', 'o.pt'], created: 20, url: '' }
    ];
    const rows = checkpointRows(cps, ts => `t${ts}`);
    expect(rows.map(r => r.id)).toEqual(['c2', 'c1']);
    expect(rows[0]).toEqual({ id: 'c2', step: '2', size: '10 B', time: 't20', attempt: '1', metadata: 'loss=0.25 note=best extra={"a":1}', files: '2 files' });
    expect(rows[1].size).toBe('2.0 KiB');
  });
});
