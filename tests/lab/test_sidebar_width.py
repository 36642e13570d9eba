"""The Orchestrator sidebar at JupyterLab's default left-panel width (~250 px), as a newcomer
first sees it: nothing is clipped. Measured with each element's geometry
(``getBoundingClientRect``): the filter and log-search fields show their placeholders whole,
the state dropdown shows its chosen label whole, every worker's CPU/RAM bars lie inside the
panel, and a workflow's steps are all visible or scrollable with a visible scrollbar. A
notebook task's log shows the cells' own output, and its ``[jupyter-orch] cell i of n``
progress lines drawn as progress, not in the error colour."""

from __future__ import annotations

import os
import re
import textwrap
import uuid
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.timeout(300)

LONG = 60_000  # ms
DEFAULT_WIDTH = 250  # px: JupyterLab 4's left area when a workspace starts fresh
SIDEBAR = "#jupyter-orch-sidebar"


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium as tests/lab/conftest.py launches it, but drawing scrollbars as a desktop
    Chromium does: Playwright's headless default (``--hide-scrollbars``) gives every
    scrollbar zero width, so whether one can be seen could not be measured."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/lab-test-deps.sh (Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, ignore_default_args=["--hide-scrollbars"]
        )
        try:
            yield launched
        finally:
            launched.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def at_default_width(ui: Any) -> None:
    """The lab again on a fresh workspace, the sidebar shown and not widened."""
    page = ui.page
    page.goto(ui.url())
    expect(page.locator("#jupyterlab-splash")).to_have_count(0, timeout=LONG)
    if not ui.sidebar.is_visible():
        page.locator(f'.jp-SideBar .lm-TabBar-tab[data-id="{SIDEBAR[1:]}"]').click()
    expect(ui.sidebar).to_be_visible()
    expect(ui.sidebar.locator('[data-testid="orch-connection"]')).to_have_attribute(
        "data-state", "open", timeout=30_000
    )


def rect(locator: Any) -> dict[str, float]:
    return locator.evaluate(
        "el => { const r = el.getBoundingClientRect();"
        " return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, height: r.height}; }"
    )


def inside(inner: dict[str, float], outer: dict[str, float], what: str, vertical: bool = False) -> None:
    """``inner`` lies within ``outer`` left to right (and top to bottom when ``vertical``)."""
    tol = 0.5
    assert inner["width"] > 0 and inner["height"] > 0, f"{what} is not shown: {inner}"
    assert inner["left"] >= outer["left"] - tol and inner["right"] <= outer["right"] + tol, (
        f"{what} {inner} sticks out of {outer} sideways"
    )
    if vertical:
        assert inner["top"] >= outer["top"] - tol and inner["bottom"] <= outer["bottom"] + tol, (
            f"{what} {inner} sticks out of {outer} vertically"
        )


# the width a text needs in an element's own font, and the room the element's content box has
TEXT_ROOM = """(el, text) => {
  const cs = getComputedStyle(el);
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = cs.font;
  return {
    text: ctx.measureText(text).width,
    room: el.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight),
  };
}"""


def placeholder_fits(field: Any, what: str) -> None:
    placeholder = field.get_attribute("placeholder") or ""
    assert placeholder, f"{what} has no placeholder"
    m = field.evaluate(TEXT_ROOM, placeholder)
    assert m["text"] <= m["room"], f"{what}: {placeholder!r} needs {m['text']:.0f}px, has {m['room']:.0f}px"


def label_fits(select: Any, what: str) -> None:
    """The dropdown's chosen label shows whole: its text and the arrow fit the closed box."""
    label = select.evaluate("s => s.options[s.selectedIndex].text")
    m = select.evaluate(TEXT_ROOM, label)
    arrow = 14  # Chromium's drop-down arrow
    assert m["text"] + arrow <= m["room"], (
        f"{what}: {label!r} needs {m['text'] + arrow:.0f}px, has {m['room']:.0f}px"
    )


