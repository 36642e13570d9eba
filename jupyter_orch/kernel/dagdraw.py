"""Drawing a workflow run, pure: its steps laid out left to right by longest path, ordered
to cut crossings and with every edge routed around the boxes it skips (:func:`layout`, the
Sugiyama scheme with dummy points) and rendered as HTML, an SVG of boxes coloured by state with a summary
line and the failed steps' errors (:func:`render`); more than :data:`COMPACT_ABOVE` steps
are drawn as counts (:func:`compact`). The live widget is :mod:`.dag`."""

from __future__ import annotations

import bisect
import functools
import html
import itertools
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

COMPACT_ABOVE = 200  # steps; more are summarised as counts per state and per base step
DRAW_EVERY = 0.15  # seconds: bursts of events are coalesced into one redraw
POLL_SLICE = 2.0  # seconds per long poll when the events stream cannot be followed
TERMINAL = ("succeeded", "failed", "upstream_failed", "cancelled")
STATE_COLOURS = {  # mid tones: readable on JupyterLab's light and dark themes
    "pending": "#8b949e",
    "scheduled": "#d29922",
    "running": "#2f81f7",
    "succeeded": "#2da44e",
    "failed": "#e5534b",
    "upstream_failed": "#db6d28",
    "cancelled": "#6e7781",
}
UNKNOWN_COLOUR = "#8b949e"
NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 168.0, 42.0, 44.0, 12.0, 6.0
DUMMY_H = 4.0  # the slot an edge takes where it crosses a layer between its ends
SWEEPS = 6  # barycentre sweeps (down, then up) to cut crossings
TEXT = "fill:var(--jp-ui-font-color1,#1f2328)"
TEXT2 = "fill:var(--jp-ui-font-color2,#59636e)"
STEP_FIELDS = ("state", "reason", "error", "error_kind", "attempt", "started_at", "ended_at", "duration")


# ---------------------------------------------------------------------------- layout (pure)
@dataclass(frozen=True)
class Box:
    name: str
    layer: int
    row: int
    x: float
    y: float


@dataclass
class Layout:
    boxes: dict[str, Box] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)  # (upstream, downstream)
    # each edge's route: from the upstream box's right side, two points across each layer it
    # skips (through a gap between that layer's boxes), to the downstream box's left side
    routes: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)
    width: float = 0.0
    height: float = 0.0

    def layers(self) -> list[list[str]]:
        out: list[list[str]] = [
            [] for _ in range(1 + max((b.layer for b in self.boxes.values()), default=-1))
        ]
        for box in sorted(self.boxes.values(), key=lambda b: (b.layer, b.row)):
            out[box.layer].append(box.name)
        return out


