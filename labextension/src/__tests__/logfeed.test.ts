import { afterEach, describe, expect, it, vi } from 'vitest';
import { LogFeed, LogFeedMessage } from '../logfeed';
import type { ITask } from '../types';
import { FakeSocket, task } from './fakes';

function feed(tasks: ITask[] = []) {
  const seen: LogFeedMessage[] = [];
  const f = new LogFeed({
    url: id => `ws://h/tasks/${id}/logs/follow`,
    factory: url => new FakeSocket(url) as unknown as WebSocket,
    onTask: t => tasks.push(t)
  });
  const unwatch = f.watch(msg => seen.push(msg));
  return { f, seen, unwatch };
}

afterEach(() => {
  vi.useRealTimers();
  FakeSocket.all = [];
});

describe('log feed', () => {
  it('opens the follow socket and passes on lines, state and the end', () => {
    const tasks: ITask[] = [];
    const { f, seen } = feed(tasks);
    f.follow('t1');
    expect(f.taskId).toBe('t1');
    const ws = FakeSocket.all[0];
    expect(ws.url).toBe('ws://h/tasks/t1/logs/follow');
    ws.onopen!();
    ws.send({ type: 'lines', lines: [{ stream: 'stdout', text: 'hi\n' }] });
    ws.send({ type: 'state', task: task('t1', 'running') });
    ws.send({ type: 'unknown' });
    ws.send({ type: 'end', task: task('t1', 'succeeded') });
    expect(seen.map(m => m.type)).toEqual(['follow', 'restart', 'lines', 'state', 'end']);
    expect(seen[2]).toEqual({ type: 'lines', lines: [{ stream: 'stdout', text: 'hi\n' }] });
    expect(tasks.map(t => t.state)).toEqual(['running', 'succeeded']);
    // the end closes the socket for good: no reconnect
    expect(ws.closed).toBe(true);
    expect(f.taskId).toBe('t1');
  });

  it('closes on an error with a sentence to show', () => {
    const { f, seen } = feed();
    f.follow('t1');
    FakeSocket.all[0].send({ type: 'error' });
    expect(seen[1]).toEqual({ type: 'error', message: 'The log cannot be read.' });
    expect(FakeSocket.all[0].closed).toBe(true);
  });

  it('reconnects after a drop and starts the log over', async () => {
    vi.useFakeTimers();
    const { f, seen } = feed();
    f.follow('t1');
    FakeSocket.all[0].onopen!();
    FakeSocket.all[0].onclose!();
    await vi.advanceTimersByTimeAsync(1000);
    expect(FakeSocket.all.length).toBe(2);
    FakeSocket.all[1].onopen!();
    expect(seen.map(m => m.type)).toEqual(['follow', 'restart', 'restart']);
    f.close();
  });

  it('closes the socket when another task, none, or no watcher remains', () => {
    const { f, seen, unwatch } = feed();
    f.follow('t1');
    f.follow('t2');
    expect(FakeSocket.all[0].closed).toBe(true);
    // what the old socket still says is not passed on
    FakeSocket.all[0].send({ type: 'lines', lines: [{ stream: 'stdout', text: 'old' }] });
    f.follow(null);
    expect(FakeSocket.all[1].closed).toBe(true);
    expect(FakeSocket.all.length).toBe(2);
    expect(seen).toEqual([
      { type: 'follow', taskId: 't1' },
      { type: 'follow', taskId: 't2' },
      { type: 'follow', taskId: null }
    ]);
    f.follow('t3');
    unwatch();
    expect(FakeSocket.all[2].closed).toBe(true);
    expect(f.taskId).toBe(null);
  });
});
