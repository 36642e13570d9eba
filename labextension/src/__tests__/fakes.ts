// Test doubles shared by the unit tests (not a test file: vitest runs *.test.ts only).
import type { ITask } from '../types';

/** A WebSocket the test drives: every one made is in FakeSocket.all; send() delivers a message. */
export class FakeSocket {
  static all: FakeSocket[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;
  onerror: (() => void) | null = null;
  closed = false;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  close() {
    this.closed = true;
  }
  send(msg: unknown) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
}

/** A task row as the API returns it. */
export function task(id: string, state: string, at = 1): ITask {
  return { id, name: id, kind: 'shell', owner: 'ann', state, resources: {}, attempt: 1, created_at: at, updated_at: at };
}
