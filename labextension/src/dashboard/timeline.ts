// The GPU timeline panel: one lane per GPU per worker (a worker without GPUs: one per slot), time
// on x, each attempt of a task a bar coloured by its state (the user's own in full colour,
// others' muted with an outline in their owner's hue), each GPU's utilisation under its lane.
// Drawn on a <canvas> (hundreds of bars at 60 fps; see docs/dashboard.md), with hit-testing for
// the tooltip and clicks, and a visually hidden list of the bars for screen readers (and tests).
// Live: running bars grow every animation frame while the panel is visible; the user's own
// tasks come from the store's events, everyone's from GET /timeline (read when the window
// moves outside what was read, and every 10 s while visible).
import type { OrchController } from '../controller';
import { h, setAttr, setText } from '../dom';
import { formatDuration } from '../format';
import type { IDashboardPanel } from './panel';
import { fetchTimeline } from './timelineapi';
import {
  barRect,
  barState,
  hitTest,
  IBar,
  ILaneGeometry,
  ILayout,
  ISpan,
  ITimelineWorker,
  laneGeometry,
  layout,
  LiveSpans,
  mergeSpans,
  mergeWorkers,
  ownerHue,
  spanKey,
  tooltipLines,
  UtilHistory
} from './timelinemodel';
import {
  fetchRange,
  followWindow,
  ITimeWindow,
  needsFetch,
  panByPixels,
  span,
  spanLabel,
  tickLabel,
  ticks,
  tOf,
  wheelFactor,
  xOf,
  zoomAbout
} from './timescale';

export const OPEN_LOG_EVENT = 'orch-open-log';

const PRESETS: { label: string; seconds: number }[] = [
  { label: '15 min', seconds: 900 },
  { label: '1 h', seconds: 3600 },
  { label: '6 h', seconds: 21600 }
];
const POLL_MS = 10000;
const AXIS_HEIGHT = 24;
const A11Y_EVERY_MS = 400;
const LEGEND = ['running', 'succeeded', 'failed', 'cancelled', 'preempted'];
const COLOUR_VARS: Record<string, string> = {
  running: '--jp-orch-running',
  succeeded: '--jp-orch-succeeded',
  failed: '--jp-orch-failed',
  cancelled: '--jp-orch-cancelled',
  preempted: '--jp-orch-preempted',
  other: '--jp-orch-pending',
  bg1: '--jp-layout-color1',
  bg2: '--jp-layout-color2',
  line: '--jp-border-color2',
  strong: '--jp-border-color1',
  text: '--jp-ui-font-color1',
  text2: '--jp-ui-font-color2',
  text3: '--jp-ui-font-color3',
  util: '--jp-orch-util',
  now: '--jp-orch-now',
  selected: '--jp-ui-font-color0',
  font: '--jp-ui-font-family'
};

export class TimelinePanel implements IDashboardPanel {
  readonly id = 'timeline';
  readonly title = 'GPU timeline';
  readonly node: HTMLElement;
  private axis: HTMLCanvasElement;
  private canvas: HTMLCanvasElement;
  private labels: HTMLDivElement;
  private scroller: HTMLDivElement;
  private tooltip: HTMLDivElement;
  private a11y: HTMLUListElement;
  private statusEl: HTMLSpanElement;
  private emptyEl: HTMLDivElement;
  private spanEl: HTMLSpanElement;
  private presetButtons: HTMLButtonElement[] = [];
  private nowButton: HTMLButtonElement;

  /** the window shown; in follow mode it ends just after now */
  win: ITimeWindow;
  follow = true;
  private spanSeconds = 3600;
  private visible = false;
  private frame = 0;
  private idleTick = false; // the pending frame is the loop's own: only time moved
  private drawnAt = 0; // the `now` of the last frame drawn
  private poll: ReturnType<typeof setInterval> | null = null;
  private disposed = false;

  private serverSpans: ISpan[] = [];
  private serverWorkers: ITimelineWorker[] = [];
  private fetched: { since: number; until: number } | null = null;
  private fetchSeq = 0;
  private fetchTimer: ReturnType<typeof setTimeout> | null = null;
  private fetchError: string | null = null;
  private lastFetch = 0;
  private readonly live = new LiveSpans();
  readonly util = new UtilHistory();
  private lay: ILayout = { lanes: [], bars: [], all: [] };
  private byTask = new Map<string, IBar[]>();
  private dirty = true;
  private tasksDirty = true;
  /** server time minus this browser's clock, seconds */
  private skew = 0;

