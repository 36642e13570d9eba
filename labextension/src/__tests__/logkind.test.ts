import { describe, expect, it } from 'vitest';
import { lineKind } from '../logbuffer';

describe('log line kinds', () => {
  const line = (stream: string, text: string) => ({ stream, text });
  it("reads the orchestrator's cell progress as progress, not as an error", () => {
    expect(lineKind(line('stderr', '[jupyter-orch] cell 1 of 5'))).toBe('progress');
    expect(lineKind(line('stderr', '[jupyter-orch] cell 12 of 12\n'))).toBe('progress');
  });
  it('reads its other lines as notes', () => {
    expect(lineKind(line('stderr', '[jupyter-orch] the notebook stopped itself at cell 3 of 5 (SystemExit(0))'))).toBe('note');
    expect(lineKind(line('stderr', '[jupyter-orch] 2 malformed metric report(s) were dropped (the first: x)'))).toBe('note');
  });
  it("keeps the task's own streams as they are", () => {
    expect(lineKind(line('stderr', 'Traceback (most recent call last):'))).toBe('stderr');
    expect(lineKind(line('stderr', 'warning: [jupyter-orch] cell 1 of 5'))).toBe('stderr'); // not at the start
    expect(lineKind(line('stdout', '[jupyter-orch] cell 1 of 5'))).toBe('stdout'); // printed by the task itself
    expect(lineKind(line('stdout', 'epoch 1 loss 0.3'))).toBe('stdout');
    expect(lineKind(line('display', '{"data": {}}'))).toBe('display');
  });
});
