// Learning curves for the experiments panel, pure (no DOM): the series GET /tasks/{id}/metrics
// answers, live points from the events socket appended to them (cut down with LTTB when they
// grow long, as the server does), one chart per metric with a line per task, the axes' ticks
// and the SVG path of a line (gaps where a value was NaN or infinite).

/** a series as GET /tasks/{id}/metrics answers it (attempts merged) */
export interface IMetricSeries {
  name: string;
  group: string;
  attempt?: number | null;
  x: number[];
  y: (number | null)[];
  /** points before downsampling */
  count: number;
  downsampled: boolean;
  last?: number | null;
  min?: number | null;
  max?: number | null;
}

export interface IMetricAnswer {
  task_id: string;
  attempts: number[];
  groups: string[];
  names: string[];
  series: IMetricSeries[];
}

/** a point as a metrics event carries it: [ts, step | null, group, {name: value | null}] */
export type MetricPoint = [number, number | null, string, Record<string, number | null>];

/** a metrics event of /events?metrics=1 */
export interface IMetricsEvent {
  type: 'metrics';
  task_id: string;
  attempt: number;
  offset: number;
  points: MetricPoint[];
}

/** At most `n` points keeping the curve's shape: Largest-Triangle-Three-Buckets over the
 * finite values (gaps are dropped once a series is cut down); the first and last kept. The
 * same as the server's (jupyter_orch/core/metrics.py downsample). */
export function lttb(xs: readonly number[], ys: readonly (number | null)[], n: number): { x: number[]; y: (number | null)[] } {
  if (n < 3 || xs.length <= n) {
    if (xs.length <= n) {
      return { x: [...xs], y: [...ys] };
    }
    return { x: [xs[0], xs[xs.length - 1]].slice(0, n), y: [ys[0], ys[ys.length - 1]].slice(0, n) };
  }
  const px: number[] = [];
  const py: number[] = [];
  for (let i = 0; i < xs.length; i++) {
    const v = ys[i];
    if (v !== null && v !== undefined && isFinite(v)) {
      px.push(xs[i]);
      py.push(v);
    }
  }
  if (px.length <= n) {
    return { x: px, y: py };
  }
  const outX = [px[0]];
  const outY: (number | null)[] = [py[0]];
  const bucket = (px.length - 2) / (n - 2);
  let a = 0;
  for (let i = 0; i < n - 2; i++) {
    const start = Math.floor(i * bucket) + 1;
    const end = Math.floor((i + 1) * bucket) + 1;
    const nstart = end;
    const nend = Math.min(Math.floor((i + 2) * bucket) + 1, px.length);
    let avgX: number;
    let avgY: number;
    if (nstart >= nend) {
      avgX = px[px.length - 1];
      avgY = py[py.length - 1];
    } else {
      avgX = 0;
      avgY = 0;
      for (let j = nstart; j < nend; j++) {
        avgX += px[j];
        avgY += py[j];
      }
      avgX /= nend - nstart;
      avgY /= nend - nstart;
    }
    const ax = px[a];
    const ay = py[a];
    let best = start;
    let bestArea = -1;
    for (let j = start; j < Math.max(end, start + 1); j++) {
      const area = Math.abs((ax - avgX) * (py[j] - ay) - (ax - px[j]) * (avgY - ay));
      if (area > bestArea) {
        best = j;
        bestArea = area;
      }
    }
    outX.push(px[best]);
    outY.push(py[best]);
    a = best;
  }
  outX.push(px[px.length - 1]);
  outY.push(py[py.length - 1]);
  return { x: outX, y: outY };
}

/** Append a metrics event's points to a task's series (a new metric or group gets its own);
 * a series longer than `2 * maxPoints` is cut down to `maxPoints`. A point without a step has
 * its offset in the attempt as x, as the server reads it. Returns how many values were added. */
export function appendPoints(series: IMetricSeries[], event: Pick<IMetricsEvent, 'offset' | 'points'>, maxPoints = 1000): number {
  let added = 0;
  event.points.forEach((p, i) => {
    const [, step, group, values] = p;
    const x = step === null || step === undefined ? event.offset + i : step;
    for (const [name, value] of Object.entries(values || {})) {
      let s = series.find(q => q.name === name && q.group === group);
      if (!s) {
        s = { name, group, x: [], y: [], count: 0, downsampled: false, last: null, min: null, max: null };
        series.push(s);
      }
      const v = value === null || value === undefined || !isFinite(value) ? null : value;
      s.x.push(x);
      s.y.push(v);
      s.count++;
      if (v !== null) {
        s.last = v;
        s.min = s.min === null || s.min === undefined ? v : Math.min(s.min, v);
        s.max = s.max === null || s.max === undefined ? v : Math.max(s.max, v);
      }
      added++;
    }
  });
  for (const s of series) {
    if (s.x.length > 2 * maxPoints) {
      const cut = lttb(s.x, s.y, maxPoints);
      s.x = cut.x;
      s.y = cut.y;
      s.downsampled = true;
    }
  }
  return added;
}

