// The dashboard's workflow DAG, laid out (pure, no DOM): the classic Sugiyama scheme.
// 1. Cycles (a workflow never has one, but a layout must not loop) are broken by reversing the
//    back edges a depth-first search in input order finds.
// 2. Layers by longest path: a step sits one layer right of its latest upstream step.
// 3. An edge that skips layers gets a dummy point in each layer it crosses.
// 4. Order within layers by barycentres, sweeping down and up; the order with the fewest
//    crossings wins (ties: the earliest), so a graph is always drawn the same.
// 5. Vertical places: each item as near the mean of its neighbours as the order and the gaps
//    allow (isotonic regression, pool-adjacent-violators), a few sweeps down and up.
// 6. Routes: an edge leaves its step's right side, crosses each column it skips horizontally
//    through its dummy's slot (a gap between that column's boxes) and reaches its target's
//    left side; between columns it is a cubic with horizontal tangents, which stays in the gap
//    between the columns. So no edge ever passes through a box.

export interface IDagNodeInput {
  id: string;
  /** upstream ids (unknown ids and self-references are ignored) */
  deps: readonly string[];
}

export interface IPoint {
  x: number;
  y: number;
}

export interface IBox {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface IPlacedNode extends IBox {
  id: string;
  layer: number;
  /** index among the real steps of its layer, top to bottom */
  order: number;
}

export interface IRoutedEdge {
  from: string;
  to: string;
  /** the route: from's right side, then two points per column skipped, then to's left side
   * (for a reversed edge of a cycle, the route runs the other way) */
  points: IPoint[];
  /** an edge of a cycle, drawn against the flow */
  reversed: boolean;
}

export interface IDagLayout {
  nodes: Map<string, IPlacedNode>;
  /** the steps of each layer, top to bottom */
  layers: string[][];
  edges: IRoutedEdge[];
  width: number;
  height: number;
  /** edge crossings left between adjacent layers (dummies included) */
  crossings: number;
}

export interface IDagLayoutOptions {
  nodeW: number;
  nodeH: number;
  /** between columns */
  gapX: number;
  /** between items of a column */
  gapY: number;
  pad: number;
  /** the slot an edge takes as it crosses a column */
  dummyH: number;
  /** barycentre sweeps (each: down then up) */
  sweeps: number;
}

export const DEFAULT_DAG_OPTIONS: IDagLayoutOptions = {
  nodeW: 170,
  nodeH: 52,
  gapX: 56,
  gapY: 14,
  pad: 10,
  dummyH: 4,
  sweeps: 6
};

interface IItem {
  /** a step's index, or -1 for a dummy */
  node: number;
  h: number;
  /** neighbours in the layer before and after (item indices) */
  up: number[];
  down: number[];
  layer: number;
  pos: number;
  y: number; // centre
}

/** Lay out `input` (steps in file order) left to right. */
export function layoutDag(input: readonly IDagNodeInput[], options: Partial<IDagLayoutOptions> = {}): IDagLayout {
  const o = { ...DEFAULT_DAG_OPTIONS, ...options };
  const ids: string[] = [];
  const index = new Map<string, number>();
  for (const n of input) {
    if (!index.has(n.id)) {
      index.set(n.id, ids.length);
      ids.push(n.id);
    }
  }
  const n = ids.length;
  const deps: number[][] = ids.map(() => []);
  const seenDeps = ids.map(() => new Set<number>());
  for (const node of input) {
    const i = index.get(node.id)!;
    for (const d of node.deps) {
      const j = index.get(d);
      if (j !== undefined && j !== i && !seenDeps[i].has(j)) {
        seenDeps[i].add(j);
        deps[i].push(j);
      }
    }
  }
  // edges as (upstream, downstream), in file order of the downstream step then of its depends
  const edges: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) {
    for (const d of deps[i]) {
      edges.push([d, i]);
    }
  }
  const reversed = backEdges(n, edges);
  const flow: Array<[number, number]> = edges.map(([a, b], k) => (reversed[k] ? [b, a] : [a, b]));

  // longest-path layers over the flow (a DAG now)
  const ups: number[][] = ids.map(() => []);
  const downs: number[][] = ids.map(() => []);
  for (const [a, b] of flow) {
    ups[b].push(a);
    downs[a].push(b);
  }
  const layer = new Array<number>(n).fill(0);
  const waiting = ups.map(u => u.length);
  const queue: number[] = [];
  for (let i = 0; i < n; i++) {
    if (!waiting[i]) {
      queue.push(i);
    }
  }
  for (let q = 0; q < queue.length; q++) {
    const i = queue[q];
    for (const c of downs[i]) {
      layer[c] = Math.max(layer[c], layer[i] + 1);
      if (--waiting[c] === 0) {
        queue.push(c);
      }
    }
  }
  const layerCount = n ? Math.max(...layer) + 1 : 0;

