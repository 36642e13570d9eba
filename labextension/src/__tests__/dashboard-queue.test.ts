import { describe, expect, it } from 'vitest';
import { queueRows, queueTitle, waited } from '../dashboard/queue';
import type { ITask } from '../types';
import { task } from './fakes';

describe('the queue panel', () => {
  it('lists the waiting tasks, oldest first, with their reason, priority and resources', () => {
    const tasks: ITask[] = [
      { ...task('run', 'running', 1) },
      { ...task('b', 'pending', 20), reason: 'waiting for 1 GPU: none free', resources: { gpus: 1 }, priority: 5 } as ITask,
      { ...task('a', 'pending', 10), reason: 'waiting for 8 GPUs: no worker has 8', resources: { gpus: 8 } },
      { ...task('s', 'scheduled', 30) },
      { ...task('done', 'succeeded', 2) }
    ];
    const rows = queueRows(tasks);
    expect(rows.map(r => r.id)).toEqual(['a', 'b', 's']);
    expect(rows[0]).toMatchObject({ reason: 'waiting for 8 GPUs: no worker has 8', resources: '8 GPUs', priority: 0, owner: 'ann' });
    expect(rows[1].priority).toBe(5);
    expect(rows[2].reason).toBe('placed on a worker, starting');
    expect(rows[2].resources).toBe('1 slot');
  });

  it('puts the higher priority first among tasks of the same age', () => {
    const rows = queueRows([
      { ...task('low', 'pending', 5), priority: 0 } as ITask,
      { ...task('high', 'pending', 5), priority: 9 } as ITask
    ]);
    expect(rows.map(r => r.id)).toEqual(['high', 'low']);
  });

  it('counts them in the tab title', () => {
    expect(queueTitle(0)).toBe('Queue');
    expect(queueTitle(3)).toBe('Queue (3)');
  });

  it('says how long a task has waited', () => {
    expect(waited(100, 142.7)).toBe('42s');
    expect(waited(0, 185)).toBe('3m 5s');
    expect(waited(0, 2 * 3600 + 600)).toBe('2h 10m');
    expect(waited(0, 86400 * 2 + 3600)).toBe('2d 1h');
    expect(waited(100, 90)).toBe('0s');
  });
});
