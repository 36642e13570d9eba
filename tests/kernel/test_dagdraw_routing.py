"""The notebook's DAG drawing routes edges around steps: an edge that skips layers passes
through a dummy slot in each layer between (a gap between that layer's boxes), so no edge
runs through a box. Checked geometrically on the SVG that is drawn, over generated DAGs
(a 200-step one and long skip edges among them); plus the layer order and determinism."""

from __future__ import annotations

import random
import re
import xml.etree.ElementTree as ET

from jupyter_orch.kernel import dagdraw

SVG = "{http://www.w3.org/2000/svg}"
Point = tuple[float, float]


def step(name: str, *depends: str) -> dict:
    return {"name": name, "depends": list(depends), "state": "pending"}


def random_dag(n: int, seed: int, fan: int = 3) -> list[dict]:
    """``n`` steps, each on up to ``fan`` earlier ones (a fifth of them far back)."""
    r = random.Random(seed)
    out = []
    for i in range(n):
        deps: dict[str, None] = {}
        for _ in range(0 if i == 0 else r.randint(0, fan)):
            back = r.randrange(i) if r.random() < 0.2 else max(0, i - 1 - r.randrange(4))
            deps[f"s{back}"] = None
        out.append(step(f"s{i}", *deps))
    return out


def parse_path(d: str) -> list[Point]:
    """An SVG path of M, L and C commands as a polyline (each cubic sampled)."""
    tokens = re.findall(r"[MLC]|-?[0-9.]+", d)
    out: list[Point] = []
    i = 0
    while i < len(tokens):
        cmd = tokens[i]
        i += 1
        if cmd in ("M", "L"):
            out.append((float(tokens[i]), float(tokens[i + 1])))
            i += 2
        else:
            (c1x, c1y, c2x, c2y, x, y) = (float(t) for t in tokens[i : i + 6])
            i += 6
            x0, y0 = out[-1]
            for k in range(1, 25):
                t = k / 24
                u = 1 - t
                out.append(
                    (
                        u**3 * x0 + 3 * u * u * t * c1x + 3 * u * t * t * c2x + t**3 * x,
                        u**3 * y0 + 3 * u * u * t * c1y + 3 * u * t * t * c2y + t**3 * y,
                    )
                )
    return out


def hits(a: Point, b: Point, box: tuple[float, float, float, float], eps: float = 0.5) -> bool:
    """Does segment a-b pass through the inside of box (x, y, w, h) shrunk by eps?"""
    x0, y0, x1, y1 = box[0] + eps, box[1] + eps, box[0] + box[2] - eps, box[1] + box[3] - eps
    dx, dy = b[0] - a[0], b[1] - a[1]
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, a[0] - x0), (dx, x1 - a[0]), (-dy, a[1] - y0), (dy, y1 - a[1])):
        if p == 0:
            if q <= 0:
                return False
            continue
        r = q / p
        if p < 0:
            if r > t1:
                return False
            t0 = max(t0, r)
        else:
            if r < t0:
                return False
            t1 = min(t1, r)
    return t0 < t1


def drawn(
    steps: list[dict],
) -> tuple[dict[str, tuple[float, float, float, float]], list[tuple[str, str, str]]]:
    """The boxes (step -> x, y, w, h) and the edges (from, to, path) of the drawn SVG."""
    root = ET.fromstring(dagdraw.svg(steps, now=0.0))
    boxes = {}
    for g in root.iter(f"{SVG}g"):
        rect = g.find(f"{SVG}rect")
        boxes[g.get("data-step")] = tuple(float(rect.get(k)) for k in ("x", "y", "width", "height"))
    edges = [(p.get("data-from"), p.get("data-to"), p.get("d")) for p in root.iter(f"{SVG}path")]
    return boxes, edges