  // items: the steps, then a dummy per layer an edge skips
  const items: IItem[] = ids.map((_, i) => ({ node: i, h: o.nodeH, up: [], down: [], layer: layer[i], pos: 0, y: 0 }));
  const chains: number[][] = []; // per edge: the items it passes, from its upstream end
  for (const [a, b] of flow) {
    const chain = [a];
    for (let l = layer[a] + 1; l < layer[b]; l++) {
      items.push({ node: -1, h: o.dummyH, up: [], down: [], layer: l, pos: 0, y: 0 });
      chain.push(items.length - 1);
    }
    chain.push(b);
    for (let k = 0; k + 1 < chain.length; k++) {
      items[chain[k]].down.push(chain[k + 1]);
      items[chain[k + 1]].up.push(chain[k]);
    }
    chains.push(chain);
  }

  // initial order: layer 0 in file order, each next layer by the mean place of its upstream
  // items (then file order / creation order)
  const layers: number[][] = Array.from({ length: layerCount }, () => []);
  for (let k = 0; k < items.length; k++) {
    layers[items[k].layer].push(k);
  }
  setPositions(items, layers);
  for (let l = 1; l < layerCount; l++) {
    sortByBarycentre(items, layers[l], 'up');
  }
  let best = layers.map(L => [...L]);
  let bestCrossings = totalCrossings(items, layers);
  for (let s = 0; s < o.sweeps && bestCrossings > 0; s++) {
    for (let l = 1; l < layerCount; l++) {
      sortByBarycentre(items, layers[l], 'up');
    }
    for (let l = layerCount - 2; l >= 0; l--) {
      sortByBarycentre(items, layers[l], 'down');
    }
    const c = totalCrossings(items, layers);
    if (c < bestCrossings) {
      bestCrossings = c;
      best = layers.map(L => [...L]);
    }
  }
  for (let l = 0; l < layerCount; l++) {
    layers[l] = best[l];
  }
  setPositions(items, layers);

  // vertical places
  for (const L of layers) {
    let y = 0;
    for (const k of L) {
      items[k].y = y + items[k].h / 2;
      y += items[k].h + o.gapY;
    }
  }
  const tallest = Math.max(0, ...layers.map(L => columnHeight(items, L, o.gapY)));
  for (const L of layers) {
    const shift = (tallest - columnHeight(items, L, o.gapY)) / 2;
    for (const k of L) {
      items[k].y += shift;
    }
  }
  for (let s = 0; s < 8; s++) {
    for (let l = 1; l < layerCount; l++) {
      place(items, layers[l], 'up', o.gapY);
    }
    for (let l = layerCount - 2; l >= 0; l--) {
      place(items, layers[l], 'down', o.gapY);
    }
  }
  // both directions at last, so a step sits between what feeds it and what it feeds
  for (let l = 0; l < layerCount; l++) {
    place(items, layers[l], 'both', o.gapY);
  }
  let top = Infinity;
  let bottom = -Infinity;
  for (const it of items) {
    top = Math.min(top, it.y - it.h / 2);
    bottom = Math.max(bottom, it.y + it.h / 2);
  }
  if (!items.length) {
    top = bottom = 0;
  }
  const dy = o.pad - top;
  for (const it of items) {
    it.y = it.y + dy;
  }

  const colX = (l: number) => o.pad + l * (o.nodeW + o.gapX);
  const nodes = new Map<string, IPlacedNode>();
  const named: string[][] = layers.map(() => []);
  for (let l = 0; l < layerCount; l++) {
    for (const k of layers[l]) {
      const it = items[k];
      if (it.node >= 0) {
        const id = ids[it.node];
        nodes.set(id, { id, layer: l, order: named[l].length, x: colX(l), y: it.y - o.nodeH / 2, w: o.nodeW, h: o.nodeH });
        named[l].push(id);
      }
    }
  }
  const routed: IRoutedEdge[] = edges.map(([a, b], e) => {
    const chain = chains[e];
    const points: IPoint[] = [];
    const first = items[chain[0]];
    points.push({ x: colX(first.layer) + o.nodeW, y: first.y });
    for (let k = 1; k + 1 < chain.length; k++) {
      const d = items[chain[k]];
      points.push({ x: colX(d.layer), y: d.y }, { x: colX(d.layer) + o.nodeW, y: d.y });
    }
    const last = items[chain[chain.length - 1]];
    points.push({ x: colX(last.layer), y: last.y });
    return { from: ids[a], to: ids[b], points: reversed[e] ? points.reverse() : points, reversed: reversed[e] };
  });
  const width = layerCount ? 2 * o.pad + layerCount * o.nodeW + (layerCount - 1) * o.gapX : 2 * o.pad;
  return { nodes, layers: named, edges: routed, width, height: bottom - top + 2 * o.pad, crossings: bestCrossings };
}