  private width = 0;
  private viewHeight = 0;
  private dpr = 1;
  private geo: ILaneGeometry = laneGeometry(0, 0);
  private labelWidth = 150;
  private colours: Record<string, string> = {};
  private hover: IBar | null = null;
  private pointer: { x: number; y: number } | null = null;
  private drag: { x: number; win: ITimeWindow; moved: boolean } | null = null;
  private revealed: string | null = null;
  private a11yAt = 0;
  private a11yItems = new Map<string, HTMLLIElement>();
  private labelKey = '';
  private unsubscribe: () => void;
  private offReload: () => void;

  constructor(private readonly ctl: OrchController) {
    this.win = followWindow(this.spanSeconds, Date.now() / 1000);
    this.node = h('div', { class: 'jp-OrchTimeline' });
    const toolbar = h('div', { class: 'jp-OrchDash-toolbar jp-OrchTimeline-toolbar' });
    const zoom = h('div', { class: 'jp-OrchTimeline-zoom', role: 'group', 'aria-label': 'Time window' });
    for (const p of PRESETS) {
      const b = h('button', {
        class: 'jp-OrchButton',
        'data-testid': 'orch-timeline-preset',
        'data-seconds': p.seconds,
        title: `Show the last ${p.label}, following now`,
        text: p.label
      });
      b.addEventListener('click', () => this.setSpan(p.seconds, true));
      this.presetButtons.push(b);
      zoom.append(b);
    }
    this.nowButton = h('button', {
      class: 'jp-OrchButton',
      'data-testid': 'orch-timeline-now',
      title: 'Follow now (the window moves with time)',
      'aria-pressed': 'true',
      text: 'Now'
    });
    this.nowButton.addEventListener('click', () => this.setSpan(span(this.win), true));
    zoom.append(this.nowButton);
    this.spanEl = h('span', { class: 'jp-OrchHint jp-OrchTimeline-span', 'data-testid': 'orch-timeline-span' });
    const legend = h('div', { class: 'jp-OrchTimeline-legend', 'aria-label': 'Colours' });
    for (const s of LEGEND) {
      legend.append(h('span', { class: 'jp-OrchTimeline-key', 'data-state': s }, h('i'), s));
    }
    legend.append(
      h('span', { class: 'jp-OrchTimeline-key jp-mod-others', title: "Other users' work: muted, outlined in a colour per user" }, h('i'), 'others'),
      h('span', { class: 'jp-OrchTimeline-key jp-mod-util', title: "Each GPU's utilisation, under its lane" }, h('i'), 'GPU util')
    );
    this.statusEl = h('span', { class: 'jp-OrchHint jp-OrchTimeline-status', 'data-testid': 'orch-timeline-status' });
    toolbar.append(zoom, this.spanEl, legend, this.statusEl);

    this.axis = h('canvas', { class: 'jp-OrchTimeline-axis', 'data-testid': 'orch-timeline-axis' });
    const corner = h('div', { class: 'jp-OrchTimeline-corner', text: 'Worker · lane' });
    const head = h('div', { class: 'jp-OrchTimeline-head' }, corner, this.axis);
    this.labels = h('div', { class: 'jp-OrchTimeline-labels', 'data-testid': 'orch-timeline-labels' });
    this.canvas = h('canvas', {
      class: 'jp-OrchTimeline-canvas',
      'data-testid': 'orch-timeline-canvas',
      role: 'img',
      'aria-label': 'GPU timeline: which task held which GPU over time'
    });
    const rows = h('div', { class: 'jp-OrchTimeline-rows' }, this.labels, this.canvas);
    this.emptyEl = h('div', { class: 'jp-OrchEmpty jp-OrchTimeline-empty', hidden: true });
    this.scroller = h('div', { class: 'jp-OrchTimeline-scroller' }, rows, this.emptyEl);
    this.tooltip = h('div', { class: 'jp-OrchTimeline-tooltip', 'data-testid': 'orch-timeline-tooltip', role: 'tooltip', hidden: true });
    this.a11y = h('ul', { class: 'jp-OrchVisuallyHidden', 'data-testid': 'orch-timeline-bars', 'aria-label': 'Bars of the GPU timeline' });
    this.node.append(toolbar, head, this.scroller, this.tooltip, this.a11y);

    for (const el of [this.canvas, this.axis]) {
      el.addEventListener('wheel', ev => this.onWheel(ev), { passive: false });
      el.addEventListener('pointerdown', ev => this.onPointerDown(ev));
      el.addEventListener('pointermove', ev => this.onPointerMove(ev));
      el.addEventListener('pointerup', ev => this.onPointerUp(ev));
      el.addEventListener('pointercancel', () => (this.drag = null));
    }
    this.canvas.addEventListener('pointerleave', () => {
      this.pointer = null;
      this.setHover(null);
    });
    this.scroller.addEventListener('scroll', () => this.schedule());
    this.unsubscribe = ctl.store.subscribe(() => this.onStore());
    this.offReload = ctl.onReload(() => {
      this.fetched = null; // read the window again with the state
      this.schedule();
    });
    this.onStore();
  }