def through_boxes(steps: list[dict]) -> list[str]:
    boxes, edges = drawn(steps)
    out = []
    for up, down, d in edges:
        line = parse_path(d)
        for a, b in zip(line, line[1:], strict=False):
            lo, hi = min(a[0], b[0]), max(a[0], b[0])
            near = [(n, box) for n, box in boxes.items() if box[0] < hi and box[0] + box[2] > lo]
            out += [f"{up}->{down} through {n}" for n, box in near if hits(a, b, box)]
    return out


def check_layers(steps: list[dict]) -> None:
    placed = dagdraw.layout(steps)
    layer = {n: b.layer for n, b in placed.boxes.items()}
    for s in steps:
        deps = [d for d in s["depends"] if d in layer]
        assert layer[s["name"]] == max((layer[d] + 1 for d in deps), default=0), s["name"]
    for up, down in placed.edges:
        assert layer[down] > layer[up]
    for column in placed.layers():  # in order, not overlapping
        for a, b in zip(column, column[1:], strict=False):
            assert placed.boxes[b].y >= placed.boxes[a].y + dagdraw.NODE_H


def test_a_skip_edge_goes_around_the_step_between():
    steps = [step("a"), step("b", "a"), step("c", "a", "b")]
    assert dagdraw.layout(steps).layers() == [["a"], ["b"], ["c"]]
    assert len(dagdraw.layout(steps).routes[("a", "c")]) == 4  # two points across b's layer
    assert through_boxes(steps) == []
    # the straight line the old drawing used would have run through b
    boxes = {n: (b.x, b.y, dagdraw.NODE_W, dagdraw.NODE_H) for n, b in dagdraw.layout(steps).boxes.items()}
    a, c = boxes["a"], boxes["c"]
    assert hits((a[0] + a[2], a[1] + a[3] / 2), (c[0], c[1] + c[3] / 2), boxes["b"])


def test_long_skip_edges_around_a_chain():
    steps = [step(f"c{i}", *([f"c{i - 1}"] if i else [])) for i in range(12)]
    steps.append(step("end", *(s["name"] for s in steps)))
    steps.append(step("late", "c0", "end"))
    check_layers(steps)
    assert through_boxes(steps) == []
    assert len(dagdraw.layout(steps).routes[("c0", "late")]) == 2 + 2 * 12


def test_no_edge_runs_through_a_box_over_generated_dags():
    for seed in range(1, 41):
        steps = random_dag(5 + seed % 35, seed, 1 + seed % 4)
        check_layers(steps)
        assert through_boxes(steps) == [], seed


def test_a_200_step_dag_is_routed_around_its_boxes():
    steps = random_dag(dagdraw.COMPACT_ABOVE, 200)
    check_layers(steps)
    boxes, edges = drawn(steps)
    assert len(boxes) == 200 and len(edges) == len(dagdraw.layout(steps).edges)
    assert through_boxes(steps) == []


def test_the_order_cuts_crossings_and_the_drawing_is_deterministic():
    crossed = [step("a"), step("b"), step("c"), step("p", "c"), step("q", "b"), step("r", "a")]
    assert dagdraw.layout(crossed).layers() == [["a", "b", "c"], ["r", "q", "p"]]
    steps = random_dag(80, 7)
    assert dagdraw.svg(steps, now=0.0) == dagdraw.svg([dict(s) for s in steps], now=0.0)
    again = dagdraw.layout([{**s, "state": "succeeded"} for s in steps])
    assert again.boxes == dagdraw.layout(steps).boxes and again.routes == dagdraw.layout(steps).routes


def test_the_path_and_its_flattened_form_agree():
    points = [(0.0, 0.0), (10.0, 20.0), (30.0, 20.0), (40.0, 5.0)]
    assert (
        dagdraw.edge_path(points)
        == "M0.0,0.0 C5.0,0.0 5.0,20.0 10.0,20.0 L30.0,20.0 C35.0,20.0 35.0,5.0 40.0,5.0"
    )
    line = dagdraw.flatten(points)
    assert line[0] == points[0] and line[-1] == points[-1]
    assert all(0 <= x <= 10 for x, _ in line[: len(line) // 2])
