import { afterEach, describe, expect, it, vi } from 'vitest';
import { OrchApi } from '../api';
import { OrchController } from '../controller';
import { mergeSearch, OrchStore } from '../store';
import type { ISearch, ITrial } from '../types';
import { FakeSocket, task } from './fakes';

function view(id: string, at: number, extra: Partial<ISearch> = {}): ISearch {
  return {
    id,
    name: `search-${id}`,
    owner: 'ann',
    state: 'running',
    config: { metric: 'loss', mode: 'min', scheduler: 'random' },
    space: { lr: { loguniform: [0.0001, 0.1] } },
    counts: { running: 1, total: 4 },
    best: null,
    created_at: 1,
    updated_at: at,
    ...extra
  };
}

function trials(n: number): ITrial[] {
  return Array.from({ length: n }, (_, i) => ({ number: i, task_id: `t${i}`, params: { lr: 0.1 / (i + 1) }, state: 'running', best: null, best_step: null }));
}

describe('searches in the store', () => {
  it('applies search events, keeps the trials read and ignores stale views', () => {
    const s = new OrchStore();
    s.putSearch(view('a', 2, { trials: trials(2) }));
    s.apply({ type: 'search', search: view('a', 3, { counts: { running: 2, total: 4 } }), owner: 'ann' });
    expect(s.searches.get('a')!.counts.running).toBe(2);
    expect(s.searches.get('a')!.trials).toHaveLength(2); // an event has no trials: those read stay
    s.apply({ type: 'search', search: view('a', 1, { state: 'cancelled' }) }); // late
    expect(s.searches.get('a')!.state).toBe('running');
    // a read as new as the event brings its trials
    s.putSearch(view('a', 3, { trials: trials(3) }));
    expect(s.searches.get('a')!.trials).toHaveLength(3);
    // the same again changes nothing (the view is not redrawn)
    const version = s.searchVersion;
    s.putSearch(view('a', 3, { trials: trials(3) }));
    expect(s.searchVersion).toBe(version);
    // an older read does not replace newer trials, but fills them in when there are none
    expect(mergeSearch(view('a', 5, { trials: trials(1) }), view('a', 4, { trials: trials(4) })).trials).toHaveLength(1);
    expect(mergeSearch(view('a', 5), view('a', 4, { trials: trials(4) })).trials).toHaveLength(4);
  });

  it('lists newest first and keeps the selected search across a new list', () => {
    const s = new OrchStore();
    const seen: number[] = [];
    s.subscribe(() => seen.push(s.searchVersion));
    s.setSearches([view('a', 1, { created_at: 1 }), view('b', 1, { created_at: 5 })]);
    expect(s.searchList().map(x => x.id)).toEqual(['b', 'a']);
    s.selectSearch('a');
    s.putSearch(view('a', 2, { trials: trials(1) }));
    s.setSearches([view('b', 1, { created_at: 5 })]); // a beyond the list's page
    expect(s.selectedSearch()?.trials).toHaveLength(1);
    expect(seen.length).toBeGreaterThan(0);
  });
});

function server(calls: string[], searches: () => ISearch[]) {
  return async (url: string, init: RequestInit) => {
    const path = url.replace('http://h/orch/api/v1/', '');
    calls.push(`${init.method} ${path}`);
    let body: unknown = {};
    if (path.startsWith('info')) {
      body = { version: '0.1.0', owner: 'ann', provider: 'local' };
    } else if (path.startsWith('tasks')) {
      body = { tasks: [] };
    } else if (path.startsWith('workflows')) {
      body = { runs: [] };
    } else if (path.startsWith('workers')) {
      body = { workers: [] };
    } else if (path.startsWith('searches?') || path === 'searches') {
      body = { searches: searches().map(({ trials: _, ...rest }) => rest) };
    } else if (path.endsWith('/cancel')) {
      body = { ...searches()[0], state: 'cancelled', updated_at: 99 };
    } else if (path.startsWith('searches/')) {
      body = searches().find(s => path === `searches/${s.id}`);
      if (!body) {
        return new Response(JSON.stringify({ error: 'not_found', message: 'no search zzz' }), { status: 404 });
      }
    }
    return new Response(JSON.stringify(body), { status: 200 });
  };
}

afterEach(() => {
  vi.useRealTimers();
  FakeSocket.all = [];
});

