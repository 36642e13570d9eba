import { describe, expect, it } from 'vitest';
import { formatDuration } from '../format';
import {
  barRect,
  barState,
  hitTest,
  ISpan,
  laneGeometry,
  layout,
  LiveSpans,
  mergeSpans,
  mergeWorkers,
  ownerHue,
  packSlots,
  Ring,
  tooltipLines,
  UtilHistory
} from '../dashboard/timelinemodel';
import type { ITask, IWorker } from '../types';

function sp(over: Partial<ISpan>): ISpan {
  return {
    task_id: 't',
    name: 't',
    owner: 'ann',
    mine: true,
    attempt: 1,
    state: 'succeeded',
    worker_id: 'w1',
    gpus: [],
    started_at: 0,
    ended_at: 10,
    ...over
  };
}

function worker(id: string, name: string, gpus: number, slots = 1, over: Partial<IWorker> = {}): IWorker {
  return {
    id,
    name,
    state: 'connected',
    labels: {},
    slots,
    slots_used: 0,
    cpus: 4,
    memory: 1,
    gpus: Array.from({ length: gpus }, (_, i) => ({ index: i, model: 'H100' })),
    ...over
  };
}

function task(over: Partial<ITask>): ITask {
  return { id: 'a', name: 'a', kind: 'shell', owner: 'ann', state: 'running', resources: {}, attempt: 1, created_at: 1, ...over };
}

describe('timeline lanes', () => {
  it('gives a lane per GPU, and one per slot to a worker without GPUs, workers by name', () => {
    const workers = mergeWorkers([], [worker('w2', 'beta', 0, 2), worker('w1', 'alpha', 2)], []);
    const lay = layout(workers, [], 100);
    expect(lay.lanes.map(l => `${l.workerName}/${l.label}`)).toEqual([
      'alpha/GPU 0',
      'alpha/GPU 1',
      'beta/slot 1',
      'beta/slot 2'
    ]);
    expect(lay.lanes.map(l => l.first)).toEqual([true, false, true, false]);
    expect(lay.lanes[0].model).toBe('H100');
  });

  it('draws a span on each GPU it held', () => {
    const workers = mergeWorkers([], [worker('w1', 'alpha', 4)], []);
    const s = sp({ gpus: [1, 3] });
    const lay = layout(workers, [s], 100);
    expect(lay.bars.map(b => b.length)).toEqual([0, 1, 0, 1]);
    expect(lay.all).toHaveLength(2);
  });

  it('packs spans on a worker without GPUs into its slots, more when more overlapped', () => {
    const workers = mergeWorkers([], [worker('w1', 'cpu', 0, 2)], []);
    const a = sp({ task_id: 'a', started_at: 0, ended_at: 10 });
    const b = sp({ task_id: 'b', started_at: 5, ended_at: 20 });
    const c = sp({ task_id: 'c', started_at: 12, ended_at: 30 }); // a's slot is free again
    const d = sp({ task_id: 'd', started_at: 13, ended_at: null }); // a third at once
    const lay = layout(workers, [a, b, c, d], 100);
    expect(lay.lanes.map(l => l.label)).toEqual(['slot 1', 'slot 2', 'slot 3']);
    expect(lay.bars[0].map(x => x.span.task_id)).toEqual(['a', 'c']);
    expect(lay.bars[1].map(x => x.span.task_id)).toEqual(['b']);
    expect(lay.bars[2].map(x => x.span.task_id)).toEqual(['d']);
    const { count } = packSlots([a, b, c, d], 100);
    expect(count).toBe(3);
  });

  it('gives CPU-only work on a GPU worker slot lanes of its own', () => {
    const workers = mergeWorkers([], [worker('w1', 'g', 1, 2)], []);
    const lay = layout(workers, [sp({ gpus: [] }), sp({ task_id: 'x', gpus: [0] })], 100);
    expect(lay.lanes.map(l => l.label)).toEqual(['GPU 0', 'slot 1']);
    expect(lay.bars[1]).toHaveLength(1);
  });

  it('keeps workers the server listed, and makes one up for a span of an unknown worker', () => {
    const ws = mergeWorkers(
      [{ id: 'old', name: 'old-worker', state: 'gone', slots: 1, gpus: [{ index: 0, name: 'A100' }] }],
      [worker('w1', 'alpha', 0)],
      [sp({ worker_id: 'zzzzzzzzzzzz' })]
    );
    expect(ws.map(w => w.name)).toEqual(['alpha', 'old-worker', 'worker zzzzzzzz']);
    expect(ws[1].gpus[0].name).toBe('A100');
    // a GPU a span names that the worker does not list gets a lane
    const lay = layout([ws[1]], [sp({ worker_id: 'old', gpus: [2] })], 100);
    expect(lay.lanes.map(l => l.label)).toEqual(['GPU 0', 'GPU 2']);
  });
});

