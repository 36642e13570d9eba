import { afterEach, describe, expect, it, vi } from 'vitest';
import { AdminModel, atLimit, quotaLine, totalsLine, useParts } from '../admin';
import { OrchApi } from '../api';
import { OrchController } from '../controller';
import { OrchStore } from '../store';
import type { IHoldings, IInfo, ITask, IUse } from '../types';
import { FakeSocket, task } from './fakes';

function use(over: Partial<IUse> = {}, limits: Partial<IUse['limits']> = {}): IUse {
  return {
    running: 0,
    queued: 0,
    gpus: 0,
    gpu_models: {},
    gpu_types: {},
    cpus: 0,
    ...over,
    limits: { gpus: null, gpu_types: {}, running: null, queued: null, ...limits }
  };
}

function owned(id: string, owner: string, state: string, at = 1): ITask {
  return { ...task(id, state, at), owner };
}

function holdings(users: IHoldings['users'] = []): IHoldings {
  return {
    at: 1,
    fair_share: true,
    capacity: { workers: 1, gpus: 4, slots: 4 },
    totals: { running: 2, queued: 1, gpus: 2 },
    users,
    groups: []
  };
}

/** A fake server: the calls it got, and answers from `tasks()` and `held()`. */
function server(tasks: () => ITask[], held: () => IHoldings, calls: string[], info?: IInfo) {
  return async (url: string, init: RequestInit) => {
    const path = url.replace('http://h/orch/api/v1/', '');
    calls.push(`${init.method} ${path}`);
    let body: unknown = {};
    if (path.startsWith('info')) {
      body = info ?? { version: '0.1.0', owner: 'root' };
    } else if (path.startsWith('admin/holdings')) {
      body = held();
    } else if (path.endsWith('/cancel')) {
      const id = path.split('/')[1];
      body = { ...tasks().find(t => t.id === id), state: 'cancelled', updated_at: 99 };
    } else if (path.startsWith('tasks')) {
      body = { tasks: tasks() };
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

describe('quota lines', () => {
  it('says each use against its limit, or alone where there is none', () => {
    const alice = use({ gpus: 2, running: 3, queued: 10 }, { gpus: 4, running: 8, queued: 1000 });
    expect(quotaLine('alice', alice)).toBe('alice: 2 of 4 GPUs, 3 of 8 running, 10 of 1000 queued');
    expect(quotaLine('bob', use({ gpus: 1, running: 1 }))).toBe('bob: 1 GPU, 1 running, 0 queued');
    const team = use({ gpus: 1, gpu_types: { A100: 1 } }, { gpus: 2, gpu_types: { A100: 2 } });
    expect(useParts(team)).toEqual(['1 of 2 GPUs', '1 of 2 A100', '0 running', '0 queued']);
  });
  it('knows when a user or group is at one of its limits', () => {
    expect(atLimit(use({ gpus: 1 }, { gpus: 1 }))).toBe(true);
    expect(atLimit(use({ gpus: 1 }, { gpus: 2 }))).toBe(false);
    expect(atLimit(use({ gpu_types: { A100: 2 } }, { gpu_types: { A100: 2 } }))).toBe(true);
    expect(atLimit(use({ queued: 5 }))).toBe(false); // no limit
  });
  it('sums everyone up against the capacity', () => {
    expect(totalsLine(holdings())).toBe('2 running · 1 queued · 2 of 4 GPUs held');
    expect(totalsLine({ ...holdings(), capacity: { workers: 0, gpus: 0, slots: 0 } })).toBe(
      '2 running · 1 queued · 2 GPUs held'
    );
  });
});

describe('admin model', () => {
  it("loads everyone's active tasks and the holdings, and follows task events", async () => {
    vi.useFakeTimers();
    const calls: string[] = [];
    let held = holdings();
    const tasks = [owned('a', 'alice', 'running', 1), owned('b', 'bob', 'pending', 2)];
    const model = new AdminModel(new OrchApi('http://h/', server(() => tasks, () => held, calls)));
    let changes = 0;
    model.subscribe(() => changes++);
    await model.load();
    expect(calls).toEqual(['GET tasks?owner=*&state=pending%2Cscheduled%2Crunning&limit=1000', 'GET admin/holdings']);
    expect(model.rows().map(t => `${t.owner}:${t.id}`)).toEqual(['alice:a', 'bob:b']);
    expect(model.holdings).toEqual(held);
    expect(changes).toBeGreaterThan(0);

    // a new task of carol's and bob's task ending: the list follows, the holdings are read again once
    held = { ...holdings(), totals: { running: 1, queued: 1, gpus: 1 } };
    model.applyTask(owned('c', 'carol', 'pending', 3));
    model.applyTask({ ...owned('b', 'bob', 'cancelled', 2), updated_at: 4 });
    model.applyTask({ ...owned('b', 'bob', 'pending', 2), updated_at: 3 }); // late, older news
    expect(model.rows().map(t => t.id)).toEqual(['a', 'c']);
    await vi.advanceTimersByTimeAsync(model.holdingsDelay + 1);
    expect(calls.filter(c => c === 'GET admin/holdings').length).toBe(2);
    expect(model.holdings?.totals.running).toBe(1);
  });

  it('applies events that come while loading over the answer', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>(r => (release = r));
    const calls: string[] = [];
    const fetcher = server(() => [owned('a', 'alice', 'running', 1)], () => holdings(), calls);
    const model = new AdminModel(
      new OrchApi('http://h/', async (url, init) => {
        await gate;
        return fetcher(url, init);
      })
    );
    const loading = model.load();
    model.applyTask({ ...owned('a', 'alice', 'succeeded', 1), updated_at: 5 });
    release();
    await loading;
    expect(model.rows()).toEqual([]);
    model.dispose();
  });

  it("cancels anyone's task and drops it from the active work", async () => {
    const calls: string[] = [];
    const tasks = [owned('b', 'bob', 'pending', 2)];
    const model = new AdminModel(new OrchApi('http://h/', server(() => tasks, () => holdings(), calls)));
    await model.load();
    const answer = await model.cancel('b');
    expect(answer.state).toBe('cancelled');
    expect(calls).toContain('POST tasks/b/cancel');
    expect(model.tasks.has('b')).toBe(false);
    model.dispose();
  });
});

describe('controller on a shared server', () => {
  async function started(info: IInfo) {
    const store = new OrchStore();
    const ctl = new OrchController({
      api: new OrchApi('http://h/', server(() => [], () => holdings(), [], info)),
      store,
      eventsUrl: () => 'ws://h/orch/api/v1/events',
      logUrl: id => `ws://h/orch/api/v1/tasks/${id}/logs/follow`,
      socketFactory: url => new FakeSocket(url) as unknown as WebSocket
    });
    const seen: string[] = [];
    ctl.onTask(t => seen.push(t.id));
    let reloads = 0;
    ctl.onReload(() => reloads++);
    await ctl.start();
    const ws = FakeSocket.all[FakeSocket.all.length - 1];
    ws.onopen!();
    await vi.advanceTimersByTimeAsync(10);
    ws.send({ type: 'task', task: owned('mine', 'root', 'running', 1) });
    ws.send({ type: 'task', task: owned('bobs', 'bob', 'running', 2) });
    const run = { id: 'r', name: 'r', owner: 'bob', state: 'running', params: {}, created_at: 1, step_count: 1 };
    ws.send({ type: 'run', run });
    ctl.stop();
    return { store, seen, reloads };
  }

  it("keeps others' events out of the caller's own views for one who reads all, and hands them on", async () => {
    vi.useFakeTimers();
    const { store, seen, reloads } = await started({
      version: '0.1.0',
      owner: 'root',
      shared: true,
      rights: { read_all: true, admin: true }
    });
    expect(seen).toEqual(['mine', 'bobs']); // the admin view hears of everyone's tasks
    expect([...store.tasks.keys()]).toEqual(['mine']); // Runs shows the caller's own
    expect(store.runs.size).toBe(0);
    expect(reloads).toBe(1);
  });

  it('changes nothing on a personal server', async () => {
    vi.useFakeTimers();
    const { store } = await started({ version: '0.1.0', owner: 'root', rights: { read_all: true, admin: true } });
    expect([...store.tasks.keys()].sort()).toEqual(['bobs', 'mine']);
    expect(store.runs.size).toBe(1);
  });
});