def layout(steps: Sequence[Mapping[str, Any]]) -> Layout:
    """Place each step: its layer (column, left to right) is the longest path to it from a
    root; an edge that skips layers gets a dummy point in each layer between, and the order
    within a layer follows barycentres (sweeps down and up, the order with the fewest
    crossings kept), so the drawing is the same for a given graph whatever the states. Each
    item then sits as near the mean of its neighbours as the order and the gaps allow, and
    each edge is routed through its dummies' slots: it never passes through a box."""
    names = list(dict.fromkeys(str(s["name"]) for s in steps))
    index = {n: i for i, n in enumerate(names)}
    deps: dict[str, list[str]] = {n: [] for n in names}
    for s in steps:
        name = str(s["name"])
        deps[name] = [d for d in dict.fromkeys(s.get("depends") or []) if d in index and d != name]
    edges = [(d, n) for n in names for d in deps[n]]
    back = _back_edges(names, edges)
    flow = [(b, a) if rev else (a, b) for (a, b), rev in zip(edges, back, strict=True)]
    ups: dict[str, list[str]] = {n: [] for n in names}
    downs: dict[str, list[str]] = {n: [] for n in names}
    for a, b in flow:
        ups[b].append(a)
        downs[a].append(b)
    depth = dict.fromkeys(names, 0)
    waiting = {n: len(ups[n]) for n in names}
    queue = deque(n for n in names if not waiting[n])
    while queue:  # longest path by topological order
        n = queue.popleft()
        for c in downs[n]:
            depth[c] = max(depth[c], depth[n] + 1)
            waiting[c] -= 1
            if not waiting[c]:
                queue.append(c)
    count = 1 + max(depth.values(), default=-1)
    items = [_Item(n, NODE_H, depth[n]) for n in names]
    item_of = {n: i for i, n in enumerate(names)}
    chains: list[list[int]] = []
    for a, b in flow:
        chain = [item_of[a]]
        for k in range(depth[a] + 1, depth[b]):
            items.append(_Item(None, DUMMY_H, k))
            chain.append(len(items) - 1)
        chain.append(item_of[b])
        for u, v in itertools.pairwise(chain):
            items[u].down.append(v)
            items[v].up.append(u)
        chains.append(chain)
    layers: list[list[int]] = [[] for _ in range(count)]
    for k, it in enumerate(items):
        layers[it.layer].append(k)
    _positions(items, layers)
    for layer in layers[1:]:
        _by_barycentre(items, layer, "up")
    best = [list(layer) for layer in layers]
    fewest = _crossings(items, layers)
    for _ in range(SWEEPS):
        if not fewest:
            break
        for layer in layers[1:]:
            _by_barycentre(items, layer, "up")
        for layer in reversed(layers[:-1]):
            _by_barycentre(items, layer, "down")
        crossings = _crossings(items, layers)
        if crossings < fewest:
            fewest, best = crossings, [list(layer) for layer in layers]
    layers = best
    _positions(items, layers)
    tallest = max((_column(items, layer) for layer in layers), default=0.0)
    for layer in layers:
        y = (tallest - _column(items, layer)) / 2
        for k in layer:
            items[k].y = y + items[k].h / 2
            y += items[k].h + GAP_Y
    for _ in range(8):
        for layer in layers[1:]:
            _place(items, layer, "up")
        for layer in reversed(layers[:-1]):
            _place(items, layer, "down")
    for layer in layers:
        _place(items, layer, "both")
    top = min((it.y - it.h / 2 for it in items), default=0.0)
    bottom = max((it.y + it.h / 2 for it in items), default=0.0)
    for it in items:
        it.y += PAD - top

    def column_x(k: int) -> float:
        return PAD + k * (NODE_W + GAP_X)

    out = Layout()
    for k, layer in enumerate(layers):
        row = 0
        for i in layer:
            it = items[i]
            if it.name is not None:
                out.boxes[it.name] = Box(it.name, k, row, column_x(k), it.y - NODE_H / 2)
                row += 1
    out.edges = edges
    for (a, b), chain, rev in zip(edges, chains, back, strict=True):
        first, last = items[chain[0]], items[chain[-1]]
        points = [(column_x(first.layer) + NODE_W, first.y)]
        for i in chain[1:-1]:
            d = items[i]
            points += [(column_x(d.layer), d.y), (column_x(d.layer) + NODE_W, d.y)]
        points.append((column_x(last.layer), last.y))
        out.routes[(a, b)] = points[::-1] if rev else points
    out.width = 2 * PAD + count * NODE_W + max(0, count - 1) * GAP_X
    out.height = 2 * PAD + bottom - top
    return out


@functools.lru_cache(maxsize=16)
def _layout_of(shape: tuple[tuple[str, tuple[str, ...]], ...]) -> Layout:
    """The layout of a graph's shape (steps and their depends): a live view redraws the same
    graph with new states many times."""
    return layout([{"name": name, "depends": list(depends)} for name, depends in shape])


@dataclass
class _Item:
    """A step (``name``) or a dummy (``None``: where an edge crosses a layer) in a layer."""

    name: str | None
    h: float
    layer: int
    up: list[int] = field(default_factory=list)
    down: list[int] = field(default_factory=list)
    pos: int = 0
    y: float = 0.0  # centre


def _back_edges(names: list[str], edges: list[tuple[str, str]]) -> list[bool]:
    """The edges a depth-first search in file order finds going back (they close a cycle)."""
    out: dict[str, list[tuple[str, int]]] = {n: [] for n in names}
    for k, (a, b) in enumerate(edges):
        out[a].append((b, k))
    colour = dict.fromkeys(names, 0)  # 0 new, 1 on the stack, 2 done
    back = [False] * len(edges)
    for root in names:
        if colour[root]:
            continue
        colour[root] = 1
        stack = [(root, iter(out[root]))]
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node] = 2
                stack.pop()
                continue
            child, k = nxt
            if colour[child] == 1:
                back[k] = True
            elif colour[child] == 0:
                colour[child] = 1
                stack.append((child, iter(out[child])))
    return back


