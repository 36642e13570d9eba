// The GPU timeline's data: the spans of time tasks held GPUs or slots (from GET /timeline for
// the past and everyone's work, from the store's task events for the user's own, live), the
// lanes they are drawn in (one per GPU per worker; a worker without GPUs: one per slot), the
// bars' geometry and hit-testing, and a ring buffer of each GPU's utilisation. Pure: no DOM.
import type { ITask, IWorker } from '../types';
import { ITimeWindow, xOf } from './timescale';

/** a worker as GET /timeline lists it */
export interface ITimelineWorker {
  id: string;
  name: string;
  state: string;
  slots: number;
  gpus: { index: number; name?: string }[];
}

/** One attempt of a task on a worker, from its start to its end (null: still running). Another
 * user's span has no task_id, name or owner (unless the caller may read everyone's work). */
export interface ISpan {
  task_id: string | null;
  name: string | null;
  owner: string | null;
  mine: boolean;
  attempt: number;
  state: string;
  worker_id: string;
  gpus: number[];
  started_at: number;
  ended_at: number | null;
}

/** GET /orch/api/v1/timeline?since=&until= */
export interface ITimelineResponse {
  since: number;
  until: number;
  now: number;
  workers: ITimelineWorker[];
  spans: ISpan[];
}

export interface ILane {
  key: string;
  workerId: string;
  workerName: string;
  workerState: string;
  kind: 'gpu' | 'slot';
  /** the GPU's index, or the slot's number (1-based) */
  index: number;
  label: string;
  /** the GPU's model, when known */
  model?: string;
  /** the first lane of its worker (a worker's name is shown once) */
  first: boolean;
}

export interface IBar {
  span: ISpan;
  lane: number;
}

export interface ILayout {
  lanes: ILane[];
  /** per lane, its bars ordered by start */
  bars: IBar[][];
  /** every bar, lane by lane */
  all: IBar[];
}

export const ENDED_STATES = new Set(['succeeded', 'failed', 'cancelled', 'preempted', 'lost', 'upstream_failed']);

export function spanKey(s: ISpan): string {
  return s.task_id ? `${s.task_id}:${s.attempt}` : `${s.worker_id}:${s.gpus.join(',')}:${s.started_at}`;
}

/** Workers from the server's answer and the live ones from the store (the live view wins),
 * plus any a span names that neither lists (a worker gone before the window). */
