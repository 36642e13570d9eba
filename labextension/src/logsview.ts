// Logs: renders the selected task's output as the controller's log feed gives it (the feed owns
// the /tasks/{id}/logs/follow socket). ANSI colours rendered; auto-scroll stops when the user
// scrolls up and resumes at the bottom; search; download; bounded buffer.
import { Widget } from '@lumino/widgets';
import { formatBytes, formatDuration, stateLabel } from './format';
import { IAnsiStyle, parseAnsi } from './ansi';
import type { OrchController } from './controller';
import { h, setText } from './dom';
import { LogBuffer, lineKind } from './logbuffer';
import type { LogFeedMessage } from './logfeed';
import type { ICheckpoint, ILogLine, ITask } from './types';

export class LogsView extends Widget {
  private header: HTMLDivElement;
  private checkpointsEl: HTMLDivElement;
  private checkpointsFor = ''; // the task and attempt whose checkpoints were read last
  private view: HTMLDivElement;
  private empty: HTMLDivElement;
  private searchInput: HTMLInputElement;
  private matchEl: HTMLSpanElement;
  private followEl: HTMLButtonElement;
  private buffer: LogBuffer;
  private taskId: string | null = null;
  private unwatch: () => void;
  private ansiState: IAnsiStyle = {};
  private autoScroll = true;
  private ended = false;
  private task: ITask | null = null;
  private error = '';
  private matches: number[] = [];
  private matchIndex = -1;
  private pending: ILogLine[] = [];
  private frame = 0;

  constructor(
    private readonly ctl: OrchController,
    capacity = 10000
  ) {
    super();
    this.addClass('jp-OrchLogs');
    this.node.dataset.testid = 'orch-logs';
    this.title.label = 'Logs';
    this.buffer = new LogBuffer(capacity);
    this.header = h('div', { class: 'jp-OrchLogs-title' });
    this.searchInput = h('input', { class: 'jp-OrchInput', type: 'search', placeholder: 'Search log', title: 'Search the log: Enter for the next match, Shift+Enter for the previous', 'data-testid': 'orch-log-search', 'aria-label': 'Search the log' });
    this.matchEl = h('span', { class: 'jp-OrchCount' });
    this.followEl = h('button', { class: 'jp-OrchButton', title: 'Scroll to the end and follow new lines', text: '⤓ Follow' });
    const download = h('button', { class: 'jp-OrchButton', 'data-testid': 'orch-log-download', title: 'Download the log as text', text: 'Download' });
    this.view = h('div', { class: 'jp-OrchLogView', 'data-testid': 'orch-log-view', tabindex: 0 });
    this.empty = h('div', { class: 'jp-OrchEmpty', 'data-testid': 'orch-empty-logs' });
    this.checkpointsEl = h('div', { class: 'jp-OrchCheckpoints', 'data-testid': 'orch-checkpoints' });
    this.checkpointsEl.hidden = true;
    this.node.append(this.header, this.checkpointsEl, h('div', { class: 'jp-OrchToolbar' }, this.searchInput, this.matchEl, this.followEl, download), this.empty, this.view);
    this.view.addEventListener('scroll', () => {
      const atBottom = this.view.scrollHeight - this.view.scrollTop - this.view.clientHeight < 24;
      this.autoScroll = atBottom;
      this.followEl.classList.toggle('jp-mod-active', atBottom);
    });
    this.followEl.addEventListener('click', () => {
      this.autoScroll = true;
      this.view.scrollTop = this.view.scrollHeight;
    });
    this.searchInput.addEventListener('input', () => this.runSearch());
    this.searchInput.addEventListener('keydown', ev => {
      if (ev.key === 'Enter') {
        this.nextMatch(ev.shiftKey ? -1 : 1);
      }
    });
    download.addEventListener('click', () => this.download());
    ctl.store.subscribe(() => this.sync());
    this.renderEmpty();
    this.unwatch = ctl.watchLog(msg => this.onLog(msg));
  }

  dispose(): void {
    this.unwatch();
    super.dispose();
  }

  setCapacity(n: number): void {
    if (n !== this.buffer.capacity) {
      this.buffer = new LogBuffer(n);
      this.ctl.restartLog();
    }
  }

  private sync(): void {
    const id = this.taskId;
    if (id) {
      const t = this.ctl.store.tasks.get(id);
      if (t && t !== this.task) {
        this.task = t;
        this.renderHeader();
      }
    }
  }