async function started(searches: () => ISearch[], info?: object) {
  vi.useFakeTimers();
  const calls: string[] = [];
  const store = new OrchStore();
  const fetcher = server(calls, searches);
  const ctl = new OrchController({
    api: new OrchApi('http://h/', info ? async (url, init) => (url.includes('/info') ? new Response(JSON.stringify(info)) : fetcher(url, init)) : fetcher),
    store,
    eventsUrl: () => 'ws://h/orch/api/v1/events?types=task,worker,run,search',
    logUrl: id => `ws://h/orch/api/v1/tasks/${id}/logs/follow`,
    socketFactory: url => new FakeSocket(url) as unknown as WebSocket
  });
  await ctl.start();
  const ws = FakeSocket.all[0];
  ws.onopen!();
  await vi.advanceTimersByTimeAsync(10);
  return { ctl, store, ws, calls };
}

const reads = (calls: string[], id: string) => calls.filter(c => c === `GET searches/${id}`).length;

describe('searches in the controller', () => {
  it('lists the searches on load and reads the selected one with its trials', async () => {
    let current = [view('s1', 1, { trials: trials(2) })];
    const { ctl, store, calls } = await started(() => current);
    expect(calls).toContain('GET searches?limit=200');
    expect(store.searches.get('s1')!.trials).toBeUndefined(); // the list has none
    ctl.selectSearch('s1');
    await vi.advanceTimersByTimeAsync(0);
    expect(store.selectedSearch()!.trials).toHaveLength(2);
    // a reload (reconnect, lost events) reads it again
    current = [view('s1', 2, { trials: trials(3) })];
    ctl.reconnect();
    FakeSocket.all[FakeSocket.all.length - 1].onopen!();
    await vi.advanceTimersByTimeAsync(10);
    expect(store.selectedSearch()!.trials).toHaveLength(3);
  });

  it('reads the selected search again, once per burst of its events or its trials’ task events', async () => {
    let current = [view('s1', 1, { trials: trials(1) }), view('s2', 1, { trials: [] })];
    const { ctl, store, ws, calls } = await started(() => current);
    ctl.selectSearch('s1');
    await vi.advanceTimersByTimeAsync(0);
    expect(reads(calls, 's1')).toBe(1);

    current = [view('s1', 3, { trials: trials(2), counts: { running: 2, total: 4 } }), current[1]];
    for (let i = 0; i < 5; i++) {
      ws.send({ type: 'search', search: view('s1', 2 + i * 0.1, { counts: { running: 2, total: 4 } }), owner: 'ann' });
    }
    expect(store.searches.get('s1')!.counts.running).toBe(2); // the list line at once
    expect(reads(calls, 's1')).toBe(1);
    await vi.advanceTimersByTimeAsync(ctl.searchDebounceMs + 10);
    expect(reads(calls, 's1')).toBe(2);
    expect(store.selectedSearch()!.trials).toHaveLength(2);

    // another search's event changes its line, not the selected trials
    ws.send({ type: 'search', search: view('s2', 5, { state: 'succeeded' }) });
    await vi.advanceTimersByTimeAsync(ctl.searchDebounceMs + 10);
    expect(store.searches.get('s2')!.state).toBe('succeeded');
    expect(reads(calls, 's1')).toBe(2);
    expect(reads(calls, 's2')).toBe(0);

    // a trial's task started or ended: its search is read again
    ws.send({ type: 'task', task: { ...task('t1', 'succeeded', 4), metadata: { trial: { search: 's1', number: 1 } } } });
    ws.send({ type: 'task', task: { ...task('x', 'succeeded', 4), metadata: { trial: { search: 's2', number: 0 } } } });
    await vi.advanceTimersByTimeAsync(ctl.searchDebounceMs + 10);
    expect(reads(calls, 's1')).toBe(3);
    expect(reads(calls, 's2')).toBe(0);
    ctl.stop();
  });

  it('ignores other users’ search events on a shared server (the admin reads all)', async () => {
    const info = { version: '0.1.0', owner: 'ann', shared: true, rights: { read_all: true, admin: false } };
    const { ctl, store, ws } = await started(() => [], info);
    ws.send({ type: 'search', search: view('o1', 1, { owner: 'bob' }), owner: 'bob' });
    ws.send({ type: 'search', search: view('m1', 1), owner: 'ann' });
    expect([...store.searches.keys()]).toEqual(['m1']);
    ctl.stop();
  });

  it('cancels a search and shows a failed read of the selected one', async () => {
    const current = [view('s1', 1, { trials: trials(1) })];
    const { ctl, store, calls } = await started(() => current);
    await ctl.cancelSearch('s1');
    expect(calls).toContain('POST searches/s1/cancel');
    expect(store.searches.get('s1')!.state).toBe('cancelled');
    ctl.selectSearch('zzz');
    await vi.advanceTimersByTimeAsync(0);
    expect(store.searchError).toBe('no search zzz');
    ctl.selectSearch('s1');
    expect(store.searchError).toBeNull();
  });
});