  // ---------------------------------------------------------------- the panel's life

  shown(): void {
    this.visible = true;
    this.readColours();
    this.measure();
    if (!this.poll) {
      this.poll = setInterval(() => this.onPoll(), POLL_MS);
    }
    if (Date.now() - this.lastFetch > POLL_MS) {
      this.fetched = null;
    }
    this.dirty = true;
    this.schedule();
  }

  hidden(): void {
    this.visible = false;
    if (this.frame) {
      cancelAnimationFrame(this.frame);
      this.frame = 0;
    }
    if (this.poll) {
      clearInterval(this.poll);
      this.poll = null;
    }
    this.setHover(null);
  }

  dispose(): void {
    this.hidden();
    this.disposed = true;
    if (this.fetchTimer) {
      clearTimeout(this.fetchTimer);
    }
    this.unsubscribe();
    this.offReload();
  }

  /** seconds since the epoch, on the server's clock */
  now(): number {
    return Date.now() / 1000 + this.skew;
  }

  private onStore(): void {
    const now = this.now();
    for (const w of this.ctl.store.workers.values()) {
      this.util.sample(w, now);
    }
    this.tasksDirty = true;
    this.dirty = true;
    this.schedule();
  }

  private onPoll(): void {
    if (!this.visible) {
      return;
    }
    this.readColours();
    void this.fetch();
  }

