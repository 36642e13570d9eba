// A bounded buffer of log lines: the newest `capacity` lines are kept, older ones dropped
// (counted, so the view can say how many). Search runs over the text without escapes.
import type { ILogLine } from './types';
import { stripAnsi } from './ansi';

/** How a log line reads: `progress` (the orchestrator's "[jupyter-orch] cell 2 of 5" as a
 * notebook task moves on), `note` (its other lines, e.g. "the notebook stopped itself at cell
 * 3 of 5"), else the line's own stream (`stdout`, `stderr`, `display`). The orchestrator writes
 * its lines on stderr, so that they stay out of the task's stdout; they are not errors. */
export type LineKind = 'progress' | 'note' | string;

const ORCH_PREFIX = '[jupyter-orch] ';
const PROGRESS = /^\[jupyter-orch\] cell \d+ of \d+\s*$/;

export function lineKind(line: Pick<ILogLine, 'stream' | 'text'>): LineKind {
  if (line.stream === 'stderr' && line.text.startsWith(ORCH_PREFIX)) {
    return PROGRESS.test(line.text) ? 'progress' : 'note';
  }
  return line.stream;
}

export interface IBufferedLine extends ILogLine {
  n: number; // 0-based number of the line in the whole log
  plain: string;
}

export class LogBuffer {
  private lines: IBufferedLine[] = [];
  private start = 0; // index of the oldest line in `lines` (ring)
  private total = 0;

  constructor(readonly capacity = 10000) {}

  get length(): number {
    return Math.min(this.total, this.capacity);
  }

  /** lines ever appended */
  get count(): number {
    return this.total;
  }

  /** lines dropped from the front */
  get dropped(): number {
    return this.total - this.length;
  }

  clear(): void {
    this.lines = [];
    this.start = 0;
    this.total = 0;
  }

  push(...lines: ILogLine[]): void {
    for (const line of lines) {
      const b: IBufferedLine = { ...line, n: this.total, plain: stripAnsi(line.text) };
      if (this.lines.length < this.capacity) {
        this.lines.push(b);
      } else {
        this.lines[this.start] = b;
        this.start = (this.start + 1) % this.capacity;
      }
      this.total++;
    }
  }

  /** the i-th kept line (0 = oldest kept) */
  get(i: number): IBufferedLine {
    return this.lines[(this.start + i) % this.lines.length];
  }

  toArray(): IBufferedLine[] {
    return [...this.lines.slice(this.start), ...this.lines.slice(0, this.start)];
  }

  /** indexes (into the kept lines) of the lines containing `query`, case-insensitive */
  search(query: string): number[] {
    const q = query.toLowerCase();
    if (!q) {
      return [];
    }
    const out: number[] = [];
    for (let i = 0; i < this.length; i++) {
      if (this.get(i).plain.toLowerCase().includes(q)) {
        out.push(i);
      }
    }
    return out;
  }

  /** the kept text, escapes removed, one line per line */
  text(): string {
    return this.toArray()
      .map(l => l.plain)
      .join('\n');
  }
}