def _positions(items: list[_Item], layers: list[list[int]]) -> None:
    for layer in layers:
        for i, k in enumerate(layer):
            items[k].pos = i


def _by_barycentre(items: list[_Item], layer: list[int], side: str) -> None:
    """Order ``layer`` by the mean place of each item's neighbours on ``side`` (one without
    any keeps its place; ties keep the current order)."""

    def key(k: int) -> tuple[float, int]:
        near = items[k].up if side == "up" else items[k].down
        at = sum(items[j].pos for j in near) / len(near) if near else float(items[k].pos)
        return (at, items[k].pos)

    layer.sort(key=key)
    for i, k in enumerate(layer):
        items[k].pos = i


def _crossings(items: list[_Item], layers: list[list[int]]) -> int:
    total = 0
    for layer in layers[:-1]:
        pairs = sorted((items[k].pos, items[j].pos) for k in layer for j in items[k].down)
        seen: list[int] = []  # the lower ends so far, sorted: those below a new one cross it
        for _, b in pairs:
            total += len(seen) - bisect.bisect_right(seen, b)
            bisect.insort(seen, b)
    return total


def _column(items: list[_Item], layer: list[int]) -> float:
    return sum(items[k].h for k in layer) + max(0, len(layer) - 1) * GAP_Y