  /** `idle`: only time moved (the loop's own next frame); anything else must draw */
  private schedule(idle = false): void {
    if (!idle) {
      this.idleTick = false;
    }
    if (!this.visible || this.frame || this.disposed) {
      return;
    }
    this.idleTick = idle;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.onFrame();
    });
  }

  /** zoom to `seconds` (following now when `follow`) */
  setSpan(seconds: number, follow: boolean): void {
    this.spanSeconds = seconds;
    this.follow = follow;
    const now = this.now();
    this.win = follow ? followWindow(seconds, now) : zoomAbout(this.win, seconds / span(this.win), (this.win.start + this.win.end) / 2);
    this.schedule();
  }

  private onFrame(): void {
    if (!this.visible) {
      return;
    }
    const now = this.now();
    // only time moved: draw when now has moved half a pixel (a 1 h window moves one pixel
    // in seconds, not every frame)
    const pxPerSecond = this.width / Math.max(1e-9, span(this.win));
    if (this.idleTick && !this.tasksDirty && !this.dirty && (now - this.drawnAt) * pxPerSecond < 0.5) {
      this.schedule(true);
      return;
    }
    this.drawnAt = now;
    if (this.tasksDirty) {
      this.scanTasks(now);
    }
    if (this.dirty) {
      this.relayout(now);
    }
    if (this.follow) {
      this.win = followWindow(this.spanSeconds, now);
    }
    this.reveal(now);
    this.draw(now);
    this.maybeFetch(now);
    if (performance.now() - this.a11yAt > A11Y_EVERY_MS) {
      this.updateA11y(now);
    }
    if (this.hover && this.pointer) {
      this.showTooltip(this.hover, now);
    }
    // running bars grow and the window follows now: draw again next frame
    if (this.follow || this.runningInView(now)) {
      this.schedule(true);
    }
  }

  private runningInView(now: number): boolean {
    if (this.win.end < now) {
      return false;
    }
    return this.lay.all.some(b => b.span.ended_at === null);
  }

  private isMine = (owner: string): boolean => {
    const info = this.ctl.info;
    return !info?.shared || owner === info.owner;
  };

  private scanTasks(now: number): void {
    this.tasksDirty = false;
    for (const t of this.ctl.store.tasks.values()) {
      this.live.update(t, this.isMine, now);
    }
    this.dirty = true;
  }

  private relayout(now: number): void {
    this.dirty = false;
    const spans = mergeSpans(this.serverSpans, this.live.spans.values());
    const workers = mergeWorkers(this.serverWorkers, this.ctl.store.workers.values(), spans);
    this.lay = layout(workers, spans, now);
    this.byTask.clear();
    for (const b of this.lay.all) {
      if (b.span.task_id) {
        const list = this.byTask.get(b.span.task_id) || [];
        list.push(b);
        this.byTask.set(b.span.task_id, list);
      }
    }
    this.measure();
    this.renderLabels();
    this.renderStatus(now);
    this.a11yAt = 0;
  }

  /** sizes from the room there is (called when shown, resized, and when lanes change) */
  private measure(): void {
    const total = this.node.clientWidth;
    this.labelWidth = total < 520 ? 96 : total < 900 ? 130 : 170;
    this.node.style.setProperty('--jp-orch-timeline-label-width', `${this.labelWidth}px`);
    this.width = Math.max(50, this.scroller.clientWidth - this.labelWidth);
    this.viewHeight = Math.max(60, this.scroller.clientHeight);
    this.geo = laneGeometry(this.lay.lanes.length, this.viewHeight);
    this.dpr = window.devicePixelRatio || 1;
    const height = Math.max(1, this.lay.lanes.length * this.geo.laneHeight);
    size(this.canvas, this.width, height, this.dpr);
    size(this.axis, this.width, AXIS_HEIGHT, this.dpr);
    this.labels.style.setProperty('--jp-orch-lane-height', `${this.geo.laneHeight}px`);
  }

  private readColours(): void {
    const style = getComputedStyle(this.node);
    for (const [k, v] of Object.entries(COLOUR_VARS)) {
      this.colours[k] = style.getPropertyValue(v).trim() || fallbackColour(k);
    }
  }

  // ---------------------------------------------------------------- reading the past

  private maybeFetch(now: number): void {
    if (this.fetchTimer || !needsFetch(this.win, this.fetched, now)) {
      return;
    }
    // a drag or wheel moves the window many times a second: read once it rests a little
    this.fetchTimer = setTimeout(
      () => {
        this.fetchTimer = null;
        void this.fetch();
      },
      this.fetched ? 200 : 0
    );
  }

  async fetch(): Promise<void> {
    if (this.ctl.error?.code === 'no_extension') {
      return;
    }
    const now = this.now();
    const range = fetchRange(this.win, now);
    const seq = ++this.fetchSeq;
    this.fetched = range; // asked for: not asked again until the window leaves it
    this.lastFetch = Date.now();
    try {
      const r = await fetchTimeline(this.ctl.api, range.since, range.until);
      if (seq !== this.fetchSeq || this.disposed) {
        return;
      }
      this.skew = r.now - Date.now() / 1000;
      if (Math.abs(this.skew) < 1) {
        this.skew = 0; // a round trip's worth: this clock is right
      }
      // one who reads everything gets everyone's spans in full: still only theirs are "mine"
      const info = this.ctl.info;
      this.serverSpans = r.spans.map(sp =>
        info?.shared && sp.owner ? { ...sp, mine: sp.owner === info.owner } : info && !info.shared && sp.task_id ? { ...sp, mine: true } : sp
      );
      this.serverWorkers = r.workers;
      this.fetched = { since: Math.min(r.since, range.since), until: Math.max(r.until, range.until) };
      this.fetchError = null;
      this.live.prune(this.fetched.since - 86400);
      this.dirty = true;
      this.schedule();
    } catch (err) {
      if (seq === this.fetchSeq) {
        const e = err as { status?: number; message?: string };
        this.fetchError =
          e.status === 404
            ? 'this server keeps no timeline history (GET /timeline): only your own tasks seen here are drawn'
            : `history not read: ${e.message || String(err)}`;
        this.renderStatus(now);
      }
    }
  }

  // ---------------------------------------------------------------- drawing

  private visibleLanes(): [number, number] {
    const top = this.scroller.scrollTop;
    const lh = this.geo.laneHeight;
    const first = Math.max(0, Math.floor(top / lh) - 1);
    const last = Math.min(this.lay.lanes.length, Math.ceil((top + this.viewHeight) / lh) + 1);
    return [first, last];
  }

  draw(now: number): void {
    this.drawAxis(now);
    const ctx = this.canvas.getContext('2d');
    if (!ctx) {
      return;
    }
    const c = this.colours;
    const { width, geo } = this;
    const lh = geo.laneHeight;
    const height = this.lay.lanes.length * lh;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const [first, last] = this.visibleLanes();
    const y0 = first * lh;
    const y1 = last * lh;
    // lanes: alternate shades per worker; a line between workers
    let shade = 0;
    for (let i = 0; i < this.lay.lanes.length && i < last; i++) {
      const lane = this.lay.lanes[i];
      if (lane.first && i > 0) {
        shade ^= 1;
      }
      if (i < first) {
        continue;
      }
      ctx.fillStyle = shade ? c.bg2 : c.bg1;
      ctx.fillRect(0, i * lh, width, lh);
      if (lane.first && i > 0) {
        ctx.fillStyle = c.strong;
        ctx.fillRect(0, i * lh, width, 1);
      }
    }
    // grid
    ctx.fillStyle = c.line;
    for (const t of ticks(this.win, width)) {
      ctx.fillRect(Math.round(xOf(this.win, width, t.t)), y0, 1, y1 - y0);
    }
    // utilisation under each GPU lane
    for (let i = first; i < last; i++) {
      const lane = this.lay.lanes[i];
      if (lane.kind === 'gpu') {
        this.drawUtil(ctx, lane.key, i);
      }
    }
    // bars
    ctx.font = `11px ${c.font || 'sans-serif'}`;
    ctx.textBaseline = 'middle';
    const selected = this.ctl.store.selection?.kind === 'task' ? this.ctl.store.selection.id : null;
    for (let i = first; i < last; i++) {
      for (const bar of this.lay.bars[i]) {
        const r = barRect(bar, this.win, width, geo, now);
        if (r) {
          this.drawBar(ctx, bar, r, bar.span.task_id !== null && bar.span.task_id === selected);
        }
      }
    }
    // now
    const xn = xOf(this.win, width, now);
    if (xn >= 0 && xn <= width) {
      ctx.fillStyle = c.now;
      ctx.fillRect(Math.round(xn) - 1, y0, 2, y1 - y0);
    }
  }

  private drawUtil(ctx: CanvasRenderingContext2D, key: string, lane: number): void {
    const ring = this.util.get(key);
    if (!ring || !ring.size) {
      return;
    }
    const { width, geo } = this;
    const bottom = (lane + 1) * geo.laneHeight - 1;
    const room = geo.laneHeight - geo.barTop - geo.barHeight - 2;
    const samples = ring.range(this.win.start, this.win.end);
    if (!samples.length) {
      return;
    }
    ctx.beginPath();
    ctx.moveTo(Math.max(0, xOf(this.win, width, samples[0].t)), bottom);
    for (let k = 0; k < samples.length; k++) {
      const s = samples[k];
      const x = xOf(this.win, width, s.t);
      const next = k + 1 < samples.length ? xOf(this.win, width, samples[k + 1].t) : Math.min(width, xOf(this.win, width, this.now()));
      const y = bottom - (s.v / 100) * room;
      ctx.lineTo(Math.max(0, x), y);
      ctx.lineTo(Math.max(0, next), y);
    }
    ctx.lineTo(Math.min(width, xOf(this.win, width, Math.min(this.now(), this.win.end))), bottom);
    ctx.closePath();
    ctx.fillStyle = this.colours.util;
    ctx.globalAlpha = 0.55;
    ctx.fill();
    ctx.globalAlpha = 1;
  }

  private drawBar(ctx: CanvasRenderingContext2D, bar: IBar, r: { x: number; y: number; w: number; h: number }, selected: boolean): void {
    const c = this.colours;
    const s = bar.span;
    const state = barState(s);
    ctx.globalAlpha = s.mine ? 1 : 0.38;
    ctx.fillStyle = c[state] || c.other;
    ctx.fillRect(r.x, r.y, r.w, r.h);
    if (state === 'preempted' && r.w > 4) {
      // hatched: stopped for another task and queued again
      ctx.save();
      ctx.beginPath();
      ctx.rect(r.x, r.y, r.w, r.h);
      ctx.clip();
      ctx.strokeStyle = c.bg1;
      ctx.lineWidth = 2;
      ctx.beginPath();
      for (let x = r.x - r.h; x < r.x + r.w; x += 7) {
        ctx.moveTo(x, r.y + r.h);
        ctx.lineTo(x + r.h, r.y);
      }
      ctx.stroke();
      ctx.restore();
    }
    ctx.globalAlpha = 1;
    if (!s.mine) {
      // the owner's hue when the server names them (an admin), else a neutral outline
      ctx.strokeStyle = s.owner ? `hsl(${ownerHue(s.owner)}, 65%, 45%)` : c.text3;
      ctx.lineWidth = 1.5;
      ctx.strokeRect(r.x + 0.75, r.y + 0.75, Math.max(0, r.w - 1.5), r.h - 1.5);
    }
    if (s.ended_at === null && s.mine) {
      // the growing edge
      ctx.fillStyle = c.selected;
      ctx.globalAlpha = 0.5;
      ctx.fillRect(r.x + r.w - 2, r.y, 2, r.h);
      ctx.globalAlpha = 1;
    }
    if (selected || this.hover === bar) {
      ctx.strokeStyle = c.selected;
      ctx.lineWidth = selected ? 2 : 1;
      ctx.strokeRect(r.x + 1, r.y + 1, Math.max(0, r.w - 2), r.h - 2);
    }
    const label = s.name || (s.mine ? '' : s.owner || '');
    if (label && r.w > 36 && r.h >= 10) {
      const x = Math.max(r.x, 0) + 4;
      const room = Math.min(r.x + r.w, this.width) - x - 3;
      if (room > 20) {
        ctx.fillStyle = s.mine ? '#fff' : c.text;
        ctx.fillText(fit(ctx, label, room), x, r.y + r.h / 2 + 0.5);
      }
    }
  }

  private drawAxis(now: number): void {
    const ctx = this.axis.getContext('2d');
    if (!ctx) {
      return;
    }
    const c = this.colours;
    const { width } = this;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, width, AXIS_HEIGHT);
    ctx.fillStyle = c.bg2;
    ctx.fillRect(0, 0, width, AXIS_HEIGHT);
    ctx.font = `11px ${c.font || 'sans-serif'}`;
    ctx.textBaseline = 'middle';
    for (const t of ticks(this.win, width)) {
      const x = Math.round(xOf(this.win, width, t.t));
      ctx.fillStyle = c.line;
      ctx.fillRect(x, AXIS_HEIGHT - 6, 1, 6);
      const label = tickLabel(t.t, t.step);
      if (x + 3 + ctx.measureText(label).width <= width) {
        ctx.fillStyle = c.text2;
        ctx.fillText(label, x + 3, AXIS_HEIGHT / 2 - 2);
      }
    }
    const xn = xOf(this.win, width, now);
    if (xn >= 0 && xn <= width) {
      ctx.fillStyle = c.now;
      ctx.beginPath();
      ctx.moveTo(xn - 5, AXIS_HEIGHT - 7);
      ctx.lineTo(xn + 5, AXIS_HEIGHT - 7);
      ctx.lineTo(xn, AXIS_HEIGHT);
      ctx.closePath();
      ctx.fill();
    }
    ctx.fillStyle = c.strong;
    ctx.fillRect(0, AXIS_HEIGHT - 1, width, 1);
  }

  // ---------------------------------------------------------------- DOM around the canvas

  private renderLabels(): void {
    const lanes = this.lay.lanes;
    const key = JSON.stringify(lanes.map(l => [l.key, l.workerName, l.workerState, l.model]));
    if (key !== this.labelKey) {
      this.labelKey = key;
      this.labels.replaceChildren(
        ...lanes.map(l =>
          h(
            'div',
            {
              class: `jp-OrchTimeline-lane${l.first ? ' jp-mod-first' : ''}`,
              'data-testid': 'orch-timeline-lane',
              'data-worker': l.workerName,
              'data-worker-id': l.workerId,
              'data-kind': l.kind,
              'data-lane': l.label,
              'data-worker-state': l.workerState,
              title: `${l.workerName} (${l.workerState}) · ${l.label}${l.model ? ' · ' + l.model : ''}`
            },
            h('span', { class: 'jp-OrchTimeline-worker', text: l.first ? l.workerName : '' }),
            h('span', { class: 'jp-OrchTimeline-laneName', text: l.label }),
            h('span', { class: 'jp-OrchTimeline-util' })
          )
        )
      );
    }
    // each GPU's latest utilisation beside its lane
    const els = this.labels.children;
    lanes.forEach((l, i) => {
      const el = els[i]?.lastElementChild;
      if (el && l.kind === 'gpu') {
        const last = this.util.get(l.key)?.last();
        setText(el, last ? `${Math.round(last.v)}%` : '');
      }
    });
    const empty = !lanes.length;
    this.emptyEl.hidden = !empty;
    if (empty) {
      setText(
        this.emptyEl,
        this.ctl.loading
          ? 'Loading…'
          : 'No workers yet: once a worker connects, its GPUs (or slots) appear here as lanes, and the tasks they run as bars.'
      );
    }
  }

  private renderStatus(now: number): void {
    const workers = new Set(this.lay.lanes.map(l => l.workerId)).size;
    const running = this.lay.all.filter(b => b.span.ended_at === null).length;
    const gpus = this.lay.lanes.filter(l => l.kind === 'gpu').length;
    const parts = [
      `${workers} worker${workers === 1 ? '' : 's'}`,
      gpus ? `${gpus} GPU${gpus === 1 ? '' : 's'}` : `${this.lay.lanes.length} slot${this.lay.lanes.length === 1 ? '' : 's'}`,
      `${running} running`
    ];
    setText(this.statusEl, parts.join(' · ') + (this.fetchError ? ` · ${this.fetchError}` : ''));
    this.statusEl.classList.toggle('jp-mod-warn', !!this.fetchError);
    setText(this.spanEl, `${spanLabel(span(this.win))}${this.follow ? ', following now' : ''}`);
    setAttr(this.nowButton, 'aria-pressed', String(this.follow));
    for (const b of this.presetButtons) {
      setAttr(b, 'aria-pressed', String(this.follow && Math.abs(Number(b.dataset.seconds) - this.spanSeconds) < 1));
    }
    void now;
  }

  /** The bars in the window as a list (screen readers cannot read a canvas); each item carries
   * its bar's place in the canvas (data-x, data-y, data-w, data-h, CSS pixels). */
  private updateA11y(now: number): void {
    this.a11yAt = performance.now();
    this.renderStatus(now);
    this.renderLabels();
    const keep = new Set<string>();
    let n = 0;
    for (const bar of this.lay.all) {
      const r = barRect(bar, this.win, this.width, this.geo, now);
      if (!r || n >= 500) {
        continue;
      }
      n++;
      const s = bar.span;
      const key = `${spanKey(s)}@${bar.lane}`;
      keep.add(key);
      let li = this.a11yItems.get(key);
      if (!li) {
        li = h('li', { 'data-testid': 'orch-timeline-bar' });
        this.a11yItems.set(key, li);
        this.a11y.append(li);
      }
      const lane = this.lay.lanes[bar.lane];
      setAttr(li, 'data-task', s.task_id || '');
      setAttr(li, 'data-name', s.name || '');
      setAttr(li, 'data-state', s.state);
      setAttr(li, 'data-mine', String(s.mine));
      setAttr(li, 'data-lane', lane?.key || '');
      setAttr(li, 'data-x', r.x.toFixed(1));
      setAttr(li, 'data-y', r.y.toFixed(1));
      setAttr(li, 'data-w', r.w.toFixed(1));
      setAttr(li, 'data-h', r.h.toFixed(1));
      const who = s.mine ? '' : ` (${s.owner || 'another user'})`;
      setText(
        li,
        `${s.name || "another user's task"}${who}: ${s.state} on ${lane?.workerName} ${lane?.label}, ` +
          `${formatDuration((s.ended_at ?? now) - s.started_at)}`
      );
    }
    for (const [key, li] of this.a11yItems) {
      if (!keep.has(key)) {
        li.remove();
        this.a11yItems.delete(key);
      }
    }
  }

  private showTooltip(bar: IBar, now: number): void {
    const lane = this.lay.lanes[bar.lane];
    if (!lane || !this.pointer) {
      return;
    }
    const { title, lines } = tooltipLines(bar.span, lane, now, formatDuration);
    const key = JSON.stringify([title, lines]);
    if (this.tooltip.dataset.key !== key) {
      this.tooltip.dataset.key = key;
      this.tooltip.replaceChildren(
        h('strong', { 'data-testid': 'orch-timeline-tooltip-name', text: title }),
        ...lines.map(l => h('div', { text: l })),
        bar.span.mine && bar.span.task_id ? h('div', { class: 'jp-OrchHint', text: 'Click: select it and show its log' }) : ''
      );
      this.tooltip.dataset.state = bar.span.state;
      this.tooltip.dataset.task = bar.span.task_id || '';
    }
    this.tooltip.hidden = false;
    // beside the pointer, kept inside the panel
    const box = this.node.getBoundingClientRect();
    const tw = this.tooltip.offsetWidth;
    const th = this.tooltip.offsetHeight;
    let x = this.pointer.x - box.left + 14;
    let y = this.pointer.y - box.top + 14;
    if (x + tw > box.width - 4) {
      x = Math.max(4, this.pointer.x - box.left - tw - 10);
    }
    if (y + th > box.height - 4) {
      y = Math.max(4, this.pointer.y - box.top - th - 10);
    }
    this.tooltip.style.transform = `translate(${Math.round(x)}px, ${Math.round(y)}px)`;
  }

  private setHover(bar: IBar | null): void {
    if (bar !== this.hover) {
      this.hover = bar;
      this.canvas.style.cursor = bar && bar.span.mine && bar.span.task_id ? 'pointer' : this.drag ? 'grabbing' : 'default';
      this.schedule();
    }
    if (!bar) {
      this.tooltip.hidden = true;
    } else {
      this.showTooltip(bar, this.now());
    }
  }

  /** the selected task's bar in view, once per selection (the dashboard opened on a task) */
  private reveal(now: number): void {
    const sel = this.ctl.store.selection;
    const id = sel?.kind === 'task' ? sel.id : null;
    if (!id || id === this.revealed) {
      return;
    }
    const bars = this.byTask.get(id);
    if (!bars?.length) {
      return;
    }
    this.revealed = id;
    const bar = bars.reduce((a, b) => (b.span.started_at > a.span.started_at ? b : a));
    const s = bar.span;
    const end = s.ended_at ?? now;
    const inView = s.started_at >= this.win.start && end <= this.win.end;
    if (!inView) {
      const need = Math.max(span(this.win), (end - s.started_at) * 1.3);
      if (s.ended_at === null && this.follow) {
        this.setSpan(Math.max(need, now - s.started_at + need * 0.1), true);
      } else {
        const mid = (s.started_at + end) / 2;
        this.follow = false;
        this.win = { start: mid - need / 2, end: mid + need / 2 };
      }
    }
    const top = bar.lane * this.geo.laneHeight;
    if (top < this.scroller.scrollTop || top + this.geo.laneHeight > this.scroller.scrollTop + this.viewHeight) {
      this.scroller.scrollTop = Math.max(0, top - this.viewHeight / 3);
    }
  }

  // ---------------------------------------------------------------- pointer

  private local(ev: MouseEvent): { x: number; y: number } {
    const r = this.canvas.getBoundingClientRect();
    return { x: ev.clientX - r.left, y: ev.clientY - r.top };
  }

  private onWheel(ev: WheelEvent): void {
    if (ev.shiftKey) {
      // shift + wheel scrolls the lanes
      this.scroller.scrollTop += ev.deltaY || ev.deltaX;
      ev.preventDefault();
      return;
    }
    if (!ev.deltaY) {
      return;
    }
    ev.preventDefault();
    const { x } = this.local(ev);
    const t = tOf(this.win, this.width, Math.max(0, Math.min(this.width, x)));
    this.follow = false;
    this.win = zoomAbout(this.win, wheelFactor(ev.deltaY, ev.deltaMode), t);
    this.spanSeconds = span(this.win);
    this.renderStatus(this.now());
    this.schedule();
  }

  private onPointerDown(ev: PointerEvent): void {
    if (ev.button !== 0) {
      return;
    }
    this.drag = { x: ev.clientX, win: { ...this.win }, moved: false };
    (ev.target as Element).setPointerCapture?.(ev.pointerId);
  }

  private onPointerMove(ev: PointerEvent): void {
    if (this.drag) {
      const dx = ev.clientX - this.drag.x;
      if (Math.abs(dx) > 3) {
        this.drag.moved = true;
      }
      if (this.drag.moved) {
        this.follow = false;
        this.win = panByPixels(this.drag.win, this.width, dx);
        this.canvas.style.cursor = 'grabbing';
        this.setHover(null);
        this.renderStatus(this.now());
        this.schedule();
        return;
      }
    }
    if (ev.target !== this.canvas) {
      return;
    }
    this.pointer = { x: ev.clientX, y: ev.clientY };
    const { x, y } = this.local(ev);
    this.setHover(hitTest(this.lay, this.win, this.width, this.geo, this.now(), x, y));
  }

  private onPointerUp(ev: PointerEvent): void {
    const drag = this.drag;
    this.drag = null;
    if (!drag || drag.moved || ev.target !== this.canvas) {
      this.canvas.style.cursor = 'default';
      return;
    }
    const { x, y } = this.local(ev);
    const bar = hitTest(this.lay, this.win, this.width, this.geo, this.now(), x, y);
    if (bar?.span.mine && bar.span.task_id) {
      this.openTask(bar.span.task_id);
    }
  }

  /** select the task (as the runs list does) and ask for its log to be shown */
  openTask(id: string): void {
    this.revealed = id; // it is in view already
    this.ctl.selectRow('task', id);
    this.node.dispatchEvent(new CustomEvent(OPEN_LOG_EVENT, { bubbles: true, detail: { taskId: id } }));
    this.schedule();
  }
}

