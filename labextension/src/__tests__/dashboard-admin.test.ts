import { describe, expect, it } from 'vitest';
import { OrchApi } from '../api';
import { OrchController } from '../controller';
import { adminAvailable, gpuShares, meters } from '../dashboard/adminpanel';
import { fetchTimeline, parseTimeline } from '../dashboard/timelineapi';
import { OrchStore } from '../store';
import type { IHoldings, IUse } from '../types';

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

function controller(): OrchController {
  const api = new OrchApi('http://h/', async () => new Response('{}'));
  return new OrchController({ api, store: new OrchStore(), eventsUrl: () => 'ws://h/e', logUrl: () => 'ws://h/l' });
}

describe('the admin panel', () => {
  it('is there only on a shared server for one who may read all', () => {
    const ctl = controller();
    expect(adminAvailable(ctl)).toBe(false);
    ctl.info = { version: '1', owner: 'ann', shared: false, rights: { read_all: true, admin: true } };
    expect(adminAvailable(ctl)).toBe(false);
    ctl.info = { version: '1', owner: 'ann', shared: true, rights: { read_all: false, admin: false } };
    expect(adminAvailable(ctl)).toBe(false);
    ctl.info = { version: '1', owner: 'ann', shared: true, rights: { read_all: true, admin: false } };
    expect(adminAvailable(ctl)).toBe(true);
  });

  it('meters each quota: against its limit, GPUs against capacity when unlimited', () => {
    const m = meters(use({ gpus: 2, running: 3, queued: 1, gpu_types: { H100: 1 } }, { gpus: 4, running: null, queued: 10, gpu_types: { H100: 2 } }), 8);
    expect(m).toEqual([
      { label: 'GPUs', used: 2, limit: 4, of: 4 },
      { label: 'running', used: 3, limit: null, of: 0 },
      { label: 'queued', used: 1, limit: 10, of: 10 },
      { label: 'H100', used: 1, limit: 2, of: 2 }
    ]);
    expect(meters(use({ gpus: 1 }), 8)[0]).toEqual({ label: 'GPUs', used: 1, limit: null, of: 8 });
  });

  it('shares the GPUs held among users', () => {
    const h: IHoldings = {
      at: 1,
      fair_share: true,
      capacity: { workers: 1, gpus: 4, slots: 4 },
      totals: { running: 3, queued: 0, gpus: 3 },
      users: [
        { ...use({ gpus: 2 }), user: 'alice', groups: [], weight: 1, recent_gpu_hours: 0 },
        { ...use({ gpus: 1 }), user: 'bob', groups: [], weight: 1, recent_gpu_hours: 0 },
        { ...use({ gpus: 0, queued: 1 }), user: 'carl', groups: [], weight: 1, recent_gpu_hours: 0 }
      ],
      groups: []
    };
    expect(gpuShares(h)).toEqual([
      { user: 'alice', gpus: 2, fraction: 0.5 },
      { user: 'bob', gpus: 1, fraction: 0.25 }
    ]);
  });
});

describe('GET /timeline', () => {
  it('reads the window through the API client', async () => {
    const calls: string[] = [];
    const api = new OrchApi('http://h/', async (url: string) => {
      calls.push(url);
      return new Response(
        JSON.stringify({
          since: 100,
          until: 200,
          now: 199.5,
          workers: [{ id: 'w', name: 'box', state: 'connected', slots: 2, gpus: [{ index: 0, name: 'H100' }] }],
          spans: [
            { task_id: 'a', name: 'train', owner: 'ann', mine: true, attempt: 1, state: 'running', worker_id: 'w', gpus: [0], started_at: 150, ended_at: null },
            { task_id: null, name: null, owner: null, mine: false, attempt: 1, state: 'succeeded', worker_id: 'w', gpus: [0], started_at: 110, ended_at: 140 }
          ]
        })
      );
    });
    const r = await fetchTimeline(api, 100, 200);
    expect(calls).toEqual(['http://h/orch/api/v1/timeline?since=100&until=200']);
    expect(r.now).toBe(199.5);
    expect(r.workers[0]).toEqual({ id: 'w', name: 'box', state: 'connected', slots: 2, gpus: [{ index: 0, name: 'H100' }] });
    expect(r.spans).toHaveLength(2);
    expect(r.spans[0].ended_at).toBeNull();
    expect(r.spans[1]).toMatchObject({ task_id: null, mine: false, ended_at: 140 });
  });

  it('draws what it can of a partial answer', () => {
    const r = parseTimeline({ spans: [{ worker_id: 'w', started_at: 5 }, { started_at: 3 }, null], workers: [{ name: 'x' }] }, 1, 9);
    expect(r.since).toBe(1);
    expect(r.until).toBe(9);
    expect(r.workers).toEqual([]);
    expect(r.spans).toEqual([
      { task_id: null, name: null, owner: null, mine: false, attempt: 1, state: 'unknown', worker_id: 'w', gpus: [], started_at: 5, ended_at: null }
    ]);
  });

  it("fails with the server's message (no such endpoint yet: 404)", async () => {
    const api = new OrchApi('http://h/', async () => new Response(JSON.stringify({ error: 'not_found', message: 'no' }), { status: 404 }));
    await expect(fetchTimeline(api, 1, 2)).rejects.toMatchObject({ status: 404 });
  });
});