def _place(items: list[_Item], layer: list[int], side: str) -> None:
    """Move the items of ``layer`` (in order) as near the mean centre of their neighbours as
    the order and the gaps allow: least squares under "each a gap below the one above",
    solved exactly by pool-adjacent-violators."""
    if not layer:
        return
    offset = [0.0]
    for u, v in itertools.pairwise(layer):
        offset.append(offset[-1] + items[u].h / 2 + GAP_Y + items[v].h / 2)
    blocks: list[list[float]] = []  # [mean, size]
    for i, k in enumerate(layer):
        it = items[k]
        near = it.up + it.down if side == "both" else it.up if side == "up" else it.down
        target = sum(items[j].y for j in near) / len(near) if near else it.y
        blocks.append([target - offset[i], 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, s2 = blocks.pop()
            v1, s1 = blocks.pop()
            blocks.append([(v1 * s1 + v2 * s2) / (s1 + s2), s1 + s2])
    i = 0
    for value, size in blocks:
        for _ in range(int(size)):
            items[layer[i]].y = value + offset[i]
            i += 1


# ---------------------------------------------------------------------------- drawing (pure)
def _rgba(colour: str, alpha: float) -> str:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _seconds(value: float | None) -> str:
    if value is None or value < 0:
        return ""
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{int(value // 60)} min {int(value % 60):02d} s"
    return f"{int(value // 3600)} h {int(value % 3600 // 60):02d} min"


def _took(item: Mapping[str, Any], now: float, start: str = "started_at") -> float | None:
    if item.get("duration") is not None:
        return float(item["duration"])
    began = item.get(start)
    return None if began is None or item.get("ended_at") else now - float(began)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def edge_path(points: Sequence[tuple[float, float]], inset: float = 0.0) -> str:
    """The SVG path of a route: straight across the layers it skips, a cubic with horizontal
    tangents between two layers (so it stays in the gap between them); the last ``inset``
    pixels are left for the arrow head."""
    if len(points) < 2:
        return ""
    pts = list(points)
    (xa, _), (xb, yb) = pts[-2], pts[-1]
    pts[-1] = (xb - inset if xb >= xa else xb + inset, yb)
    out = [f"M{pts[0][0]:.1f},{pts[0][1]:.1f}"]
    for (x1, y1), (x2, y2) in itertools.pairwise(pts):
        if y1 == y2:
            out.append(f"L{x2:.1f},{y2:.1f}")
        else:
            mid = (x1 + x2) / 2
            out.append(f"C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} {x2:.1f},{y2:.1f}")
    return " ".join(out)


def flatten(points: Sequence[tuple[float, float]], pieces: int = 16) -> list[tuple[float, float]]:
    """A route as :func:`edge_path` draws it, as a polyline (each cubic in ``pieces``)."""
    out = list(points[:1])
    for (x1, y1), (x2, y2) in itertools.pairwise(points):
        if y1 == y2:
            out.append((x2, y2))
            continue
        mid = (x1 + x2) / 2
        for i in range(1, pieces + 1):
            t = i / pieces
            u = 1 - t
            x = u**3 * x1 + 3 * u * u * t * mid + 3 * u * t * t * mid + t**3 * x2
            y = u**3 * y1 + 3 * u * u * t * y1 + 3 * u * t * t * y2 + t**3 * y2
            out.append((x, y))
    return out


def svg(steps: Sequence[Mapping[str, Any]], now: float | None = None) -> str:
    """The steps as an SVG graph: rounded boxes coloured by state (dashed and marked
    ``cached`` when the cache answered), lines from each step to those that depend on it."""
    now = time.time() if now is None else now
    placed = _layout_of(tuple((str(s["name"]), tuple(s.get("depends") or ())) for s in steps))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="orch-dag" width="{placed.width:.0f}" '
        f'height="{placed.height:.0f}" viewBox="0 0 {placed.width:.0f} {placed.height:.0f}" '
        'style="font-family:var(--jp-ui-font-family,sans-serif)">'
    ]
    for up, down in placed.edges:
        points = placed.routes[(up, down)]
        (xa, _), (x2, y2) = points[-2], points[-1]
        tip = 1.0 if x2 >= xa else -1.0  # a cycle's edge (never in a valid workflow) runs back
        parts.append(
            f'<path class="orch-edge" data-from="{html.escape(up)}" data-to="{html.escape(down)}" '
            f'd="{edge_path(points, 5.0)}" '
            'style="fill:none;stroke:var(--jp-ui-font-color3,#8c959f);stroke-width:1.2"/>'
            f'<polygon points="{x2:.1f},{y2:.1f} {x2 - 6 * tip:.1f},{y2 - 3.5:.1f} {x2 - 6 * tip:.1f},{y2 + 3.5:.1f}" '
            'style="fill:var(--jp-ui-font-color3,#8c959f)"/>'
        )
    for s in steps:
        box = placed.boxes.get(str(s["name"]))
        if box is not None:
            parts.append(_node(s, box, now))
    parts.append("</svg>")
    return "".join(parts)


def _node(step: Mapping[str, Any], box: Box, now: float) -> str:
    name, state = str(step["name"]), str(step.get("state") or "unknown")
    colour = STATE_COLOURS.get(state, UNKNOWN_COLOUR)
    cached = bool(step.get("cached"))
    dash = ";stroke-dasharray:5 3" if cached else ""
    marker = ' data-cached="true"' if cached else ""
    width = 2.5 if state == "running" else 1.5
    detail = [state.replace("_", " ")]
    if cached:
        detail.append("cached")
    elif took := _seconds(_took(step, now)):
        detail.append(took)
    if int(step.get("attempt") or 1) > 1:
        detail.append(f"attempt {step['attempt']}")
    tip = [f"{name}: {state}"] + [str(step[k]) for k in ("reason", "error") if step.get(k)]
    x, y = box.x, box.y
    return (
        f'<g class="orch-step" data-step="{html.escape(name)}" data-state="{html.escape(state)}"'
        f"{marker}>"
        f"<title>{html.escape(chr(10).join(tip))}</title>"
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{NODE_W:.0f}" height="{NODE_H:.0f}" rx="7" ry="7" '
        f'style="fill:{_rgba(colour, 0.22)};stroke:{colour};stroke-width:{width}{dash}"/>'
        f'<text x="{x + 9:.1f}" y="{y + 17:.1f}" style="{TEXT};font-size:12px;font-weight:600">'
        f"{html.escape(_short(name, 22))}</text>"
        f'<text x="{x + 9:.1f}" y="{y + 33:.1f}" style="{TEXT2};font-size:11px">'
        f"{html.escape(' · '.join(detail))}</text></g>"
    )


def _chip(state: str, text: str) -> str:
    colour = STATE_COLOURS.get(state, UNKNOWN_COLOUR)
    return (
        f'<span class="orch-chip" data-state="{html.escape(state)}" style="border:1px solid {colour};'
        f'background:{_rgba(colour, 0.22)};border-radius:4px;padding:0 5px;margin-right:4px">'
        f"{html.escape(text)}</span>"
    )


def _states(steps: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in steps:
        state = str(s.get("state") or "unknown")
        counts[state] = counts.get(state, 0) + 1
    order = list(STATE_COLOURS)
    return dict(sorted(counts.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))


def compact(steps: Sequence[Mapping[str, Any]], rows: int = 50) -> str:
    """A large run as counts: per state, and per base step (a ``matrix`` fans one out)."""
    totals = _states(steps)
    bases: dict[str, list[Mapping[str, Any]]] = {}
    for s in steps:
        bases.setdefault(str(s.get("base") or s["name"]), []).append(s)
    head = "".join(f"<th>{html.escape(state.replace('_', ' '))}</th>" for state in totals)
    body = []
    for base, members in list(bases.items())[:rows]:
        counts = _states(members)
        cells = "".join(f"<td>{counts.get(state, '')}</td>" for state in totals)
        body.append(
            f'<tr data-base="{html.escape(base)}"><td>{html.escape(base)}</td><td>{len(members)}</td>{cells}</tr>'
        )
    more = f"<div>… and {len(bases) - rows} more steps as written</div>" if len(bases) > rows else ""
    chips = "".join(_chip(state, f"{n} {state.replace('_', ' ')}") for state, n in totals.items())
    return (
        f'<div class="orch-compact"><div>{len(steps)} steps: {chips}</div>'
        f'<table class="orch-bases"><tr><th>step</th><th>steps</th>{head}</tr>{"".join(body)}</table>{more}</div>'
    )


def errors(steps: Sequence[Mapping[str, Any]], rows: int = 20) -> str:
    """The failed steps with their errors (a table; empty when none failed)."""
    failed = [s for s in steps if s.get("state") == "failed"]
    if not failed:
        return ""
    lines = []
    for s in failed[:rows]:
        error = _short(str(s.get("error") or ""), 400)
        kind = f" ({html.escape(str(s['error_kind']))})" if s.get("error_kind") else ""
        lines.append(
            f'<tr data-step="{html.escape(str(s["name"]))}"><td><b>{html.escape(str(s["name"]))}</b>{kind}</td>'
            f'<td style="white-space:pre-wrap;text-align:left">{html.escape(error)}</td></tr>'
        )
    more = f"<tr><td colspan=2>… and {len(failed) - rows} more failed</td></tr>" if len(failed) > rows else ""
    return f'<table class="orch-errors"><tr><th>failed step</th><th>error</th></tr>{"".join(lines)}{more}</table>'


def summary(run: Mapping[str, Any], now: float | None = None) -> str:
    """One line: the run's name, id and state, how many steps are done, how long it took."""
    now = time.time() if now is None else now
    steps = run.get("steps") or []
    state = str(run.get("state") or "unknown")
    done = sum(1 for s in steps if s.get("state") in TERMINAL)
    bad = [f"{n} {k.replace('_', ' ')}" for k, n in _states(steps).items() if k in TERMINAL[1:]]
    parts = [
        f"<b>{html.escape(str(run.get('name') or 'workflow'))}</b> <code>{html.escape(str(run.get('id', '')))}</code>",
        _chip(state, state.replace("_", " ")),
        f"{done} of {len(steps)} steps done" + (f" ({', '.join(bad)})" if bad else ""),
        _seconds(_took(run, now, start="created_at")),
    ]
    return '<div class="orch-summary">' + " · ".join(p for p in parts if p) + "</div>"


def render(run: Mapping[str, Any], now: float | None = None, note: str = "") -> str:
    """The whole view of a run (its status with steps) as HTML."""
    steps = list(run.get("steps") or [])
    graph = compact(steps) if len(steps) > COMPACT_ABOVE else svg(steps, now)
    extra = f'<div class="orch-note">{html.escape(note)}</div>' if note else ""
    return (
        f'<div class="jupyter-orch-run">{summary(run, now)}'
        f'<div style="overflow-x:auto;max-width:100%;margin:4px 0">{graph}</div>{errors(steps)}{extra}</div>'
    )


def text(run: Mapping[str, Any]) -> str:
    """The plain-text form (outside a notebook)."""
    steps = run.get("steps") or []
    done = sum(1 for s in steps if s.get("state") in TERMINAL)
    counts = ", ".join(f"{n} {k}" for k, n in _states(steps).items())
    return f"workflow run {run.get('name', '')} {run.get('id', '')} {run.get('state')}: {done} of {len(steps)} steps done ({counts})"
