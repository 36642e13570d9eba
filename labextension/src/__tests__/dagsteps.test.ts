import { describe, expect, it } from 'vitest';
import { orderSteps, stepMeta } from '../format';

describe('the sidebar list of a workflow run’s steps', () => {
  const step = (name: string, depends: string[] = []) => ({ name, depends });
  it('lists steps in dependency order, then in the file’s order', () => {
    const steps = [step('report', ['evaluate', 'train']), step('evaluate', ['train']), step('prepare'), step('train', ['prepare']), step('lint')];
    expect(orderSteps(steps).map(({ step: s, depth }) => `${s.name}:${depth}`)).toEqual(['prepare:0', 'lint:0', 'train:1', 'evaluate:2', 'report:3']);
  });
  it('takes an unknown upstream as done and survives a cycle', () => {
    expect(orderSteps([step('b', ['a']), step('c', ['gone'])]).map(x => x.step.name)).toEqual(['b', 'c']);
    expect(orderSteps([step('x', ['y']), step('y', ['x'])]).length).toBe(2);
  });
  it('says what a step waits for and how long it took', () => {
    expect(stepMeta({ kind: 'notebook', depends: ['prepare', 'train'], duration: 65 })).toBe('notebook · after prepare, train · 1m 5s');
    expect(stepMeta({ kind: 'shell', depends: [], duration: null })).toBe('shell');
  });
});