/** the edges a depth-first search in input order finds going back (they close a cycle) */
function backEdges(n: number, edges: Array<[number, number]>): boolean[] {
  const out: Array<Array<[number, number]>> = Array.from({ length: n }, () => []);
  edges.forEach(([a, b], k) => out[a].push([b, k]));
  const colour = new Array<number>(n).fill(0); // 0 new, 1 on the stack, 2 done
  const back = new Array<boolean>(edges.length).fill(false);
  for (let root = 0; root < n; root++) {
    if (colour[root]) {
      continue;
    }
    // iterative, so a 10,000-step chain does not overflow the stack
    const stack: Array<[number, number]> = [[root, 0]];
    colour[root] = 1;
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [v, i] = top;
      if (i >= out[v].length) {
        colour[v] = 2;
        stack.pop();
        continue;
      }
      top[1]++;
      const [w, k] = out[v][i];
      if (colour[w] === 1) {
        back[k] = true;
      } else if (colour[w] === 0) {
        colour[w] = 1;
        stack.push([w, 0]);
      }
    }
  }
  return back;
}

function setPositions(items: IItem[], layers: number[][]): void {
  for (const L of layers) {
    L.forEach((k, i) => (items[k].pos = i));
  }
}

/** Order `layer` by the mean place of each item's neighbours on `side`; an item without any
 * keeps its place (ties keep the current order). */
function sortByBarycentre(items: IItem[], layer: number[], side: 'up' | 'down'): void {
  const key = new Map<number, number>();
  for (const k of layer) {
    const nb = items[k][side];
    key.set(k, nb.length ? nb.reduce((s, j) => s + items[j].pos, 0) / nb.length : items[k].pos);
  }
  layer.sort((a, b) => key.get(a)! - key.get(b)! || items[a].pos - items[b].pos);
  layer.forEach((k, i) => (items[k].pos = i));
}

/** crossings between every two adjacent layers, at the items' current places */
function totalCrossings(items: IItem[], layers: number[][]): number {
  let total = 0;
  for (let l = 0; l + 1 < layers.length; l++) {
    const pairs: Array<[number, number]> = [];
    for (const k of layers[l]) {
      for (const j of items[k].down) {
        pairs.push([items[k].pos, items[j].pos]);
      }
    }
    total += inversions(pairs);
  }
  return total;
}

/** pairs (a, b) with a1 < a2 and b1 > b2: sorted by a, the inversions of b (merge sort) */
export function inversions(pairs: Array<[number, number]>): number {
  const sorted = [...pairs].sort((p, q) => p[0] - q[0] || p[1] - q[1]);
  const b = sorted.map(p => p[1]);
  const tmp = new Array<number>(b.length);
  const count = (lo: number, hi: number): number => {
    if (hi - lo < 2) {
      return 0;
    }
    const mid = (lo + hi) >> 1;
    let c = count(lo, mid) + count(mid, hi);
    let i = lo;
    let j = mid;
    let k = lo;
    while (i < mid && j < hi) {
      if (b[i] <= b[j]) {
        tmp[k++] = b[i++];
      } else {
        tmp[k++] = b[j++];
        c += mid - i;
      }
    }
    while (i < mid) {
      tmp[k++] = b[i++];
    }
    while (j < hi) {
      tmp[k++] = b[j++];
    }
    for (let t = lo; t < hi; t++) {
      b[t] = tmp[t];
    }
    return c;
  };
  return count(0, b.length);
}

function columnHeight(items: IItem[], layer: number[], gap: number): number {
  return layer.reduce((s, k) => s + items[k].h, 0) + Math.max(0, layer.length - 1) * gap;
}

/** Move the items of `layer` (in order) as near the mean centre of their neighbours as the
 * order and the gaps allow: least squares under "each at least a gap below the one above",
 * solved exactly by pool-adjacent-violators. */