function size(canvas: HTMLCanvasElement, w: number, h: number, dpr: number): void {
  const pw = Math.round(w * dpr);
  const ph = Math.round(h * dpr);
  if (canvas.width !== pw || canvas.height !== ph) {
    canvas.width = pw;
    canvas.height = ph;
  }
  canvas.style.width = `${w}px`;
  canvas.style.height = `${h}px`;
}

/** `text` cut with an ellipsis to fit `room` pixels */
function fit(ctx: CanvasRenderingContext2D, text: string, room: number): string {
  if (ctx.measureText(text).width <= room) {
    return text;
  }
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ctx.measureText(text.slice(0, mid) + '…').width <= room) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo ? text.slice(0, lo) + '…' : '';
}

function fallbackColour(key: string): string {
  const map: Record<string, string> = {
    running: '#1976d2',
    succeeded: '#388e3c',
    failed: '#d32f2f',
    cancelled: '#f57c00',
    preempted: '#ffb74d',
    other: '#9e9e9e',
    bg1: '#ffffff',
    bg2: '#f5f5f5',
    line: '#e0e0e0',
    strong: '#bdbdbd',
    text: '#212121',
    text2: '#616161',
    text3: '#9e9e9e',
    util: '#90caf9',
    now: '#e53935',
    selected: '#000000',
    font: 'sans-serif'
  };
  return map[key] || '#888';
}
