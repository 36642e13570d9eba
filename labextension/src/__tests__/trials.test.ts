import { describe, expect, it } from 'vitest';
import {
  bestText,
  configText,
  countsText,
  formatNumber,
  formatParams,
  metricLabel,
  paramNames,
  sortSearches,
  startedText,
  trialColumns,
  trialRows,
  trialState,
  trialStateLabel
} from '../trials';
import type { ISearch, ITrial } from '../types';

function trial(number: number, params: Record<string, unknown>, state: string, best: number | null, extra: Partial<ITrial> = {}): ITrial {
  return { number, task_id: state === 'planned' ? null : `t${number}`, params, state, best, best_step: best === null ? null : 1, last: best, step: best === null ? null : 1, rung: null, reason: null, ...extra };
}

/** a grid search on lr and width, best first as the server sends them */
function search(extra: Partial<ISearch> = {}): ISearch {
  return {
    id: 's1',
    name: 'train',
    owner: 'ann',
    state: 'running',
    config: { metric: 'loss', mode: 'min', scheduler: 'grid', max_concurrent: 2 },
    space: { lr: [0.1, 0.01], width: [8, 16] },
    counts: { planned: 1, running: 1, stopping: 0, succeeded: 2, failed: 0, cancelled: 0, stopped: 0, total: 4 },
    best: { number: 2, params: { lr: 0.01, width: 8 }, task_id: 't2', value: 0.08, step: 1, state: 'succeeded' },
    created_at: 10,
    updated_at: 12,
    trials: [
      trial(2, { lr: 0.01, width: 8 }, 'succeeded', 0.08),
      trial(0, { lr: 0.1, width: 8 }, 'succeeded', 0.8),
      trial(1, { lr: 0.1, width: 16 }, 'running', null),
      trial(3, { lr: 0.01, width: 16 }, 'planned', null)
    ],
    ...extra
  };
}

describe('formatting a search', () => {
  it('formats numbers as Python .4g does, parameters and states', () => {
    expect(formatNumber(0.08)).toBe('0.08');
    expect(formatNumber(0.1 * 3)).toBe('0.3');
    expect(formatNumber(1 / 3)).toBe('0.3333');
    expect(formatNumber(123456.7)).toBe('1.235e+5');
    expect(formatNumber(1e-7)).toBe('1e-7');
    expect(formatNumber(26)).toBe('26');
    expect(formatNumber(null)).toBe('');
    expect(formatNumber(NaN)).toBe('NaN');
    expect(formatNumber('adam')).toBe('adam');
    expect(formatNumber([1, 2])).toBe('[1,2]');
    expect(formatParams({ lr: 0.001, opt: 'sgd', nesterov: true })).toBe('lr=0.001 opt=sgd nesterov=true');
    expect(trialStateLabel('stopped')).toBe('stopped early');
    expect(trialStateLabel('running')).toBe('running');
  });

  it('summarises counts, the best trial and the settings', () => {
    const s = search();
    expect(countsText(s.counts)).toBe('3/4 trials · 1 running · 1 planned · 2 succeeded');
    expect(bestText(s)).toBe('best loss 0.08 at step 1 · #2 lr=0.01 width=8');
    expect(bestText(search({ best: null }))).toBe('no loss reported yet');
    expect(bestText(search({ best: null, state: 'failed' }))).toBe('no trial reported loss');
    expect(configText(s)).toBe('grid · loss min · 2 at a time');
    expect(configText({ config: { metric: 'acc', mode: 'max', scheduler: 'asha', max_t: 27 } })).toBe('asha · acc max · max_t 27');
    expect(metricLabel({ config: { metric: 'acc', mode: 'max' } })).toBe('acc ↑');
  });

  it('says when a search started: the time today, with the date before', () => {
    const at = new Date(2026, 10, 3, 14, 5).getTime() / 1000;
    const time = new Date(at * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    expect(startedText(at, at + 60)).toBe(`started ${time}`);
    expect(startedText(at, at + 3 * 86400)).toBe(`started ${new Date(at * 1000).toLocaleDateString()} ${time}`);
  });

  it('lists the newest search first', () => {
    const a = search({ id: 'a', created_at: 1 });
    const b = search({ id: 'b', created_at: 3 });
    expect(sortSearches([a, b]).map(s => s.id)).toEqual(['b', 'a']);
  });
});

describe('the trials table', () => {
  it('has a column per parameter (the space order, then any other), the best value, its step and the state', () => {
    const s = search();
    s.trials![0].params = { ...s.trials![0].params, extra: 1 };
    expect(paramNames(s)).toEqual(['lr', 'width', 'extra']);
    const columns = trialColumns(s);
    expect(columns.map(c => c.label)).toEqual(['#', 'lr', 'width', 'extra', 'best loss ↓', 'step', 'state']);
    expect(columns.filter(c => c.kind === 'param').map(c => c.name)).toEqual(['lr', 'width', 'extra']);
    expect(columns.find(c => c.kind === 'value')!.title).toContain('lower is better');
  });

  it('has a row per trial in the server’s order, the best one marked', () => {
    const rows = trialRows(search());
    expect(rows.map(r => r.number)).toEqual([2, 0, 1, 3]);
    expect(rows.map(r => r.best)).toEqual([true, false, false, false]);
    expect(rows[0]).toMatchObject({ params: ['0.01', '8'], value: '0.08', step: '1', state: 'succeeded', taskId: 't2' });
    expect(rows[2]).toMatchObject({ params: ['0.1', '16'], value: '', step: '', stateText: 'running' });
    expect(rows[3]).toMatchObject({ taskId: null, stateText: 'planned' });
  });

  it('says a running trial is queued while its task waits, and why a trial was stopped', () => {
    const s = search();
    s.trials![1] = { ...s.trials![1], state: 'stopped', reason: 'stopped early by ASHA at step 3' };
    const rows = trialRows(s, id => (id === 't1' ? 'pending' : 'running'));
    expect(rows[2].stateText).toBe('queued');
    expect(rows[1].stateText).toBe('stopped early');
    expect(rows[1].title).toContain('stopped early by ASHA at step 3');
    expect(rows[1].title).toContain('last loss 0.8 at step 1');
  });

  it('ends a trial whose task ended before its search took note, as the search would', () => {
    expect(trialState('running', 'cancelled')).toBe('cancelled');
    expect(trialState('running', 'succeeded')).toBe('succeeded');
    expect(trialState('stopping', 'cancelled')).toBe('stopped');
    expect(trialState('stopping', 'succeeded')).toBe('succeeded');
    expect(trialState('running', 'running')).toBe('running');
    expect(trialState('stopped', 'cancelled')).toBe('stopped');
    expect(trialState('running')).toBe('running');
    const s = search({ state: 'cancelled' });
    const rows = trialRows(s, id => (id === 't1' ? 'cancelled' : undefined));
    expect(rows[2]).toMatchObject({ number: 1, state: 'cancelled', stateText: 'cancelled' });
  });

  it('marks no trial before one has a value, and is empty before the trials are read', () => {
    expect(trialRows(search({ best: null })).some(r => r.best)).toBe(false);
    expect(trialRows(search({ trials: undefined }))).toEqual([]);
  });
});