function place(items: IItem[], layer: number[], side: 'up' | 'down' | 'both', gap: number): void {
  const m = layer.length;
  if (!m) {
    return;
  }
  // offsets: the least distance from the first item's centre to each one's
  const offset = new Array<number>(m).fill(0);
  for (let i = 1; i < m; i++) {
    offset[i] = offset[i - 1] + items[layer[i - 1]].h / 2 + gap + items[layer[i]].h / 2;
  }
  const want = layer.map((k, i) => {
    const it = items[k];
    const nb = side === 'both' ? [...it.up, ...it.down] : it[side];
    const target = nb.length ? nb.reduce((s, j) => s + items[j].y, 0) / nb.length : it.y;
    return target - offset[i];
  });
  // isotonic (non-decreasing) fit of `want`
  const vals: number[] = [];
  const sizes: number[] = [];
  for (const w of want) {
    vals.push(w);
    sizes.push(1);
    while (vals.length > 1 && vals[vals.length - 2] > vals[vals.length - 1]) {
      const v2 = vals.pop()!;
      const s2 = sizes.pop()!;
      const v1 = vals.pop()!;
      const s1 = sizes.pop()!;
      vals.push((v1 * s1 + v2 * s2) / (s1 + s2));
      sizes.push(s1 + s2);
    }
  }
  let i = 0;
  for (let b = 0; b < vals.length; b++) {
    for (let s = 0; s < sizes[b]; s++, i++) {
      items[layer[i]].y = vals[b] + offset[i];
    }
  }
}

// ------------------------------------------------------------------------------ drawing (pure)

/** The SVG path of a route: lines across the columns, cubics with horizontal tangents
 * between them (so a curve stays between its two columns). */
export function edgePath(points: readonly IPoint[], endInset = 0): string {
  if (points.length < 2) {
    return '';
  }
  const pts = points.map(p => ({ ...p }));
  const last = pts[pts.length - 1];
  const prev = pts[pts.length - 2];
  if (endInset) {
    last.x += last.x >= prev.x ? -endInset : endInset; // room for the arrow head
  }
  const f = (v: number) => String(Math.round(v * 10) / 10);
  let d = `M${f(pts[0].x)},${f(pts[0].y)}`;
  for (let i = 1; i < pts.length; i++) {
    const a = pts[i - 1];
    const b = pts[i];
    if (a.y === b.y) {
      d += ` L${f(b.x)},${f(b.y)}`;
    } else {
      const mx = (a.x + b.x) / 2;
      d += ` C${f(mx)},${f(a.y)} ${f(mx)},${f(b.y)} ${f(b.x)},${f(b.y)}`;
    }
  }
  return d;
}

/** The route as the path draws it, as a polyline (each cubic in `steps` pieces). */
export function flattenRoute(points: readonly IPoint[], steps = 16): IPoint[] {
  if (!points.length) {
    return [];
  }
  const out: IPoint[] = [points[0]];
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1];
    const b = points[i];
    if (a.y === b.y) {
      out.push(b);
      continue;
    }
    const mx = (a.x + b.x) / 2;
    for (let s = 1; s <= steps; s++) {
      const t = s / steps;
      const u = 1 - t;
      // control points (mx, a.y), (mx, b.y)
      const x = u * u * u * a.x + 3 * u * u * t * mx + 3 * u * t * t * mx + t * t * t * b.x;
      const y = u * u * u * a.y + 3 * u * u * t * a.y + 3 * u * t * t * b.y + t * t * t * b.y;
      out.push({ x, y });
    }
  }
  return out;
}

/** Does the segment a-b pass through the inside of `box` (shrunk by `eps` on each side, so
 * touching its border does not count)? Liang-Barsky clipping. */
export function segmentHitsBox(a: IPoint, b: IPoint, box: IBox, eps = 0.5): boolean {
  const x0 = box.x + eps;
  const x1 = box.x + box.w - eps;
  const y0 = box.y + eps;
  const y1 = box.y + box.h - eps;
  if (x0 >= x1 || y0 >= y1) {
    return false;
  }
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  let t0 = 0;
  let t1 = 1;
  const clip = (p: number, q: number): boolean => {
    if (p === 0) {
      return q > 0; // parallel: inside this slab or not
    }
    const r = q / p;
    if (p < 0) {
      if (r > t1) {
        return false;
      }
      t0 = Math.max(t0, r);
    } else {
      if (r < t0) {
        return false;
      }
      t1 = Math.min(t1, r);
    }
    return true;
  };
  return clip(-dx, a.x - x0) && clip(dx, x1 - a.x) && clip(-dy, a.y - y0) && clip(dy, y1 - a.y) && t0 < t1;
}

/** How much to scale a `w`×`h` drawing to fit `availW`×`availH`: the whole of it when that
 * keeps it readable (at least `minScale`), else the width when that does (it scrolls down),
 * else `minScale` (it scrolls both ways); never larger than `maxScale`. */
export function fitScale(w: number, h: number, availW: number, availH: number, minScale = 0.5, maxScale = 1): number {
  if (w <= 0 || h <= 0 || availW <= 0) {
    return maxScale;
  }
  const whole = Math.min(availW / w, availH > 0 ? availH / h : Infinity, maxScale);
  if (whole >= minScale) {
    return whole;
  }
  return Math.max(minScale, Math.min(availW / w, maxScale));
}