export function mergeWorkers(
  fromServer: ITimelineWorker[],
  live: Iterable<IWorker>,
  spans: Iterable<ISpan>
): ITimelineWorker[] {
  const out = new Map<string, ITimelineWorker>();
  for (const w of fromServer) {
    out.set(w.id, { ...w, gpus: [...(w.gpus || [])] });
  }
  for (const w of live) {
    out.set(w.id, {
      id: w.id,
      name: w.name,
      state: w.state,
      slots: w.slots,
      gpus: (w.gpus || []).map(g => ({ index: g.index, name: g.model }))
    });
  }
  for (const s of spans) {
    if (!out.has(s.worker_id)) {
      out.set(s.worker_id, { id: s.worker_id, name: `worker ${s.worker_id.slice(0, 8)}`, state: 'gone', slots: 1, gpus: [] });
    }
  }
  return [...out.values()].sort((a, b) => a.name.localeCompare(b.name) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function byStart(a: ISpan, b: ISpan): number {
  return a.started_at - b.started_at || (spanKey(a) < spanKey(b) ? -1 : spanKey(a) > spanKey(b) ? 1 : 0);
}

/** Spans into slot lanes: each takes the first slot free when it starts (greedy, by start);
 * returns the slot (0-based) of each span and how many slots were needed. */
export function packSlots(spans: ISpan[], now: number): { slot: Map<ISpan, number>; count: number } {
  const ends: number[] = [];
  const slot = new Map<ISpan, number>();
  for (const s of [...spans].sort(byStart)) {
    let i = ends.findIndex(end => end <= s.started_at);
    if (i < 0) {
      i = ends.length;
      ends.push(0);
    }
    ends[i] = s.ended_at ?? Math.max(now, s.started_at) + 1e9;
    slot.set(s, i);
  }
  return { slot, count: ends.length };
}

/** The lanes (workers by name; a worker's GPUs by index, then its slots) and each lane's bars.
 * A worker with GPUs gets a lane per GPU, and slot lanes only for work that held no GPU there;
 * a worker without GPUs gets a lane per slot (more when more overlapped). */
export function layout(workers: ITimelineWorker[], spans: Iterable<ISpan>, now: number): ILayout {
  const perWorker = new Map<string, ISpan[]>();
  for (const s of spans) {
    let list = perWorker.get(s.worker_id);
    if (!list) {
      perWorker.set(s.worker_id, (list = []));
    }
    list.push(s);
  }
  const lanes: ILane[] = [];
  const bars: IBar[][] = [];
  for (const w of workers) {
    const mine = perWorker.get(w.id) || [];
    const gpuIdx = new Map<number, number>(); // GPU index -> lane
    const gpus = [...w.gpus].sort((a, b) => a.index - b.index);
    // a GPU a span names that the worker no longer lists still gets its lane
    for (const s of mine) {
      for (const g of s.gpus) {
        if (!gpus.some(x => x.index === g)) {
          gpus.push({ index: g });
        }
      }
    }
    gpus.sort((a, b) => a.index - b.index);
    const firstLane = lanes.length;
    for (const g of gpus) {
      gpuIdx.set(g.index, lanes.length);
      lanes.push({
        key: `${w.id}/gpu/${g.index}`,
        workerId: w.id,
        workerName: w.name,
        workerState: w.state,
        kind: 'gpu',
        index: g.index,
        label: `GPU ${g.index}`,
        model: g.name,
        first: lanes.length === firstLane
      });
      bars.push([]);
    }
    const noGpu = mine.filter(s => !s.gpus.length);
    const packed = packSlots(noGpu, now);
    const slots = gpus.length ? packed.count : Math.max(w.slots || 1, packed.count);
    const slotBase = lanes.length;
    for (let i = 0; i < slots; i++) {
      lanes.push({
        key: `${w.id}/slot/${i + 1}`,
        workerId: w.id,
        workerName: w.name,
        workerState: w.state,
        kind: 'slot',
        index: i + 1,
        label: `slot ${i + 1}`,
        first: lanes.length === firstLane
      });
      bars.push([]);
    }
    for (const s of mine) {
      if (s.gpus.length) {
        for (const g of s.gpus) {
          const lane = gpuIdx.get(g)!;
          bars[lane].push({ span: s, lane });
        }
      } else {
        const lane = slotBase + (packed.slot.get(s) ?? 0);
        bars[lane].push({ span: s, lane });
      }
    }
  }
  for (const list of bars) {
    list.sort((a, b) => byStart(a.span, b.span));
  }
  return { lanes, bars, all: bars.flat() };
}

/** What the server read and what the events told (the user's own work), one span per attempt:
 * an ended view wins over a running one (a newer fact), else the live one. */
export function mergeSpans(fromServer: Iterable<ISpan>, live: Iterable<ISpan>): ISpan[] {
  const out = new Map<string, ISpan>();
  for (const s of fromServer) {
    out.set(spanKey(s), s);
  }
  for (const s of live) {
    const key = spanKey(s);
    const old = out.get(key);
    if (!old || old.ended_at === null || s.ended_at !== null) {
      // the server's answer names another user's task by nothing: keep what it said of ownership
      out.set(key, old ? { ...old, ...s, name: s.name ?? old.name, owner: s.owner ?? old.owner } : s);
    }
  }
  return [...out.values()];
}

const HELD = new Set(['running', 'succeeded', 'failed', 'cancelled']);

/** The user's own spans as the store's tasks tell them (kept live from the events): a task that
 * started on a worker is a span of its attempt; one seen running that went back to waiting
 * (preempted, or failed with a retry left) ends that span. */
export class LiveSpans {
  readonly spans = new Map<string, ISpan>();
  /** task id -> the key of its latest span */
  private latest = new Map<string, string>();

  /** `isMine`: whether a task is the caller's (all of them on a personal server) */
  update(task: ITask, isMine: (owner: string) => boolean, now: number): void {
    const prevKey = this.latest.get(task.id);
    const prev = prevKey ? this.spans.get(prevKey) : undefined;
    if (task.started_at && task.worker_id && HELD.has(task.state)) {
      const span: ISpan = {
        task_id: task.id,
        name: task.name || task.id,
        owner: task.owner,
        mine: isMine(task.owner),
        attempt: task.attempt,
        state: task.state,
        worker_id: task.worker_id,
        gpus: [...(task.gpus || [])],
        started_at: task.started_at,
        ended_at: task.state === 'running' ? null : (task.ended_at ?? task.updated_at ?? now)
      };
      const key = spanKey(span);
      if (prev && prevKey !== key && prev.ended_at === null) {
        this.close(prev, 'preempted', task.started_at);
      }
      this.spans.set(key, span);
      this.latest.set(task.id, key);
      return;
    }
    if (prev && prev.ended_at === null) {
      const reason = (task.reason || '').toLowerCase();
      const state = ENDED_STATES.has(task.state)
        ? task.state
        : reason.includes('failed')
          ? 'failed'
          : reason.includes('lost') || reason.includes('gone')
            ? 'lost'
            : 'preempted';
      this.close(prev, state, task.updated_at ?? now);
    }
  }

  private close(span: ISpan, state: string, at: number): void {
    span.state = state;
    span.ended_at = Math.max(span.started_at, at);
  }

  /** forget spans that ended before `t` (keeps the map small over a long session) */
  prune(t: number): void {
    for (const [key, s] of this.spans) {
      if (s.ended_at !== null && s.ended_at < t) {
        this.spans.delete(key);
        if (s.task_id && this.latest.get(s.task_id) === key) {
          this.latest.delete(s.task_id);
        }
      }
    }
  }
}

// ---------------------------------------------------------------- geometry and hit-testing

export interface ILaneGeometry {
  /** the height of a lane, pixels */
  laneHeight: number;
  /** the band of a lane the bars take (the rest, below, shows the GPU's utilisation) */
  barTop: number;
  barHeight: number;
  /** the narrowest a bar is drawn (a short task is still seen and hit) */
  minBarWidth: number;
}

/** Lane height from the room there is: lanes fill the height, between 18 and 56 px each. */
export function laneGeometry(lanes: number, height: number): ILaneGeometry {
  const laneHeight = Math.round(Math.max(18, Math.min(56, lanes ? height / lanes : 56)));
  const util = Math.max(4, Math.round(laneHeight * 0.28));
  const barTop = 2;
  return { laneHeight, barTop, barHeight: Math.max(6, laneHeight - util - barTop - 2), minBarWidth: 2 };
}

export interface IRect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Where a bar is drawn (null: outside the window). A running bar reaches `now`. */
export function barRect(
  bar: IBar,
  w: ITimeWindow,
  width: number,
  geo: ILaneGeometry,
  now: number
): IRect | null {
  const end = bar.span.ended_at ?? Math.max(now, bar.span.started_at);
  if (end < w.start || bar.span.started_at > w.end) {
    return null;
  }
  let x0 = xOf(w, width, bar.span.started_at);
  let x1 = xOf(w, width, end);
  x0 = Math.max(-4, x0);
  x1 = Math.min(width + 4, x1);
  const bw = Math.max(geo.minBarWidth, x1 - x0);
  return { x: x0, y: bar.lane * geo.laneHeight + geo.barTop, w: bw, h: geo.barHeight };
}

/** The bar under (x, y) (pixels in the lanes' canvas), the topmost (latest) first; a bar a
 * few pixels wide is hit within `slop` pixels. */
export function hitTest(
  lay: ILayout,
  w: ITimeWindow,
  width: number,
  geo: ILaneGeometry,
  now: number,
  x: number,
  y: number,
  slop = 3
): IBar | null {
  const lane = Math.floor(y / geo.laneHeight);
  if (lane < 0 || lane >= lay.bars.length) {
    return null;
  }
  const list = lay.bars[lane];
  let best: IBar | null = null;
  let bestDist = Infinity;
  for (let i = list.length - 1; i >= 0; i--) {
    const r = barRect(list[i], w, width, geo, now);
    if (!r) {
      continue;
    }
    if (x >= r.x && x <= r.x + r.w) {
      return list[i];
    }
    const d = x < r.x ? r.x - x : x - (r.x + r.w);
    if (d <= slop && d < bestDist) {
      best = list[i];
      bestDist = d;
    }
  }
  return best;
}

// ---------------------------------------------------------------- colours

/** A hue (0..359) for a user's name, the same every time. */
export function ownerHue(owner: string | null): number {
  if (!owner) {
    return 0;
  }
  let h = 2166136261;
  for (let i = 0; i < owner.length; i++) {
    h ^= owner.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return (h >>> 0) % 360;
}

/** The state a bar is coloured by (an attempt's states: lost reads as failed). */
export function barState(span: ISpan): string {
  if (span.state === 'lost' || span.state === 'upstream_failed') {
    return 'failed';
  }
  return ['running', 'succeeded', 'failed', 'cancelled', 'preempted'].includes(span.state) ? span.state : 'other';
}

// ---------------------------------------------------------------- utilisation

/** A fixed-size ring buffer of (time, value) samples, oldest overwritten first. */
export class Ring {
  private t: Float64Array;
  private v: Float32Array;
  private head = 0;
  size = 0;

  constructor(readonly capacity = 4096) {
    this.t = new Float64Array(capacity);
    this.v = new Float32Array(capacity);
  }

  /** add a sample; one not newer than the last is ignored */
  push(t: number, v: number): boolean {
    if (this.size && t <= this.last()!.t) {
      return false;
    }
    const i = (this.head + this.size) % this.capacity;
    this.t[i] = t;
    this.v[i] = v;
    if (this.size < this.capacity) {
      this.size++;
    } else {
      this.head = (this.head + 1) % this.capacity;
    }
    return true;
  }

  at(k: number): { t: number; v: number } {
    const i = (this.head + k) % this.capacity;
    return { t: this.t[i], v: this.v[i] };
  }

  last(): { t: number; v: number } | null {
    return this.size ? this.at(this.size - 1) : null;
  }

  /** the samples from the one before `t0` to the one after `t1` (so a line reaches the edges) */
  range(t0: number, t1: number): { t: number; v: number }[] {
    const out: { t: number; v: number }[] = [];
    // binary search the first sample at or after t0
    let lo = 0;
    let hi = this.size;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.t[(this.head + mid) % this.capacity] < t0) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    for (let k = Math.max(0, lo - 1); k < this.size; k++) {
      const s = this.at(k);
      out.push(s);
      if (s.t > t1) {
        break;
      }
    }
    return out;
  }
}

/** Each GPU's utilisation (percent) over time, from the workers' heartbeats as they arrive. */
export class UtilHistory {
  readonly rings = new Map<string, Ring>();
  private seen = new Map<string, number>();

  constructor(readonly capacity = 4096) {}

  static key(workerId: string, gpu: number): string {
    return `${workerId}/gpu/${gpu}`;
  }

  /** Record a worker's GPUs once per heartbeat (`at`: its last_seen, else now). Returns
   * whether anything was added. */
  sample(worker: IWorker, now: number): boolean {
    const at = worker.last_seen ?? now;
    if (this.seen.get(worker.id) === at) {
      return false;
    }
    this.seen.set(worker.id, at);
    let added = false;
    for (const g of worker.gpus || []) {
      if (typeof g.utilization !== 'number' || !isFinite(g.utilization)) {
        continue;
      }
      const key = UtilHistory.key(worker.id, g.index);
      let ring = this.rings.get(key);
      if (!ring) {
        this.rings.set(key, (ring = new Ring(this.capacity)));
      }
      added = ring.push(at, Math.max(0, Math.min(100, g.utilization))) || added;
    }
    return added;
  }

  get(key: string): Ring | undefined {
    return this.rings.get(key);
  }
}

// ---------------------------------------------------------------- words

export function clockTime(t: number, withDate = false): string {
  const d = new Date(t * 1000);
  const time = d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  return withDate ? `${d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })} ${time}` : time;
}

/** The lines of a bar's tooltip: name, owner, state, start to end, duration, where. */
export function tooltipLines(
  span: ISpan,
  lane: ILane,
  now: number,
  formatDuration: (s: number) => string
): { title: string; lines: string[] } {
  const title = span.name || (span.mine ? span.task_id || 'task' : "another user's task");
  const end = span.ended_at;
  const dur = (end ?? now) - span.started_at;
  const longAgo = now - span.started_at > 20 * 3600;
  const lines = [
    `owner: ${span.owner || (span.mine ? 'you' : 'another user')}`,
    `state: ${span.state}${span.attempt > 1 ? ` (attempt ${span.attempt})` : ''}`,
    `${clockTime(span.started_at, longAgo)} → ${end !== null ? clockTime(end, longAgo) : 'now'}`,
    `duration: ${formatDuration(Math.max(0, dur))}${end === null ? ' so far' : ''}`,
    `${lane.workerName} · ${span.gpus.length ? `GPU ${span.gpus.join(', ')}` : lane.label}`
  ];
  return { title, lines };
}
