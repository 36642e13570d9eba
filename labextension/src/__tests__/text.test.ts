import { describe, expect, it } from 'vitest';
import { parseAnsi, stripAnsi } from '../ansi';
import { LogBuffer } from '../logbuffer';
import { coerce, displayValue, literal, parseParametersCell } from '../params';
import { backoffDelay } from '../socket';

describe('ANSI', () => {
  it('splits colours and styles into segments', () => {
    const { segments } = parseAnsi('plain \x1b[31mred\x1b[0m \x1b[1;32mbold green\x1b[39m bold');
    expect(segments).toEqual([
      { text: 'plain ', style: {} },
      { text: 'red', style: { fg: 'red' } },
      { text: ' ', style: {} },
      { text: 'bold green', style: { bold: true, fg: 'green' } },
      { text: ' bold', style: { bold: true } }
    ]);
  });
  it('handles bright, 256 and true colours and carries state across lines', () => {
    const a = parseAnsi('\x1b[94mblue');
    expect(a.segments[0].style.fg).toBe('bright-blue');
    const b = parseAnsi('still blue\x1b[m', a.state);
    expect(b.segments[0].style.fg).toBe('bright-blue');
    expect(b.state).toEqual({});
    expect(parseAnsi('\x1b[38;5;196mx').segments[0].style.fg).toBe('rgb(255,0,0)');
    expect(parseAnsi('\x1b[48;2;1;2;3mx').segments[0].style.bg).toBe('rgb(1,2,3)');
  });
  it('drops other escapes', () => {
    expect(stripAnsi('\x1b[2K\x1b[1A50%\x1b]0;title\x07 done\x1b[0m')).toBe('50% done');
    expect(parseAnsi('\x1b[?25lhidden cursor').segments).toEqual([{ text: 'hidden cursor', style: {} }]);
  });
});

describe('log buffer', () => {
  const line = (text: string) => ({ ts: 0, stream: 'stdout', text });
  it('keeps the newest lines only', () => {
    const b = new LogBuffer(3);
    b.push(line('1'), line('2'), line('3'), line('4'), line('5'));
    expect(b.length).toBe(3);
    expect(b.count).toBe(5);
    expect(b.dropped).toBe(2);
    expect(b.toArray().map(l => l.text)).toEqual(['3', '4', '5']);
    expect(b.get(0).n).toBe(2);
    expect(b.text()).toBe('3\n4\n5');
  });
  it('searches without escapes, case-insensitively', () => {
    const b = new LogBuffer(10);
    b.push(line('\x1b[31mERROR\x1b[0m: boom'), line('ok'), line('error again'));
    expect(b.search('error')).toEqual([0, 2]);
    expect(b.search('31m')).toEqual([]);
    b.clear();
    expect(b.length).toBe(0);
  });
  it('stays bounded over many lines', () => {
    const b = new LogBuffer(1000);
    for (let i = 0; i < 100000; i++) {
      b.push(line(`line ${i}`));
    }
    expect(b.length).toBe(1000);
    expect(b.get(999).text).toBe('line 99999');
  });
});

describe('parameters cell', () => {
  const cells = [
    { cell_type: 'markdown', source: '# x', metadata: { tags: ['parameters'] } },
    { cell_type: 'code', source: 'import os', metadata: {} },
    {
      cell_type: 'code',
      metadata: { tags: ['parameters'] },
      source: ['lr = 0.01  # learning rate\n', 'epochs: int = 3\n', 'name = "run # 1"\n', 'debug = False\n', 'layers = [64, 32]\n', 'out = None\n', '# comment\n']
    }
  ];
  it('reads name, default, type and help', () => {
    expect(parseParametersCell(cells)).toEqual([
      { name: 'lr', default: 0.01, type: 'float', help: 'learning rate' },
      { name: 'epochs', default: 3, type: 'int', help: null },
      { name: 'name', default: 'run # 1', type: 'str', help: null },
      { name: 'debug', default: false, type: 'bool', help: null },
      { name: 'layers', default: [64, 32], type: 'list', help: null },
      { name: 'out', default: null, type: 'None', help: null }
    ]);
    expect(parseParametersCell([{ cell_type: 'code', source: 'x = 1', metadata: {} }])).toEqual([]);
  });
  it('turns the dialog text back into values', () => {
    expect(coerce('0.5', { name: 'lr', default: 0.01, type: 'float' })).toBe(0.5);
    expect(() => coerce('abc', { name: 'lr', default: 0.01, type: 'float' })).toThrow(/lr/);
    expect(coerce('true', { name: 'd', default: false, type: 'bool' })).toBe(true);
    expect(coerce('hello', { name: 's', default: 'x', type: 'str' })).toBe('hello');
    expect(coerce('[1, 2]', { name: 'l', default: [], type: 'list' })).toEqual([1, 2]);
    expect(coerce('', { name: 'o', default: null, type: 'None' })).toBe(null);
    expect(displayValue([1, 2])).toBe('[1,2]');
    expect(displayValue(1, 'float')).toBe('1.0');
    expect(literal("{'a': True}")).toEqual({ a: true });
  });
});

describe('reconnect backoff', () => {
  it('grows to a ceiling, with jitter', () => {
    const mid = () => 0.5;
    expect(backoffDelay(0, 500, 15000, mid)).toBe(500);
    expect(backoffDelay(3, 500, 15000, mid)).toBe(4000);
    expect(backoffDelay(20, 500, 15000, mid)).toBe(15000);
    expect(backoffDelay(0, 500, 15000, () => 0)).toBe(375);
  });
});