describe('timeline spans', () => {
  it('merges the server and the events: one per attempt, an ended view wins', () => {
    const server = [
      sp({ task_id: 'a', state: 'running', ended_at: null }),
      sp({ task_id: 'b', state: 'succeeded', ended_at: 50 }),
      sp({ task_id: null, name: null, owner: null, mine: false, worker_id: 'w1', gpus: [0], started_at: 3 })
    ];
    const live = [
      sp({ task_id: 'a', state: 'failed', ended_at: 40 }),
      sp({ task_id: 'b', state: 'running', ended_at: null }),
      sp({ task_id: 'c', state: 'running', ended_at: null })
    ];
    const out = new Map(mergeSpans(server, live).map(s => [s.task_id, s]));
    expect(out.size).toBe(4);
    expect(out.get('a')!.state).toBe('failed');
    expect(out.get('b')!.state).toBe('succeeded'); // the late running event does not undo the end
    expect(out.get('c')!.state).toBe('running');
    expect(out.get(null)!.mine).toBe(false);
  });

  it('follows a task from the store: running, then ended; preempted when it went back to waiting', () => {
    const live = new LiveSpans();
    const mine = () => true;
    live.update(task({ id: 'p', state: 'pending' }), mine, 5);
    expect(live.spans.size).toBe(0);
    live.update(task({ id: 'p', state: 'running', worker_id: 'w1', gpus: [0], started_at: 10, updated_at: 10 }), mine, 11);
    let s = [...live.spans.values()][0];
    expect(s).toMatchObject({ task_id: 'p', state: 'running', ended_at: null, gpus: [0], worker_id: 'w1' });
    live.update(
      task({ id: 'p', state: 'pending', worker_id: null, started_at: 10, updated_at: 30, reason: 'preempted by t2; queued again' }),
      mine,
      31
    );
    s = [...live.spans.values()][0];
    expect(s).toMatchObject({ state: 'preempted', ended_at: 30 });
    // it runs again as a new attempt: a second span
    live.update(task({ id: 'p', state: 'running', attempt: 2, worker_id: 'w1', gpus: [1], started_at: 40, updated_at: 40 }), mine, 41);
    live.update(task({ id: 'p', state: 'succeeded', attempt: 2, worker_id: 'w1', gpus: [1], started_at: 40, ended_at: 60, updated_at: 60 }), mine, 61);
    const all = [...live.spans.values()].sort((a, b) => a.attempt - b.attempt);
    expect(all.map(x => [x.attempt, x.state, x.ended_at])).toEqual([
      [1, 'preempted', 30],
      [2, 'succeeded', 60]
    ]);
    live.prune(45);
    expect(live.spans.size).toBe(1);
  });

  it('marks a span failed when the task waits for a retry', () => {
    const live = new LiveSpans();
    live.update(task({ id: 'r', state: 'running', worker_id: 'w', started_at: 1 }), () => true, 2);
    live.update(task({ id: 'r', state: 'pending', started_at: 1, updated_at: 9, reason: 'attempt 1 failed (boom); retry 1 of 2 in 5 s' }), () => true, 9);
    expect([...live.spans.values()][0]).toMatchObject({ state: 'failed', ended_at: 9 });
  });

  it('tells whose a span is', () => {
    const live = new LiveSpans();
    live.update(task({ id: 'o', owner: 'bob', worker_id: 'w', started_at: 1 }), o => o === 'ann', 2);
    expect([...live.spans.values()][0].mine).toBe(false);
  });
});

