import { describe, expect, it } from 'vitest';
import {
  edgePath,
  fitScale,
  flattenRoute,
  IDagLayout,
  IDagNodeInput,
  inversions,
  layoutDag,
  segmentHitsBox
} from '../dashboard/daglayout';

/** a seeded PRNG (mulberry32), so a failing graph can be made again */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` steps, each depending on up to `fan` earlier ones (some far back: long skip edges) */
function randomDag(n: number, seed: number, fan = 3): IDagNodeInput[] {
  const r = rng(seed);
  const out: IDagNodeInput[] = [];
  for (let i = 0; i < n; i++) {
    const deps = new Set<string>();
    const k = i === 0 ? 0 : Math.floor(r() * (fan + 1));
    for (let j = 0; j < k; j++) {
      // mostly near, sometimes far back
      const back = r() < 0.2 ? Math.floor(r() * i) : Math.max(0, i - 1 - Math.floor(r() * 4));
      deps.add(`s${back}`);
    }
    out.push({ id: `s${i}`, deps: [...deps] });
  }
  return out;
}

/** every segment of every drawn edge that passes through a step's box */
function edgeThroughBox(lay: IDagLayout): string[] {
  const hits: string[] = [];
  const boxes = [...lay.nodes.values()];
  for (const e of lay.edges) {
    const line = flattenRoute(e.points, 24);
    for (let i = 1; i < line.length; i++) {
      for (const b of boxes) {
        if (segmentHitsBox(line[i - 1], line[i], b)) {
          hits.push(`${e.from}->${e.to} through ${b.id}`);
        }
      }
    }
  }
  return hits;
}

function checkLayers(input: IDagNodeInput[], lay: IDagLayout): void {
  const layer = new Map([...lay.nodes.values()].map(n => [n.id, n.layer]));
  for (const n of input) {
    const deps = n.deps.filter(d => layer.has(d) && d !== n.id);
    const want = deps.length ? Math.max(...deps.map(d => layer.get(d)! + 1)) : 0;
    expect(layer.get(n.id), n.id).toBe(want); // longest path
  }
  for (const e of lay.edges) {
    expect(layer.get(e.to)!).toBeGreaterThan(layer.get(e.from)!);
  }
}

function noOverlaps(lay: IDagLayout): void {
  for (const L of lay.layers) {
    for (let i = 1; i < L.length; i++) {
      const a = lay.nodes.get(L[i - 1])!;
      const b = lay.nodes.get(L[i])!;
      expect(b.y).toBeGreaterThanOrEqual(a.y + a.h); // in order, not overlapping
      expect(b.x).toBe(a.x);
    }
  }
}

describe('the DAG layout', () => {
  it('puts steps in layers by longest path, left to right', () => {
    const lay = layoutDag([
      { id: 'a', deps: [] },
      { id: 'b', deps: ['a'] },
      { id: 'c', deps: ['a', 'b'] } // the shortcut a->c does not pull c left
    ]);
    expect(lay.layers).toEqual([['a'], ['b'], ['c']]);
    const x = (id: string) => lay.nodes.get(id)!.x;
    expect(x('a')).toBeLessThan(x('b'));
    expect(x('b')).toBeLessThan(x('c'));
    // the skip edge has a dummy in layer 1: two points across that column
    const skip = lay.edges.find(e => e.from === 'a' && e.to === 'c')!;
    expect(skip.points).toHaveLength(4);
    expect(edgeThroughBox(lay)).toEqual([]);
  });

  it('centres a diamond and orders a layer by its upstream steps (no crossing)', () => {
    const d = layoutDag([
      { id: 'a', deps: [] },
      { id: 'b', deps: ['a'] },
      { id: 'c', deps: ['a'] },
      { id: 'd', deps: ['b', 'c'] }
    ]);
    const cy = (id: string) => d.nodes.get(id)!.y + d.nodes.get(id)!.h / 2;
    expect(cy('a')).toBeCloseTo((cy('b') + cy('c')) / 2, 6);
    expect(cy('d')).toBeCloseTo(cy('a'), 6);
    const lay = layoutDag([
      { id: 'r1', deps: [] },
      { id: 'r2', deps: [] },
      { id: 'x', deps: ['r2'] },
      { id: 'y', deps: ['r1'] },
      { id: 'z', deps: [] }
    ]);
    expect(lay.layers).toEqual([
      ['r1', 'r2', 'z'],
      ['y', 'x']
    ]);
    expect(lay.crossings).toBe(0);
  });

  it('barycentre ordering removes the crossings of a crossed bipartite graph', () => {
    const input: IDagNodeInput[] = [
      { id: 'a', deps: [] },
      { id: 'b', deps: [] },
      { id: 'c', deps: [] },
      { id: 'p', deps: ['c'] },
      { id: 'q', deps: ['b'] },
      { id: 'r', deps: ['a'] }
    ];
    const lay = layoutDag(input);
    expect(lay.crossings).toBe(0);
    expect(lay.layers[1]).toEqual(['r', 'q', 'p']);
  });

  it('routes long skip edges around the steps between (a fan of chains)', () => {
    // a chain of 12 and edges from its start to every later step, and from each to the end
    const input: IDagNodeInput[] = [];
    for (let i = 0; i < 12; i++) {
      input.push({ id: `c${i}`, deps: i ? [`c${i - 1}`] : [] });
    }
    input.push({ id: 'end', deps: input.map(n => n.id) });
    input.push({ id: 'late', deps: ['c0', 'end'] });
    const lay = layoutDag(input);
    checkLayers(input, lay);
    noOverlaps(lay);
    expect(edgeThroughBox(lay)).toEqual([]);
    const long = lay.edges.find(e => e.from === 'c0' && e.to === 'late')!;
    expect(long.points.length).toBe(2 + 2 * 12); // a dummy in every column between
  });

  it('never draws an edge through a box, over many generated DAGs', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const input = randomDag(5 + (seed % 40), seed, 1 + (seed % 4));
      const lay = layoutDag(input);
      checkLayers(input, lay);
      noOverlaps(lay);
      expect(edgeThroughBox(lay), `seed ${seed}`).toEqual([]);
    }
  });

  it('lays out a 200-step DAG quickly, with no edge through a box', () => {
    const input = randomDag(200, 200, 3);
    const t0 = performance.now();
    const lay = layoutDag(input);
    const ms = performance.now() - t0;
    expect(lay.nodes.size).toBe(200);
    checkLayers(input, lay);
    noOverlaps(lay);
    expect(edgeThroughBox(lay)).toEqual([]);
    expect(ms).toBeLessThan(2000);
  });

  it('is deterministic: the same graph is drawn the same', () => {
    const input = randomDag(80, 7);
    const a = layoutDag(input);
    const b = layoutDag(input.map(n => ({ ...n, deps: [...n.deps] })));
    expect(JSON.stringify([...b.nodes])).toEqual(JSON.stringify([...a.nodes]));
    expect(JSON.stringify(b.edges)).toEqual(JSON.stringify(a.edges));
  });

  it('survives unknown dependencies, self-loops and cycles', () => {
    const lay = layoutDag([
      { id: 'a', deps: ['ghost', 'a'] },
      { id: 'b', deps: ['c'] },
      { id: 'c', deps: ['b'] },
      { id: 'a', deps: [] } // a repeated id: the first wins
    ]);
    expect(new Set(lay.nodes.keys())).toEqual(new Set(['a', 'b', 'c']));
    expect(lay.edges.map(e => `${e.from}>${e.to}`).sort()).toEqual(['b>c', 'c>b']);
    expect(lay.edges.filter(e => e.reversed)).toHaveLength(1);
    expect(edgeThroughBox(lay)).toEqual([]);
    const empty = layoutDag([]);
    expect(empty.layers).toEqual([]);
    expect(empty.edges).toEqual([]);
  });
});

describe('the drawing helpers', () => {
  it('a path: lines across columns, cubics between', () => {
    const d = edgePath([
      { x: 0, y: 0 },
      { x: 10, y: 20 },
      { x: 30, y: 20 },
      { x: 40, y: 5 }
    ]);
    expect(d).toBe('M0,0 C5,0 5,20 10,20 L30,20 C35,20 35,5 40,5');
    expect(edgePath([{ x: 0, y: 0 }, { x: 10, y: 0 }], 3)).toBe('M0,0 L7,0');
    // the flattened cubic stays between its ends' x
    const line = flattenRoute([{ x: 0, y: 0 }, { x: 10, y: 50 }]);
    expect(line.every(p => p.x >= 0 && p.x <= 10)).toBe(true);
  });

  it('segment and box: crossing, touching, missing', () => {
    const box = { x: 10, y: 10, w: 10, h: 10 };
    expect(segmentHitsBox({ x: 0, y: 15 }, { x: 30, y: 15 }, box)).toBe(true);
    expect(segmentHitsBox({ x: 0, y: 10 }, { x: 30, y: 10 }, box)).toBe(false); // on the border
    expect(segmentHitsBox({ x: 20, y: 15 }, { x: 30, y: 15 }, box)).toBe(false); // leaves its side
    expect(segmentHitsBox({ x: 0, y: 0 }, { x: 9, y: 30 }, box)).toBe(false);
    expect(segmentHitsBox({ x: 12, y: 12 }, { x: 13, y: 13 }, box)).toBe(true); // inside
  });

  it('counts crossings as inversions', () => {
    expect(inversions([[0, 1], [1, 0]])).toBe(1);
    expect(inversions([[0, 0], [1, 1], [2, 2]])).toBe(0);
    expect(inversions([[0, 2], [1, 1], [2, 0]])).toBe(3);
  });

  it('fits the width and height, scrolling only below a readable size', () => {
    expect(fitScale(1000, 400, 500, 800)).toBe(0.5);
    expect(fitScale(400, 200, 1000, 800)).toBe(1); // never larger than life
    expect(fitScale(1000, 4000, 800, 600, 0.5)).toBe(0.8); // fit the width, scroll down
    expect(fitScale(4000, 4000, 800, 600, 0.5)).toBe(0.5); // both ways
  });
});
