import { describe, expect, it } from 'vitest';
import { ago, formatBytes, formatDuration, formatResources, formatUsage, runStepsLabel, shortId, slotHolders, stateLabel } from '../format';
import type { IStep } from '../types';

describe('formatting', () => {
  it('formats resources and durations', () => {
    expect(formatResources({ gpus: 2, cpus: 4, memory: '8Gi' })).toBe('2 GPUs · 4 CPU · 8Gi');
    expect(formatResources({ memory: 1073741824 })).toBe('1.0 GiB');
    expect(formatDuration(3.21)).toBe('3.2s');
    expect(formatDuration(125)).toBe('2m 5s');
    expect(formatDuration(3725)).toBe('1h 2m');
    expect(formatDuration(null)).toBe('');
  });
  it('formats byte sizes', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(20 * 1024 * 1024)).toBe('20 MiB');
    expect(formatBytes(undefined)).toBe('');
    expect(formatBytes(NaN)).toBe('');
  });
  it('formats times, ids and states', () => {
    expect(ago(1000, 1042)).toBe('42s ago');
    expect(ago(1000, 1000 + 180)).toBe('3m ago');
    expect(ago(1000, 1000 + 7200)).toBe('2h ago');
    expect(ago(null)).toBe('');
    expect(shortId('abcdef')).toBe('abcdef');
    expect(shortId('0123456789abcdef')).toBe('01234567…');
    expect(stateLabel('timed_out')).toBe('timed out');
    expect(stateLabel('running')).toBe('running');
  });

  it('shows the slots other users hold as in use, without their tasks', () => {
    expect(slotHolders(['t1'], 3, 4)).toEqual(['t1', null, null, undefined]);
    expect(slotHolders([], 0, 2)).toEqual([undefined, undefined]);
    // a worker with tasks sent ahead (more than its slots): all of them are shown
    expect(slotHolders(['a', 'b', 'c'], 3, 2)).toEqual(['a', 'b', 'c']);
  });
});

describe('a workflow run in the runs list', () => {
  const step = (name: string, state: string) => ({ name, state }) as IStep;
  it('says its number of steps the same way whether its steps are loaded or not', () => {
    const listed = { step_count: 4 }; // as the list gives every run
    const selected = { step_count: 4, steps: ['a', 'b', 'c', 'd'].map(n => step(n, 'succeeded')) };
    const running = { step_count: 4, steps: [step('a', 'succeeded'), step('b', 'running'), step('c', 'pending'), step('d', 'pending')] };
    expect(runStepsLabel(listed)).toBe('4 steps');
    expect(runStepsLabel(selected)).toBe('4 steps');
    expect(runStepsLabel(running)).toBe('4 steps');
    expect(new Set([listed, selected, running].map(runStepsLabel)).size).toBe(1);
  });
  it('counts one step as one and knows no run', () => {
    expect(runStepsLabel({ step_count: 1 })).toBe('1 step');
    expect(runStepsLabel({ step_count: 0 })).toBe('0 steps');
    expect(runStepsLabel(undefined)).toBe('');
  });
});

describe('usage of a total', () => {
  it('says a shared unit once', () => {
    const GiB = 1024 ** 3;
    expect(formatUsage(3.6 * GiB, 24 * GiB)).toBe('3.6 / 24 GiB');
    expect(formatUsage(512 * 1024 ** 2, 24 * GiB)).toBe('512 MiB / 24 GiB');
    expect(formatUsage(0, 80 * GiB)).toBe('0 B / 80 GiB');
  });
});
