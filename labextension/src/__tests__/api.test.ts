import { describe, expect, it } from 'vitest';
import { apiUrl, errorMessage, NO_EXTENSION_MESSAGE, OrchApi, OrchApiError, wsUrl } from '../api';

function fakeFetch(status: number, body: unknown, calls: { url: string; init: RequestInit }[] = []) {
  return async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    return new Response(text, { status, headers: { 'Content-Type': 'application/json' } });
  };
}

describe('URLs', () => {
  it('joins the base URL, the API path and the query', () => {
    expect(apiUrl('http://h:8888/lab-base/', 'tasks', { state: 'running,failed', limit: 10, q: '' })).toBe(
      'http://h:8888/lab-base/orch/api/v1/tasks?state=running%2Cfailed&limit=10'
    );
    expect(apiUrl('http://h/', 'notebooks/parameters', { path: 'a b/c.ipynb' })).toBe(
      'http://h/orch/api/v1/notebooks/parameters?path=a%20b%2Fc.ipynb'
    );
  });
  it('builds WebSocket URLs with the token', () => {
    expect(wsUrl('ws://h:8888/', 'events', { types: 'task,worker,run' }, 'abc')).toBe(
      'ws://h:8888/orch/api/v1/events?types=task%2Cworker%2Crun&token=abc'
    );
    expect(wsUrl('ws://h/', 'tasks/x/logs/follow')).toBe('ws://h/orch/api/v1/tasks/x/logs/follow');
  });
  it('calls the documented endpoints', async () => {
    const calls: { url: string; init: RequestInit }[] = [];
    const api = new OrchApi('http://h/', fakeFetch(200, { tasks: [], runs: [], workers: [], parameters: [] }, calls));
    await api.tasks({ state: 'running', limit: 5, before: 12 });
    await api.cancelTask('t1');
    await api.retryRun('r1');
    await api.logs('t1', { offset: 3, limit: 100 });
    await api.notebookParameters('nb/x.ipynb');
    await api.runNotebook({ path: 'x.ipynb', parameters: { a: 1 }, resources: { gpus: 1 }, image: null });
    expect(calls.map(c => `${c.init.method} ${c.url}`)).toEqual([
      'GET http://h/orch/api/v1/tasks?state=running&limit=5&before=12',
      'POST http://h/orch/api/v1/tasks/t1/cancel',
      'POST http://h/orch/api/v1/workflows/r1/retry',
      'GET http://h/orch/api/v1/tasks/t1/logs?offset=3&limit=100',
      'GET http://h/orch/api/v1/notebooks/parameters?path=nb%2Fx.ipynb',
      'POST http://h/orch/api/v1/notebooks/run'
    ]);
    expect(JSON.parse(String(calls[5].init.body))).toEqual({ path: 'x.ipynb', parameters: { a: 1 }, resources: { gpus: 1 }, image: null });
  });
});

describe('errors', () => {
  it('uses the server message', async () => {
    const api = new OrchApi('http://h/', fakeFetch(409, { error: 'conflict', message: 'task t1 has ended; nothing to cancel' }));
    await expect(api.cancelTask('t1')).rejects.toMatchObject({ status: 409, code: 'conflict', message: 'task t1 has ended; nothing to cancel' });
  });
  it('turns a 404 on /info into how to enable the extension', async () => {
    const api = new OrchApi('http://h/', fakeFetch(404, '<html>404 Not Found</html>'));
    const err = await api.info().catch(e => e);
    expect(err).toBeInstanceOf(OrchApiError);
    expect(err.code).toBe('no_extension');
    expect(err.message).toBe(NO_EXTENSION_MESSAGE);
    expect(err.message).toContain('jupyter server extension enable jupyter_orch');
  });
  it('says what happened without a JSON body', () => {
    expect(errorMessage(401, null)).toContain('log in');
    expect(errorMessage(500, '<html>', 'listing tasks')).toContain('listing tasks');
    expect(errorMessage(0, null)).toContain('cannot be reached');
    expect(errorMessage(400, { error: 'bad', message: 'bad file', problems: ['a.yaml:1:2: x'] })).toBe('bad file: a.yaml:1:2: x');
  });
  it('reports a network failure', async () => {
    const api = new OrchApi('http://h/', async () => {
      throw new TypeError('Failed to fetch');
    });
    await expect(api.workers()).rejects.toMatchObject({ status: 0 });
  });
});
