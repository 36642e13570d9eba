"""The workflow run view: the layout and drawing (pure), and the live view following a real
run on a real server, its events stream cut halfway."""

from __future__ import annotations

import re
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

from jupyter_orch.client import Client
from jupyter_orch.kernel import dag, dagdraw

from support.proxy import CuttableProxy

SVG = "{http://www.w3.org/2000/svg}"


def step(name, *depends, state="pending", **more):
    return {"name": name, "base": more.pop("base", name), "depends": list(depends), "state": state, **more}


DIAMOND = [step("a"), step("b", "a"), step("c", "a"), step("d", "b", "c")]


def nodes(svg_text):
    """Each drawn step: name -> (state, rect style, texts, cached mark)."""
    root = ET.fromstring(svg_text)
    out = {}
    for g in root.iter(f"{SVG}g"):
        rect = g.find(f"{SVG}rect")
        texts = [t.text for t in g.findall(f"{SVG}text")]
        out[g.get("data-step")] = (g.get("data-state"), rect.get("style"), texts, g.get("data-cached"))
    return out


def svg_of(html_text):
    return re.search(r"<svg.*</svg>", html_text, re.S).group(0)


# ---------------------------------------------------------------------------- layout
def test_layers_run_left_to_right_by_longest_path():
    placed = dagdraw.layout(DIAMOND)
    assert placed.layers() == [["a"], ["b", "c"], ["d"]]
    x = {n: b.x for n, b in placed.boxes.items()}
    assert x["a"] < x["b"] == x["c"] < x["d"]
    y = {n: b.y + dagdraw.NODE_H / 2 for n, b in placed.boxes.items()}
    assert y["a"] == y["d"] == (y["b"] + y["c"]) / 2  # layers centred
    assert sorted(placed.edges) == [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
    # a shortcut does not pull a step left: the longest path decides
    assert dagdraw.layout([step("a"), step("b", "a"), step("c", "a", "b")]).layers() == [["a"], ["b"], ["c"]]


def test_order_within_a_layer_follows_the_upstream_steps_and_not_the_states():
    steps = [step("r1"), step("r2"), step("x", "r2"), step("y", "r1"), step("z")]
    placed = dagdraw.layout(steps)
    assert placed.layers() == [["r1", "r2", "z"], ["y", "x"]]  # y under r1, x under r2: no crossing
    again = dagdraw.layout([{**s, "state": "succeeded", "cached": True} for s in steps])
    assert again.boxes == placed.boxes
    assert placed.width > 2 * dagdraw.NODE_W and placed.height >= 3 * dagdraw.NODE_H


def test_unknown_dependencies_self_loops_and_cycles_do_not_break_the_layout():
    steps = [step("a", "ghost", "a"), step("b", "c"), step("c", "b")]
    placed = dagdraw.layout(steps)
    assert set(placed.boxes) == {"a", "b", "c"} and ("ghost", "a") not in placed.edges
    assert dagdraw.layout([]).layers() == [] and dagdraw.svg([]).startswith("<svg")


# ---------------------------------------------------------------------------- drawing
def test_each_step_is_drawn_in_its_state_colour_with_theme_text():
    states = ["succeeded", "running", "failed", "upstream_failed"]
    steps = [{**s, "state": st} for s, st in zip(DIAMOND, states, strict=True)]
    steps[0].update(duration=2.5)
    drawn = nodes(dagdraw.svg(steps, now=0.0))
    assert set(drawn) == {"a", "b", "c", "d"}
    for s in steps:
        state, style, texts, _ = drawn[s["name"]]
        assert state == s["state"]
        assert f"stroke:{dagdraw.STATE_COLOURS[s['state']]}" in style
        assert texts[0] == s["name"] and texts[1].startswith(s["state"].replace("_", " "))
    assert drawn["a"][2][1] == "succeeded · 2.5 s"
    text = dagdraw.svg(steps)
    assert "var(--jp-ui-font-color1" in text  # the step names follow the theme's text colour
    assert len(re.findall(r'class="orch-edge"', text)) == 4


def test_a_cached_step_is_dashed_and_says_cached():
    steps = [step("a", state="succeeded", cached=True, duration=0.0), step("b", "a", state="succeeded")]
    drawn = nodes(dagdraw.svg(steps))
    assert drawn["a"][3] == "true" and "stroke-dasharray" in drawn["a"][1] and "cached" in drawn["a"][2][1]
    assert drawn["b"][3] is None and "stroke-dasharray" not in drawn["b"][1]


def test_the_view_has_a_summary_line_and_the_failed_steps_errors():
    run = {
        "id": "r1",
        "name": "pipe<line>",
        "state": "failed",
        "duration": 75.0,
        "steps": [
            step("a", state="succeeded"),
            step("b", "a", state="failed", error="exit status 3 <oops>", error_kind="nonzero_exit"),
            step("c", "b", state="upstream_failed", error="dependency b failed"),
        ],
    }
    page = dagdraw.render(run)
    assert "pipe&lt;line&gt;" in page and "<code>r1</code>" in page
    assert "3 of 3 steps done (1 failed, 1 upstream failed)" in page and "1 min 15 s" in page
    errors = re.search(r'<table class="orch-errors">.*</table>', page).group(0)
    assert "exit status 3 &lt;oops&gt;" in errors and "nonzero_exit" in errors
    assert "dependency b failed" not in errors  # only the failures themselves
    assert set(nodes(svg_of(page))) == {"a", "b", "c"}
    assert dagdraw.text(run) == (
        "workflow run pipe<line> r1 failed: 3 of 3 steps done (1 succeeded, 1 failed, 1 upstream_failed)"
    )


def test_a_large_run_is_summarised_as_counts():
    steps = [step("prep", state="succeeded")]
    steps += [
        step(f"train[i={i}]", "prep", base="train", state="running" if i < 40 else "pending")
        for i in range(240)
    ]
    steps += [step("report", *(s["name"] for s in steps[1:]), state="pending")]
    page = dagdraw.render(
        {"id": "big", "name": "sweep", "state": "running", "created_at": 0.0, "steps": steps}, now=5.0
    )
    assert "<svg" not in page and len(page) < 5000
    assert "242 steps" in page and "1 succeeded" in page and "40 running" in page and "201 pending" in page
    row = re.search(r'<tr data-base="train">(.*?)</tr>', page).group(1)
    assert re.findall(r"<td>(\d*)</td>", row) == ["240", "200", "40", ""]  # pending, running, succeeded
    assert "1 of 242 steps done" in page and "5.0 s" in page
    at_most = [step(f"s{i}") for i in range(dagdraw.COMPACT_ABOVE)]
    assert "<svg" in dagdraw.render({"steps": at_most}) and "<svg" not in dagdraw.render(
        {"steps": [*at_most, step("x")]}
    )


# ---------------------------------------------------------------------------- live, on a real server
FLOW = """\
name: gated
tasks:
  - name: a
    shell: while [ ! -e {gate}-a ]; do sleep 0.05; done
  - name: b
    depends: [a]
    shell: exit 3
  - name: c
    depends: [b]
    shell: 'true'
  - name: d
    shell: while [ ! -e {gate}-d ]; do sleep 0.05; done
"""


def showing(view, name, state):
    """An event set once the view's HTML shows step ``name`` in ``state``."""
    seen = threading.Event()
    mark = f'data-step="{name}" data-state="{state}"'

    def check(change):
        if mark in change["new"]:
            seen.set()

    view.widget.observe(check, names="value")
    if mark in view.widget.value:
        seen.set()
    return seen


def test_the_view_follows_a_run_live_and_survives_a_dropped_stream(orch, tmp_path: Path):
    gate = tmp_path / "gate"
    flow = tmp_path / "flow.yaml"
    flow.write_text(FLOW.format(gate=gate))
    proxy = CuttableProxy(orch.port)
    try:
        client = Client(f"http://127.0.0.1:{proxy.port}", orch.token)
        handle = client.submit_workflow(flow)
        view = dag.RunView(handle)
        assert showing(view, "a", "running").wait(60) and showing(view, "d", "running").wait(60)
        Path(f"{gate}-d").touch()
        assert showing(view, "d", "succeeded").wait(60)  # drawn live, while the run goes on
        assert orch.api().get(f"/workflows/{handle.id}")["state"] == "running"
        assert view.streams == 1
        proxy.cut()  # the view's events stream (and its HTTP connection) dropped
        Path(f"{gate}-a").touch()
        assert view.join(60)
    finally:
        proxy.close()
    assert (view.streams, view.followed_by) == (2, "events")  # it opened the stream again
    final = nodes(svg_of(view.widget.value))
    assert {n: s[0] for n, s in final.items()} == {
        "a": "succeeded",
        "b": "failed",
        "c": "upstream_failed",
        "d": "succeeded",
    }
    assert "4 of 4 steps done (1 failed, 1 upstream failed)" in view.widget.value
    assert 'class="orch-errors"' in view.widget.value and "live view stopped" not in view.widget.value
    assert view.text().startswith(f"workflow run gated {handle.id} failed")


def test_the_view_of_an_ended_run_draws_it_and_stops(orch, tmp_path: Path):
    flow = tmp_path / "quick.yaml"
    flow.write_text("name: quick\ntasks:\n  - name: only\n    shell: 'true'\n")
    handle = orch.client().submit_workflow(flow)
    handle.wait(60)
    view = dag.RunView(handle)
    assert view.join(30)
    assert view.followed_by == ""  # nothing to follow: one read of the run
    assert 'data-step="only" data-state="succeeded"' in view.widget.value
    view.close()
    assert view.widget.comm is None
