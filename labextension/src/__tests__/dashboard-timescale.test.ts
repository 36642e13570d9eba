import { describe, expect, it } from 'vitest';
import {
  fetchRange,
  followWindow,
  MAX_SPAN,
  MIN_SPAN,
  needsFetch,
  panByPixels,
  span,
  spanLabel,
  tickStep,
  ticks,
  tOf,
  wheelFactor,
  xOf,
  zoomAbout
} from '../dashboard/timescale';

describe('the timeline time scale', () => {
  const w = { start: 1000, end: 2000 };

  it('maps times to pixels and back', () => {
    expect(xOf(w, 500, 1000)).toBe(0);
    expect(xOf(w, 500, 1500)).toBe(250);
    expect(xOf(w, 500, 2000)).toBe(500);
    expect(tOf(w, 500, 250)).toBe(1500);
    expect(tOf(w, 500, xOf(w, 500, 1234.5))).toBeCloseTo(1234.5);
  });

  it('zooms about a time, which stays at the same x', () => {
    const t = 1250;
    const before = xOf(w, 800, t);
    const z = zoomAbout(w, 0.5, t);
    expect(span(z)).toBe(500);
    expect(xOf(z, 800, t)).toBeCloseTo(before);
    const out = zoomAbout(w, 3, t);
    expect(span(out)).toBe(3000);
    expect(xOf(out, 800, t)).toBeCloseTo(before);
  });

  it('keeps the zoom between its limits', () => {
    expect(span(zoomAbout(w, 1e-6, 1500))).toBe(MIN_SPAN);
    expect(span(zoomAbout(w, 1e9, 1500))).toBe(MAX_SPAN);
  });

  it('zooms in on a wheel up, out on a wheel down, by the same step both ways', () => {
    expect(wheelFactor(-100)).toBeLessThan(1);
    expect(wheelFactor(100)).toBeGreaterThan(1);
    expect(wheelFactor(100) * wheelFactor(-100)).toBeCloseTo(1);
    expect(wheelFactor(3, 1)).toBeCloseTo(wheelFactor(48)); // lines
    expect(wheelFactor(100000)).toBe(wheelFactor(300)); // one event never jumps far
  });

  it('pans by a drag: dragging right shows earlier times', () => {
    const p = panByPixels(w, 500, 100);
    expect(p.start).toBe(800);
    expect(p.end).toBe(1800);
    expect(span(p)).toBe(span(w));
  });

  it('follows now near the right edge', () => {
    const f = followWindow(3600, 10000);
    expect(span(f)).toBe(3600);
    expect(f.end).toBeGreaterThan(10000);
    expect(f.end - 10000).toBeLessThan(3600 * 0.1);
  });

  it('reads the past when the window leaves what was read, never for the future', () => {
    const now = 5000;
    expect(needsFetch({ start: 1000, end: 2000 }, null, now)).toBe(true);
    const read = { since: 500, until: 4990 };
    expect(needsFetch({ start: 1000, end: 2000 }, read, now)).toBe(false);
    expect(needsFetch({ start: 400, end: 1400 }, read, now)).toBe(true);
    // following now: the poll reads the recent edge, the window does not ask every second
    expect(needsFetch({ start: 4000, end: 5100 }, read, now)).toBe(false);
    expect(needsFetch({ start: 4000, end: 5100 }, { since: 500, until: 4900 }, now)).toBe(true);
    const r = fetchRange({ start: 1000, end: 2000 }, now);
    expect(r).toEqual({ since: 500, until: 2500 });
    expect(fetchRange({ start: 4000, end: 5100 }, now).until).toBe(5001);
  });

  it('chooses ticks at least minPx apart on nice local steps', () => {
    expect(tickStep({ start: 0, end: 3600 }, 1200, 90)).toBe(300);
    expect(tickStep({ start: 0, end: 900 }, 1200, 90)).toBe(120); // 60 s would be 80 px apart
    expect(tickStep({ start: 0, end: 21600 }, 1200, 90)).toBe(1800);
    const win = { start: 1_700_000_123, end: 1_700_003_723 };
    const ts = ticks(win, 1200, 90, 0);
    expect(ts.length).toBeGreaterThan(5);
    for (const t of ts) {
      expect(t.t % 300).toBe(0);
      expect(t.t).toBeGreaterThanOrEqual(win.start);
      expect(t.t).toBeLessThanOrEqual(win.end);
    }
    // local time: an hour tick falls on the local hour (UTC+2: offset -120 minutes)
    const hours = ticks({ start: 1_700_000_000, end: 1_700_086_400 }, 600, 90, -120);
    expect(hours.every(t => (t.t + 7200) % t.step === 0)).toBe(true);
  });

  it('names a window', () => {
    expect(spanLabel(900)).toBe('15 min');
    expect(spanLabel(3600)).toBe('1 h');
    expect(spanLabel(3600 * 6 + 1800)).toBe('6 h 30 min');
    expect(spanLabel(45)).toBe('45 s');
    expect(spanLabel(3 * 86400)).toBe('3 d');
  });
});