  /** what the controller's log feed says */
  private onLog(msg: LogFeedMessage): void {
    switch (msg.type) {
      case 'follow':
        this.startOver(msg.taskId);
        break;
      case 'restart':
        // the server sends the log from its start on every connection
        this.buffer.clear();
        this.view.replaceChildren();
        this.ansiState = {};
        this.pending = [];
        break;
      case 'lines':
        this.pending.push(...msg.lines);
        this.scheduleFlush();
        break;
      case 'state':
        this.task = msg.task;
        this.renderHeader();
        void this.loadCheckpoints();
        this.renderEmpty();
        break;
      case 'end':
        this.ended = true;
        if (msg.task) {
          this.task = msg.task;
        }
        void this.loadCheckpoints(true);
        this.scheduleFlush();
        this.renderHeader();
        this.renderEmpty();
        break;
      case 'error':
        this.error = msg.message;
        this.renderEmpty();
        break;
    }
  }

  /** start over with task `id`'s log (null: none) */
  private startOver(id: string | null): void {
    this.taskId = id;
    this.task = id ? this.ctl.store.tasks.get(id) || null : null;
    this.buffer.clear();
    this.view.replaceChildren();
    this.ansiState = {};
    this.autoScroll = true;
    this.ended = false;
    this.error = '';
    this.matches = [];
    this.pending = [];
    this.renderHeader();
    this.renderEmpty();
    this.checkpointsEl.hidden = true;
    this.checkpointsFor = '';
    void this.loadCheckpoints();
  }

  /** the task's checkpoints, read when it is selected, when an attempt starts or ends */
  private async loadCheckpoints(force = false): Promise<void> {
    const id = this.taskId;
    if (!id) {
      return;
    }
    const key = `${id}/${this.task?.attempt ?? 0}`;
    if (key === this.checkpointsFor && !force) {
      return;
    }
    this.checkpointsFor = key;
    let found: ICheckpoint[];
    try {
      found = await this.ctl.api.checkpoints(id);
    } catch {
      return; // the log is what this view is for: no line when they cannot be read
    }
    if (id !== this.taskId) {
      return;
    }
    this.renderCheckpoints(found);
  }

  private renderCheckpoints(found: ICheckpoint[]): void {
    this.checkpointsEl.hidden = found.length === 0;
    this.checkpointsEl.dataset.count = String(found.length);
    if (!found.length) {
      return;
    }
    const last = found[found.length - 1];
    const where = [last.step !== null ? `step ${last.step}` : '', `attempt ${last.attempt}`, formatBytes(last.size)].filter(Boolean);
    setText(this.checkpointsEl, `${found.length} checkpoint${found.length === 1 ? '' : 's'} · latest: ${where.join(', ')}`);
    this.checkpointsEl.title = found
      .map(c => `${c.id}: ${c.step !== null ? 'step ' + c.step + ', ' : ''}attempt ${c.attempt}, ${formatBytes(c.size)}${Object.keys(c.metadata).length ? ' ' + JSON.stringify(c.metadata) : ''}`)
      .join('\n');
  }

