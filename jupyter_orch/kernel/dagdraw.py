"""Drawing a workflow run, pure: its steps laid out left to right by longest path
(:func:`layout`) and rendered as HTML, an SVG of boxes coloured by state with a summary
line and the failed steps' errors (:func:`render`); more than :data:`COMPACT_ABOVE` steps
are drawn as counts (:func:`compact`). The live widget is :mod:`.dag`."""

from __future__ import annotations

import html
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
    root; within a layer steps sit near their upstream steps (then in file order), so the
    drawing is the same for a given graph whatever the states. Layers are centred."""
    names = list(dict.fromkeys(str(s["name"]) for s in steps))
    index = {n: i for i, n in enumerate(names)}
    deps: dict[str, list[str]] = {n: [] for n in names}
    for s in steps:
        name = str(s["name"])
        deps[name] = [d for d in dict.fromkeys(s.get("depends") or []) if d in index and d != name]
    children: dict[str, list[str]] = {n: [] for n in names}
    waiting = {n: len(deps[n]) for n in names}
    for n in names:
        for d in deps[n]:
            children[d].append(n)
    depth = dict.fromkeys(names, 0)
    queue = deque(n for n in names if not waiting[n])
    while queue:  # longest path by topological order (a cycle's steps keep what they have)
        n = queue.popleft()
        for c in children[n]:
            depth[c] = max(depth[c], depth[n] + 1)
            waiting[c] -= 1
            if not waiting[c]:
                queue.append(c)
    by_layer: list[list[str]] = [[] for _ in range(1 + max(depth.values(), default=-1))]
    for n in names:
        by_layer[depth[n]].append(n)
    tallest = max((len(layer) for layer in by_layer), default=0)
    pitch = NODE_H + GAP_Y
    out = Layout()
    centre: dict[str, float] = {}
    for k, layer in enumerate(by_layer):

        def key(n: str) -> tuple[float, int]:
            ys = [centre[d] for d in deps[n] if d in centre]
            return (sum(ys) / len(ys) if ys else -1.0, index[n])

        ordered = sorted(layer, key=key) if k else layer
        top = PAD + (tallest - len(layer)) * pitch / 2
        for row, n in enumerate(ordered):
            box = Box(n, k, row, PAD + k * (NODE_W + GAP_X), top + row * pitch)
            out.boxes[n] = box
            centre[n] = box.y + NODE_H / 2
    out.edges = [(d, n) for n in names for d in deps[n]]
    out.width = 2 * PAD + len(by_layer) * NODE_W + max(0, len(by_layer) - 1) * GAP_X
    out.height = 2 * PAD + tallest * NODE_H + max(0, tallest - 1) * GAP_Y
    return out


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


def svg(steps: Sequence[Mapping[str, Any]], now: float | None = None) -> str:
    """The steps as an SVG graph: rounded boxes coloured by state (dashed and marked
    ``cached`` when the cache answered), lines from each step to those that depend on it."""
    now = time.time() if now is None else now
    placed = layout(steps)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="orch-dag" width="{placed.width:.0f}" '
        f'height="{placed.height:.0f}" viewBox="0 0 {placed.width:.0f} {placed.height:.0f}" '
        'style="font-family:var(--jp-ui-font-family,sans-serif)">'
    ]
    for up, down in placed.edges:
        a, b = placed.boxes[up], placed.boxes[down]
        x1, y1, x2, y2 = a.x + NODE_W, a.y + NODE_H / 2, b.x, b.y + NODE_H / 2
        bend = GAP_X / 2
        parts.append(
            f'<path class="orch-edge" data-from="{html.escape(up)}" data-to="{html.escape(down)}" '
            f'd="M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} {x2 - 5:.1f},{y2:.1f}" '
            'style="fill:none;stroke:var(--jp-ui-font-color3,#8c959f);stroke-width:1.2"/>'
            f'<polygon points="{x2:.1f},{y2:.1f} {x2 - 6:.1f},{y2 - 3.5:.1f} {x2 - 6:.1f},{y2 + 3.5:.1f}" '
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
