// The GPU timeline's time axis: a window of time (seconds since the epoch) mapped onto a width
// in pixels, zoomed about a point, panned, following "now", and its tick marks. Pure.

export interface ITimeWindow {
  start: number;
  end: number;
}

/** the narrowest and widest windows one may zoom to (seconds) */
export const MIN_SPAN = 10;
export const MAX_SPAN = 30 * 86400;
/** in follow mode "now" sits this fraction of the window from its right edge */
export const FOLLOW_LEAD = 0.04;

export function span(w: ITimeWindow): number {
  return w.end - w.start;
}

/** the x (pixels from the left) of time `t` */
export function xOf(w: ITimeWindow, width: number, t: number): number {
  return ((t - w.start) / (w.end - w.start)) * width;
}

/** the time at `x` pixels from the left */
export function tOf(w: ITimeWindow, width: number, x: number): number {
  return w.start + (x / width) * (w.end - w.start);
}

function clampSpan(s: number): number {
  return Math.min(MAX_SPAN, Math.max(MIN_SPAN, s));
}

/** The window scaled by `factor` (>1 zooms out) about time `t`, which stays at the same x. */
export function zoomAbout(w: ITimeWindow, factor: number, t: number): ITimeWindow {
  const old = span(w);
  const next = clampSpan(old * factor);
  const k = old > 0 ? (t - w.start) / old : 0.5;
  const start = t - k * next;
  return { start, end: start + next };
}

/** The zoom factor of a wheel step: a notch (deltaY 100) zooms by about 16%; up zooms in. */
export function wheelFactor(deltaY: number, deltaMode = 0): number {
  const px = deltaMode === 1 ? deltaY * 16 : deltaMode === 2 ? deltaY * 400 : deltaY;
  return Math.exp(Math.max(-300, Math.min(300, px)) * 0.0015);
}

/** The window moved by `dx` pixels of a drag (dragging right shows earlier times). */
export function panByPixels(w: ITimeWindow, width: number, dx: number): ITimeWindow {
  const dt = width > 0 ? (dx / width) * span(w) : 0;
  return { start: w.start - dt, end: w.end - dt };
}

/** The window of `seconds` that follows `now` (now near its right edge). */
export function followWindow(seconds: number, now: number): ITimeWindow {
  const s = clampSpan(seconds);
  const end = now + s * FOLLOW_LEAD;
  return { start: end - s, end };
}

/** Is the window outside of what was read ([since, until])? The recent edge is read again by
 * the poll (every few seconds), so only a window reaching more than `slack` seconds past the
 * last read (into a past not read yet) asks for a read now; the future asks for nothing. */
export function needsFetch(
  w: ITimeWindow,
  fetched: { since: number; until: number } | null,
  now: number,
  slack = 15
): boolean {
  if (!fetched) {
    return true;
  }
  return w.start < fetched.since || Math.min(w.end, now) > fetched.until + slack;
}

/** What to read for a window: it and half of it on each side (never past `now`). */
export function fetchRange(w: ITimeWindow, now: number): { since: number; until: number } {
  const s = span(w);
  return { since: Math.floor(w.start - s / 2), until: Math.ceil(Math.min(w.end + s / 2, now + 1)) };
}

// tick steps, seconds
const STEPS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800
];

/** The smallest "nice" step whose ticks are at least `minPx` apart. */
export function tickStep(w: ITimeWindow, width: number, minPx = 90): number {
  const perPx = span(w) / Math.max(1, width);
  for (const s of STEPS) {
    if (s / perPx >= minPx) {
      return s;
    }
  }
  return STEPS[STEPS.length - 1];
}

/** Tick times in the window, multiples of the step in local time (`tzOffset`: minutes, as
 * Date.getTimezoneOffset gives, so that hour and day ticks fall on local hours and days). */
export function ticks(w: ITimeWindow, width: number, minPx = 90, tzOffset?: number): { t: number; step: number }[] {
  const step = tickStep(w, width, minPx);
  const offset = (tzOffset ?? new Date(w.start * 1000).getTimezoneOffset()) * 60;
  const out: { t: number; step: number }[] = [];
  // local time = t - offset: align the local time to the step
  let t = Math.ceil((w.start - offset) / step) * step + offset;
  for (let i = 0; t <= w.end && i < 1000; i++, t += step) {
    out.push({ t, step });
  }
  return out;
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** A tick's label: seconds when the step is under a minute, the date at midnight. */
export function tickLabel(t: number, step: number): string {
  const d = new Date(t * 1000);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (step < 60) {
    return `${hm}:${pad(d.getSeconds())}`;
  }
  if (step >= 86400 || (d.getHours() === 0 && d.getMinutes() === 0)) {
    return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
  }
  return hm;
}

/** A short name for a window's width: "15 min", "1 h", "6 h 30 min", "2 d". */
export function spanLabel(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 120) {
    return `${s} s`;
  }
  if (s < 3600) {
    return `${Math.round(s / 60)} min`;
  }
  if (s < 2 * 86400) {
    const h = Math.floor(s / 3600);
    const m = Math.round((s % 3600) / 60);
    return m ? `${h} h ${m} min` : `${h} h`;
  }
  return `${Math.round(s / 86400)} d`;
}
