import { afterEach, describe, expect, it, vi } from 'vitest';
import { OrchApi } from '../api';
import { OrchController } from '../controller';
import { OrchStore } from '../store';
import type { ITask } from '../types';
import { FakeSocket, task } from './fakes';

function server(tasks: () => ITask[], calls: string[]) {
  return async (url: string) => {
    const path = url.replace('http://h/orch/api/v1/', '');
    calls.push(path);
    let body: unknown = {};
    if (path.startsWith('info')) {
      body = { version: '0.1.0', owner: 'ann', provider: 'local' };
    } else if (path.startsWith('tasks')) {
      body = { tasks: path.includes('state=') ? tasks().filter(t => ['pending', 'scheduled', 'running'].includes(t.state)) : tasks() };
    } else if (path.startsWith('workflows')) {
      body = { runs: [] };
    } else if (path.startsWith('workers')) {
      body = { workers: [], provider: { name: 'local' } };
    }
    return new Response(JSON.stringify(body), { status: 200 });
  };
}

afterEach(() => {
  vi.useRealTimers();
  FakeSocket.all = [];
});

describe('controller', () => {
  it('loads on connect, applies events after the load, reloads after overflow and reconnects', async () => {
    vi.useFakeTimers();
    let tasks = [task('a', 'running', 1)];
    const calls: string[] = [];
    const store = new OrchStore();
    const ctl = new OrchController({
      api: new OrchApi('http://h/', server(() => tasks, calls)),
      store,
      eventsUrl: () => 'ws://h/orch/api/v1/events?types=task,worker,run',
      logUrl: id => `ws://h/orch/api/v1/tasks/${id}/logs/follow`,
      socketFactory: url => new FakeSocket(url) as unknown as WebSocket
    });
    await ctl.start();
    expect(FakeSocket.all.length).toBe(1);
    const ws = FakeSocket.all[0];
    ws.onopen!();
    expect(ctl.connection).toBe('open');
    // an event that arrives while the state is being read is applied over it, not lost
    await vi.advanceTimersByTimeAsync(0);
    ws.send({ type: 'task', task: task('b', 'pending', 2) });
    await vi.advanceTimersByTimeAsync(10);
    expect([...store.tasks.keys()].sort()).toEqual(['a', 'b']);
    ws.send({ type: 'task', task: { ...task('a', 'succeeded', 1), updated_at: 5 } });
    expect(store.tasks.get('a')!.state).toBe('succeeded');

    // overflow: the state is read again
    tasks = [task('a', 'succeeded', 1), task('c', 'running', 3)];
    const before = calls.length;
    ws.send({ type: 'overflow' });
    await vi.advanceTimersByTimeAsync(10);
    expect(calls.length).toBeGreaterThan(before);
    expect(store.tasks.has('c')).toBe(true);

    // the server goes away: closed, then a new socket after a backoff, and a reload
    ws.onclose!();
    expect(ctl.connection).toBe('closed');
    await vi.advanceTimersByTimeAsync(1000);
    expect(FakeSocket.all.length).toBe(2);
    tasks = [...tasks, task('d', 'pending', 4)];
    FakeSocket.all[1].onopen!();
    await vi.advanceTimersByTimeAsync(10);
    expect(ctl.connection).toBe('open');
    expect(store.tasks.has('d')).toBe(true);
    ctl.stop();
  });

  it('says how to enable a missing server extension', async () => {
    vi.useFakeTimers();
    const store = new OrchStore();
    const ctl = new OrchController({
      api: new OrchApi('http://h/', async () => new Response('<html>404</html>', { status: 404 })),
      store,
      eventsUrl: () => 'ws://h/x',
      logUrl: id => `ws://h/logs/${id}`,
      socketFactory: url => new FakeSocket(url) as unknown as WebSocket
    });
    await ctl.start();
    expect(ctl.error?.code).toBe('no_extension');
    expect(ctl.error?.message).toContain('jupyter server extension enable jupyter_orch');
    expect(FakeSocket.all.length).toBe(0);
    ctl.stop();
  });

  it('follows the log of the selected task for the view that watches it', async () => {
    vi.useFakeTimers();
    const store = new OrchStore();
    const ctl = new OrchController({
      api: new OrchApi('http://h/', server(() => [task('a', 'running', 1)], [])),
      store,
      eventsUrl: () => 'ws://h/orch/api/v1/events',
      logUrl: id => `ws://h/orch/api/v1/tasks/${id}/logs/follow`,
      socketFactory: url => new FakeSocket(url) as unknown as WebSocket
    });
    const seen: string[] = [];
    const unwatch = ctl.watchLog(msg => seen.push(msg.type === 'follow' ? `follow ${msg.taskId}` : msg.type));
    expect(FakeSocket.all.length).toBe(0);
    store.select({ kind: 'task', id: 'a' });
    expect(FakeSocket.all.map(s => s.url)).toEqual(['ws://h/orch/api/v1/tasks/a/logs/follow']);
    const ws = FakeSocket.all[0];
    ws.onopen!();
    ws.send({ type: 'state', task: { ...task('a', 'succeeded', 1), updated_at: 9 } });
    expect(store.tasks.get('a')!.state).toBe('succeeded');
    // another task: the first socket closes, a new one opens
    store.select({ kind: 'task', id: 'b' });
    expect(ws.closed).toBe(true);
    expect(FakeSocket.all[1].url).toBe('ws://h/orch/api/v1/tasks/b/logs/follow');
    // the view's buffer was replaced: the log is read again from its start
    ctl.restartLog();
    expect(FakeSocket.all[1].closed).toBe(true);
    expect(FakeSocket.all[2].url).toBe('ws://h/orch/api/v1/tasks/b/logs/follow');
    expect(seen).toEqual(['follow a', 'restart', 'state', 'follow b', 'follow b']);
    // the view closes: so does the socket, and selections open nothing more
    unwatch();
    expect(FakeSocket.all[2].closed).toBe(true);
    store.select({ kind: 'task', id: 'c' });
    expect(FakeSocket.all.length).toBe(3);
    ctl.stop();
  });
});