  private scheduleFlush(): void {
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.flush();
      });
    }
  }

  private flush(): void {
    const lines = this.pending;
    this.pending = [];
    if (lines.length) {
      const cap = this.buffer.capacity;
      const fresh = lines.length > cap ? lines.slice(lines.length - cap) : lines;
      this.buffer.push(...lines);
      const frag = document.createDocumentFragment();
      for (const line of fresh) {
        frag.appendChild(this.renderLine(line));
      }
      this.view.appendChild(frag);
      // keep the DOM as bounded as the buffer
      let excess = this.view.childElementCount - cap;
      while (excess-- > 0 && this.view.firstChild) {
        this.view.removeChild(this.view.firstChild);
      }
      if (this.searchInput.value) {
        this.runSearch(false);
      }
    }
    this.renderEmpty();
    if (this.autoScroll) {
      this.view.scrollTop = this.view.scrollHeight;
    }
  }

  private renderLine(line: ILogLine): HTMLElement {
    const kind = lineKind(line);
    const el = h('div', { class: 'jp-OrchLogLine', 'data-testid': 'orch-log-line', 'data-stream': line.stream, 'data-kind': kind });
    const { segments, state } = parseAnsi(line.text.replace(/\n$/, ''), this.ansiState);
    this.ansiState = state;
    for (const seg of segments) {
      const s = seg.style;
      if (!s.fg && !s.bg && !s.bold && !s.dim && !s.italic && !s.underline && !s.inverse) {
        el.appendChild(document.createTextNode(seg.text));
        continue;
      }
      const span = h('span', { text: seg.text });
      const classes: string[] = [];
      const fg = s.inverse ? s.bg || 'default-inverse-fg' : s.fg;
      const bg = s.inverse ? s.fg || 'default-inverse-bg' : s.bg;
      if (fg) {
        if (fg.startsWith('rgb')) {
          span.style.color = fg;
        } else {
          classes.push(`jp-OrchAnsi-fg-${fg}`);
        }
      }
      if (bg) {
        if (bg.startsWith('rgb')) {
          span.style.backgroundColor = bg;
        } else {
          classes.push(`jp-OrchAnsi-bg-${bg}`);
        }
      }
      if (s.bold) {
        classes.push('jp-OrchAnsi-bold');
      }
      if (s.dim) {
        classes.push('jp-OrchAnsi-dim');
      }
      if (s.italic) {
        classes.push('jp-OrchAnsi-italic');
      }
      if (s.underline) {
        classes.push('jp-OrchAnsi-underline');
      }
      span.className = classes.join(' ');
      el.appendChild(span);
    }
    // the orchestrator's own progress and notes are muted, not drawn as errors
    if (kind === 'progress' || kind === 'note' || kind === 'stderr') {
      el.classList.add(`jp-OrchLogLine-${kind}`);
    }
    return el;
  }

  private renderHeader(): void {
    const t = this.task;
    if (!this.taskId) {
      setText(this.header, '');
      return;
    }
    const parts = [t?.name || this.taskId, t ? stateLabel(t.state) : '', t?.attempt && t.attempt > 1 ? `attempt ${t.attempt}` : '', t?.duration ? formatDuration(t.duration) : ''];
    setText(this.header, parts.filter(Boolean).join(' · ') + (this.ended || !t || !['pending', 'scheduled', 'running'].includes(t.state) ? '' : ' · live'));
    this.header.dataset.state = t?.state || '';
  }

  private renderEmpty(): void {
    let text = '';
    if (!this.taskId) {
      text = 'Select a task in Runs (or a step in the DAG) to see its log.';
    } else if (this.error) {
      text = this.error;
    } else if (this.buffer.count === 0) {
      const t = this.task;
      if (!t || t.state === 'pending' || t.state === 'scheduled') {
        text = `No log lines yet: the task is ${t ? t.state : 'starting'}${t?.reason ? ' (' + t.reason + ')' : ''}. Lines appear here as soon as it prints.`;
      } else if (t.state === 'running') {
        text = 'No log lines yet: the task is running but has printed nothing so far.';
      } else {
        text = `This task printed nothing (it ${stateLabel(t.state)}).${t.error ? ' ' + t.error : ''}`;
      }
    }
    if (this.buffer.dropped) {
      this.view.dataset.dropped = String(this.buffer.dropped);
      this.view.title = `${this.buffer.dropped} earlier lines are not kept here; Download has the kept part, jupyter orch logs ${this.taskId} has all`;
    }
    setText(this.empty, text);
    this.empty.hidden = !text;
  }

  private runSearch(jump = true): void {
    const q = this.searchInput.value;
    for (const el of Array.from(this.view.querySelectorAll('.jp-mod-match'))) {
      el.classList.remove('jp-mod-match', 'jp-mod-current');
    }
    this.matches = q ? this.buffer.search(q) : [];
    const offset = this.buffer.length - this.view.childElementCount;
    for (const i of this.matches) {
      this.view.children[i - offset]?.classList.add('jp-mod-match');
    }
    setText(this.matchEl, q ? `${this.matches.length} found` : '');
    if (jump) {
      this.matchIndex = -1;
      if (this.matches.length) {
        this.nextMatch(1);
      }
    }
  }

  private nextMatch(dir: number): void {
    if (!this.matches.length) {
      return;
    }
    const offset = this.buffer.length - this.view.childElementCount;
    this.view.children[this.matches[this.matchIndex] - offset]?.classList.remove('jp-mod-current');
    this.matchIndex = (this.matchIndex + dir + this.matches.length) % this.matches.length;
    const el = this.view.children[this.matches[this.matchIndex] - offset] as HTMLElement | undefined;
    if (el) {
      el.classList.add('jp-mod-current');
      this.autoScroll = false;
      el.scrollIntoView({ block: 'center' });
    }
    setText(this.matchEl, `${this.matchIndex + 1}/${this.matches.length}`);
  }

  private download(): void {
    const blob = new Blob([this.buffer.text() + '\n'], { type: 'text/plain' });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `${(this.task?.name || this.taskId || 'task').replace(/[^\w.-]+/g, '_')}.log`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }
}