def test_the_sidebar_reads_whole_at_its_default_width(ui):
    server = ui.server
    name = unique("narrow-flow")
    steps = ["prepare", "features", "train", "evaluate", "calibrate", "export", "report", "publish"]
    tasks = [f"  - name: {steps[0]}\n    shell: echo {steps[0]}"]
    for before, step in zip(steps[:-1], steps[1:], strict=True):
        tasks.append(f"  - name: {step}\n    depends: [{before}]\n    shell: echo {step}")
    source = f"name: {name}\ntasks:\n" + "\n".join(tasks) + "\n"
    run = server.api().post("/workflows", {"source": source, "filename": f"{name}.yaml"})

    at_default_width(ui)
    sidebar = rect(ui.sidebar)
    assert abs(sidebar["width"] - DEFAULT_WIDTH) <= 10, f"not at the default width: {sidebar}"
    page = ui.page

    # the heading: its live indicator (and any button added there) inside the panel
    for item in ui.sidebar.locator(".jp-OrchSidebar-heading > *").all():
        inside(rect(item), sidebar, "a heading item")

    # filter field and state dropdown: whole, inside the panel, labels not cut
    runs = ui.section("runs")
    text_filter = runs.locator('[data-testid="orch-filter-text"]')
    state = runs.locator('[data-testid="orch-filter-state"]')
    inside(rect(text_filter), sidebar, "the filter field")
    inside(rect(state), sidebar, "the state dropdown")
    placeholder_fits(text_filter, "the filter field")
    options = state.evaluate("s => [...s.options].map(o => [o.value, o.text])")
    assert dict(options)["workflow"] == "Workflows" and dict(options)[""] == "All states"
    for value, label in options:
        state.select_option(value)
        label_fits(state, f"the state dropdown on {label!r}")
        inside(rect(state), sidebar, f"the state dropdown on {label!r}")
    state.select_option("")

    # the workflow's steps: each inside the panel, names whole; all shown, or scrollable
    # with a scrollbar one can see
    row = ui.row("workflow", run["id"])
    expect(row).to_be_visible(timeout=LONG)
    expect(row).to_have_attribute("data-state", "succeeded", timeout=LONG)
    row.click()
    dag = ui.section("dag")
    nodes = dag.locator('[data-testid="orch-dag-node"]')
    expect(nodes).to_have_count(len(steps))
    assert nodes.evaluate_all("ns => ns.map(n => n.dataset.step)") == steps  # in dependency order
    listing = dag.locator('[data-testid="orch-dag-steps"]')
    box = listing.evaluate(
        "el => ({scroll: el.scrollHeight, client: el.clientHeight, overflow: getComputedStyle(el).overflowY,"
        " bar: el.offsetWidth - el.clientWidth})"
    )
    # eight steps do not fit the section at this height: they scroll, and the scrollbar takes room
    assert box["scroll"] > box["client"] + 1, f"expected the steps to overflow here: {box}"
    assert box["overflow"] in ("auto", "scroll") and box["bar"] > 0, f"steps hidden, no scrollbar: {box}"
    for node in nodes.all():
        node.scroll_into_view_if_needed()
        step = node.get_attribute("data-step")
        inside(rect(node), sidebar, f"step {step}")
        inside(rect(node), rect(listing), f"step {step} scrolled to", vertical=True)
        name_el = node.locator(".jp-OrchStep-name")
        assert name_el.evaluate("el => el.scrollWidth <= el.clientWidth"), f"step name {step} is cut"
        expect(name_el).to_have_text(step)
    last = nodes.and_(page.locator(f'[data-step="{steps[-1]}"]'))
    last.click()
    expect(last).to_have_class(re.compile(r"\bjp-mod-selected\b"))
    expect(dag.locator(".jp-OrchDag-details")).to_contain_text(steps[-1])

    # every worker's CPU and RAM bars inside the panel, their labels whole
    workers = ui.section("workers").locator('[data-testid="orch-worker"]')
    expect(workers).to_have_count(2)
    section = ui.section("workers")
    for worker in workers.all():
        bars = worker.locator(".jp-OrchMetrics .jp-OrchBar")
        expect(bars).to_have_count(2, timeout=LONG)  # CPU and RAM, once a heartbeat has come
        label = worker.get_attribute("data-name")
        for bar in bars.all():
            bar.scroll_into_view_if_needed()
            inside(rect(bar), sidebar, f"a bar of {label}")
            inside(rect(bar), rect(section), f"a bar of {label}", vertical=True)
            text = bar.locator(".jp-OrchBar-label")
            assert text.evaluate("el => el.scrollWidth <= el.clientWidth"), (
                f"{label}: {text.text_content()!r} is cut"
            )
        inside(rect(worker.locator(".jp-OrchWorker-head")), sidebar, f"the head of {label}")

    # the log's search field and buttons
    logs = ui.section("logs")
    search = logs.locator('[data-testid="orch-log-search"]')
    inside(rect(search), sidebar, "the log search field")
    placeholder_fits(search, "the log search field")
    for button in logs.locator(".jp-OrchToolbar button").all():
        inside(rect(button), sidebar, f"the log's {button.text_content()!r} button")
    ui.screenshot("default-width")


def test_a_notebook_tasks_log_shows_its_output_and_progress_not_as_errors(ui):
    name = unique("narrow-nb")
    path = ui.server.root / f"{name}.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import sys\nprint('loading data')"),
        nbformat.v4.new_code_cell(
            textwrap.dedent(
                """
                for epoch in range(3):
                    print(f'epoch {epoch} loss {1 / (epoch + 1):.2f}')
                print('a warning on stderr', file=sys.stderr)
                """
            ).strip()
        ),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    fut = ui.server.client().run_notebook(str(path))
    fut.result(120)
    at_default_width(ui)
    row = ui.row("task", fut.id)
    expect(row).to_have_attribute("data-state", "succeeded", timeout=LONG)
    row.click()
    lines = ui.section("logs").locator('[data-testid="orch-log-line"]')
    expect(lines.last).to_have_text("a warning on stderr", timeout=LONG)
    texts = lines.all_text_contents()
    assert texts == [
        "[jupyter-orch] cell 1 of 2",
        "loading data",
        "[jupyter-orch] cell 2 of 2",
        "epoch 0 loss 1.00",
        "epoch 1 loss 0.50",
        "epoch 2 loss 0.33",
        "a warning on stderr",
    ]
    kinds = lines.evaluate_all("ls => ls.map(l => l.dataset.kind)")
    assert kinds == ["progress", "stdout", "progress", "stdout", "stdout", "stdout", "stderr"]
    colour = lines.evaluate_all("ls => ls.map(l => getComputedStyle(l).color)")
    error_colour, plain = colour[-1], colour[1]
    assert colour[0] == colour[2] and colour[0] not in (error_colour, plain)  # muted, not red
    ui.screenshot("notebook-log", ui.section("logs"))