export interface IChartLine {
  taskId: string;
  group: string;
  /** the task's place among the chosen tasks (its colour) */
  index: number;
  x: readonly number[];
  y: readonly (number | null)[];
  count: number;
}

export interface IChart {
  metric: string;
  lines: IChartLine[];
}

/** One chart per metric (in the order metrics first appear over the tasks in `order`), a line
 * per task and group. */
export function buildCharts(order: readonly string[], data: ReadonlyMap<string, readonly IMetricSeries[]>): IChart[] {
  const charts = new Map<string, IChart>();
  order.forEach((taskId, index) => {
    for (const s of data.get(taskId) || []) {
      let c = charts.get(s.name);
      if (!c) {
        c = { metric: s.name, lines: [] };
        charts.set(s.name, c);
      }
      c.lines.push({ taskId, group: s.group, index, x: s.x, y: s.y, count: s.count });
    }
  });
  return [...charts.values()];
}

/** the x and y ranges of a chart's finite points (null: none) */
export function extent(lines: readonly Pick<IChartLine, 'x' | 'y'>[]): { x0: number; x1: number; y0: number; y1: number } | null {
  let x0 = Infinity;
  let x1 = -Infinity;
  let y0 = Infinity;
  let y1 = -Infinity;
  for (const l of lines) {
    for (let i = 0; i < l.x.length; i++) {
      const v = l.y[i];
      if (v === null || v === undefined || !isFinite(v)) {
        continue;
      }
      x0 = Math.min(x0, l.x[i]);
      x1 = Math.max(x1, l.x[i]);
      y0 = Math.min(y0, v);
      y1 = Math.max(y1, v);
    }
  }
  if (x0 === Infinity) {
    return null;
  }
  if (x0 === x1) {
    x0 -= 1;
    x1 += 1;
  }
  if (y0 === y1) {
    const d = Math.abs(y0) * 0.05 || 1;
    y0 -= d;
    y1 += d;
  }
  return { x0, x1, y0, y1 };
}

/** About `count` round tick values within [lo, hi] (1, 2 or 5 times a power of ten apart). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!isFinite(lo) || !isFinite(hi) || hi <= lo || count < 1) {
    return isFinite(lo) ? [lo] : [];
  }
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const err = raw / mag; // as d3's ticks: the round step nearest the raw one
  const step = mag * (err >= Math.sqrt(50) ? 10 : err >= Math.sqrt(10) ? 5 : err >= Math.sqrt(2) ? 2 : 1);
  const out: number[] = [];
  const first = Math.ceil(lo / step - 1e-9) * step;
  for (let v = first; v <= hi + step * 1e-9; v += step) {
    out.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  }
  return out;
}

/** The SVG path of a line through the points (mapped by sx, sy), a new piece after each gap;
 * and how many points it draws. */
export function linePath(
  x: readonly number[],
  y: readonly (number | null)[],
  sx: (v: number) => number,
  sy: (v: number) => number
): { d: string; points: number } {
  let d = '';
  let pen = false;
  let points = 0;
  for (let i = 0; i < x.length; i++) {
    const v = y[i];
    if (v === null || v === undefined || !isFinite(v)) {
      pen = false;
      continue;
    }
    d += `${pen ? 'L' : 'M'}${sx(x[i]).toFixed(1)},${sy(v).toFixed(1)}`;
    pen = true;
    points++;
  }
  return { d, points };
}

/** Calls `draw` at most once per `minMs` (10 redraws a second by default), soon after the
 * first request of a burst; `now` and `later` are injectable for tests. */
export class Throttle {
  private last = -Infinity;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly draw: () => void,
    readonly minMs = 100,
    private readonly now: () => number = () => performance.now(),
    private readonly later: (fn: () => void, ms: number) => ReturnType<typeof setTimeout> = (fn, ms) => setTimeout(fn, ms)
  ) {}

  request(): void {
    if (this.timer) {
      return;
    }
    const wait = Math.max(0, this.last + this.minMs - this.now());
    this.timer = this.later(() => {
      this.timer = null;
      this.last = this.now();
      this.draw();
    }, wait);
  }

  cancel(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }
}