describe('timeline geometry and hit-testing', () => {
  const win = { start: 0, end: 100 };
  const geo = laneGeometry(2, 60);
  const workers = mergeWorkers([], [worker('w1', 'a', 2)], []);
  const short = sp({ task_id: 'short', gpus: [1], started_at: 50, ended_at: 50.01 });
  const long = sp({ task_id: 'long', gpus: [0], started_at: 10, ended_at: 40 });
  const running = sp({ task_id: 'run', gpus: [1], started_at: 70, ended_at: null, state: 'running' });
  const lay = layout(workers, [short, long, running], 90);

  it('sizes lanes from the room there is', () => {
    expect(laneGeometry(2, 60).laneHeight).toBe(30);
    expect(laneGeometry(64, 600).laneHeight).toBe(18); // many lanes: the list scrolls
    expect(laneGeometry(1, 2000).laneHeight).toBe(56);
    const g = laneGeometry(4, 120);
    expect(g.barTop + g.barHeight).toBeLessThan(g.laneHeight); // room for the utilisation
  });

  it('places bars; a running bar reaches now; a short one is still drawn', () => {
    const r = barRect(lay.bars[0][0], win, 1000, geo, 90)!;
    expect(r.x).toBeCloseTo(100);
    expect(r.w).toBeCloseTo(300);
    expect(r.y).toBe(geo.barTop);
    const run = barRect(lay.bars[1].find(b => b.span.task_id === 'run')!, win, 1000, geo, 90)!;
    expect(run.x + run.w).toBeCloseTo(900);
    expect(barRect(lay.bars[1].find(b => b.span.task_id === 'run')!, win, 1000, geo, 95)!.w).toBeCloseTo(250); // it grows
    const s = barRect(lay.bars[1][0], win, 1000, geo, 90)!;
    expect(s.w).toBe(geo.minBarWidth);
    expect(s.y).toBe(geo.laneHeight + geo.barTop);
    expect(barRect(lay.bars[0][0], { start: 200, end: 300 }, 1000, geo, 90)).toBeNull();
  });

  it('finds the bar under the pointer, a thin one within a few pixels', () => {
    const y0 = geo.barTop + 2;
    const y1 = geo.laneHeight + geo.barTop + 2;
    expect(hitTest(lay, win, 1000, geo, 90, 250, y0)?.span.task_id).toBe('long');
    expect(hitTest(lay, win, 1000, geo, 90, 50, y0)).toBeNull();
    expect(hitTest(lay, win, 1000, geo, 90, 503, y1)?.span.task_id).toBe('short');
    expect(hitTest(lay, win, 1000, geo, 90, 800, y1)?.span.task_id).toBe('run');
    expect(hitTest(lay, win, 1000, geo, 90, 950, y1)).toBeNull(); // after now
    expect(hitTest(lay, win, 1000, geo, 90, 250, -5)).toBeNull();
    expect(hitTest(lay, win, 1000, geo, 90, 250, 10 * geo.laneHeight)).toBeNull();
  });

  it('holds 64 lanes of hundreds of bars and hit-tests them quickly', () => {
    const many = Array.from({ length: 16 }, (_, i) => worker(`w${i}`, `w${String(i).padStart(2, '0')}`, 4));
    const spans: ISpan[] = [];
    for (let i = 0; i < 16; i++) {
      for (let g = 0; g < 4; g++) {
        for (let k = 0; k < 10; k++) {
          spans.push(sp({ task_id: `t${i}-${g}-${k}`, worker_id: `w${i}`, gpus: [g], started_at: k * 10, ended_at: k === 9 ? null : k * 10 + 8 }));
        }
      }
    }
    const big = layout(mergeWorkers([], many, []), spans, 100);
    expect(big.lanes).toHaveLength(64);
    expect(big.all).toHaveLength(640);
    const g = laneGeometry(64, 1000);
    const t0 = performance.now();
    for (let i = 0; i < 10000; i++) {
      hitTest(big, win, 1000, g, 100, (i * 7) % 1000, (i * 13) % (64 * g.laneHeight));
    }
    expect(performance.now() - t0).toBeLessThan(500);
  });
});

describe('timeline colours and words', () => {
  it('gives each user a stable hue', () => {
    expect(ownerHue('alice')).toBe(ownerHue('alice'));
    expect(ownerHue('alice')).not.toBe(ownerHue('bob'));
    expect(ownerHue(null)).toBe(0);
    expect(ownerHue('x')).toBeGreaterThanOrEqual(0);
    expect(ownerHue('x')).toBeLessThan(360);
  });

  it('colours an attempt by its state', () => {
    expect(barState(sp({ state: 'lost' }))).toBe('failed');
    expect(barState(sp({ state: 'preempted' }))).toBe('preempted');
    expect(barState(sp({ state: 'weird' }))).toBe('other');
  });

  it("says what a bar is; another user's without a name", () => {
    const workers = mergeWorkers([], [worker('w1', 'gpu-box', 2)], []);
    const lay = layout(workers, [sp({ name: 'train', gpus: [1], started_at: 100, ended_at: null, state: 'running' })], 200);
    const tip = tooltipLines(lay.all[0].span, lay.lanes[1], 190, formatDuration);
    expect(tip.title).toBe('train');
    expect(tip.lines.join('\n')).toContain('owner: ann');
    expect(tip.lines.join('\n')).toContain('state: running');
    expect(tip.lines.join('\n')).toContain('→ now');
    expect(tip.lines.join('\n')).toContain('duration: 1m 30s so far');
    expect(tip.lines.join('\n')).toContain('gpu-box · GPU 1');
    const other = tooltipLines(sp({ task_id: null, name: null, owner: null, mine: false }), lay.lanes[0], 20, formatDuration);
    expect(other.title).toBe("another user's task");
    expect(other.lines[0]).toBe('owner: another user');
  });
});

describe('GPU utilisation history', () => {
  it('keeps the latest samples in a ring, in order', () => {
    const r = new Ring(4);
    for (let i = 1; i <= 6; i++) {
      r.push(i, i * 10);
    }
    expect(r.size).toBe(4);
    expect(r.push(6, 1)).toBe(false); // not newer
    expect(r.range(0, 100).map(s => s.t)).toEqual([3, 4, 5, 6]);
    // from the sample before the window to the one after it
    expect(r.range(4.5, 5.5).map(s => s.t)).toEqual([4, 5, 6]);
    expect(r.last()).toEqual({ t: 6, v: 60 });
  });

  it('samples each GPU once per heartbeat', () => {
    const u = new UtilHistory(8);
    const w = worker('w1', 'a', 2, 1, { last_seen: 100 });
    w.gpus[0].utilization = 30;
    w.gpus[1].utilization = 130; // clamped
    expect(u.sample(w, 100)).toBe(true);
    expect(u.sample(w, 101)).toBe(false); // the same heartbeat again
    expect(u.get(UtilHistory.key('w1', 0))!.last()).toEqual({ t: 100, v: 30 });
    expect(u.get(UtilHistory.key('w1', 1))!.last()!.v).toBe(100);
    expect(u.sample({ ...w, last_seen: 105, gpus: [{ index: 0, utilization: 50 }] }, 105)).toBe(true);
    expect(u.get(UtilHistory.key('w1', 0))!.size).toBe(2);
    expect(u.sample(worker('w2', 'b', 1), 7)).toBe(false); // no utilisation reported
  });
});
