"""The sidebar's Searches view in a real JupyterLab, driven in Chromium: a hyperparameter search
started through the SDK appears live, its trials table shows each trial's parameters, best
value of the metric (and its step) and state, the best trial marked; a click on a trial shows
its task's log; a running search is cancelled from its Cancel button. The trials wait on files
the test creates, never on time; every wait is on something the page shows."""

from __future__ import annotations

import re
import sys
import uuid
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
from playwright.sync_api import expect

from jupyter_orch.core.space import uniform

pytestmark = pytest.mark.timeout(300)

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # its functions go to workers by value

LONG = 60_000  # ms: trials on local workers, on a busy machine
SPACE = {"lr": [0.1, 0.01], "width": [8, 16, 32]}  # a grid: 6 trials


def trial(go: str, lr: float, width: int) -> float:
    """A trial: reports loss at two steps (the better one last), then waits for ``go``."""
    import os
    import time

    import jupyter_orch

    loss = lr * width
    print(f"trial lr={lr} width={width}", flush=True)
    jupyter_orch.report(step=0, loss=loss * 2)
    jupyter_orch.report(step=1, loss=loss)
    while not os.path.exists(go):
        time.sleep(0.05)
    return loss


def waiting(go: str, a: float) -> None:
    """A trial that runs until ``go`` exists (or it is cancelled)."""
    import os
    import time

    print(f"waiting a={a}", flush=True)
    while not os.path.exists(go):
        time.sleep(0.05)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def g4(value: Any) -> str:
    """A value as the view shows it (the cell and the CLI use .4g too)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def searches(ui: Any) -> Any:
    return ui.section("searches")


def search_row(ui: Any, search_id: str) -> Any:
    return searches(ui).locator(f'[data-testid="orch-search"][data-id="{search_id}"]')


def trial_rows(ui: Any) -> Any:
    return searches(ui).locator('[data-testid="orch-search-detail"] [data-testid="orch-trial"]')


def cell(row: Any, testid: str, name: str | None = None) -> Any:
    extra = f'[data-name="{name}"]' if name else ""
    return row.locator(f'[data-testid="{testid}"]{extra}')


def test_a_search_shows_its_trials_live_with_the_best_marked(ui: Any) -> None:
    name = unique("ui-search")
    go = Path(ui.server.root) / f"{name}.go"
    client = ui.server.client()
    try:
        search = client.search(
            trial, SPACE, str(go), metric="loss", scheduler="grid", max_concurrent=2, name=name
        )
        # it appears by itself (the events socket), running, with its first trials
        row = search_row(ui, search.id)
        expect(row).to_be_visible(timeout=LONG)
        expect(row).to_have_attribute("data-state", "running")
        expect(row.locator('[data-testid="orch-search-cancel"]')).to_be_visible()
        row.click()
        expect(row).to_have_class(re.compile(r"\bjp-mod-selected\b"))
        detail = searches(ui).locator('[data-testid="orch-search-detail"]')
        expect(detail).to_have_attribute("data-id", search.id)
        table = detail.locator('[data-testid="orch-trials"]')
        headers = table.locator("th")
        expect(headers).to_have_text(["#", "lr", "width", "best loss ↓", "step", "state"])
        rows = trial_rows(ui)
        expect(rows).to_have_count(2, timeout=LONG)  # two at a time; the rest are not planned yet
        for i in range(2):
            expect(rows.nth(i)).to_have_attribute("data-state", "running", timeout=LONG)
            # what a running trial reported shows while it runs (the view reads it again)
            expect(cell(rows.nth(i), "orch-trial-step")).to_have_text("1", timeout=LONG)
        for t in client.get_search(search.id).trials():
            r = rows.and_(ui.page.locator(f'[data-number="{t["number"]}"]'))
            expect(cell(r, "orch-trial-value")).to_have_text(g4(t["params"]["lr"] * t["params"]["width"]))
        ui.screenshot("search-running", searches(ui))

        go.write_text("go")  # the running trials end, the others start and end: live
        expect(row).to_have_attribute("data-state", "succeeded", timeout=LONG)
        expect(rows).to_have_count(6, timeout=LONG)
        for i in range(6):
            expect(rows.nth(i)).to_have_attribute("data-state", "succeeded", timeout=LONG)
        expect(row.locator('[data-testid="orch-search-cancel"]')).to_have_count(0)
        expect(row.locator('[data-testid="orch-search-counts"]')).to_contain_text("6/6 trials")

        # the table is the server's: every trial with its parameters, best value and step
        trials = client.get_search(search.id).trials()
        assert len(trials) == 6 and {t["state"] for t in trials} == {"succeeded"}
        for t in trials:
            r = rows.and_(ui.page.locator(f'[data-number="{t["number"]}"]'))
            expect(r).to_have_count(1)
            expect(r).to_have_attribute("data-task", t["task_id"])
            for param, value in t["params"].items():
                expect(cell(r, "orch-trial-param", param)).to_have_text(g4(value))
            expect(cell(r, "orch-trial-value")).to_have_text(g4(t["best"]))
            expect(cell(r, "orch-trial-step")).to_have_text("1")  # the better value came last
            expect(cell(r, "orch-trial-state")).to_have_text("succeeded")

        # the best trial (lowest loss: lr 0.01 x width 8), first and marked
        best = client.get_search(search.id).best
        assert best is not None and best["params"] == {"lr": 0.01, "width": 8}
        marked = rows.and_(ui.page.locator('[data-best="true"]'))
        expect(marked).to_have_count(1)
        expect(marked).to_have_attribute("data-number", str(best["number"]))
        expect(marked).to_have_class(re.compile(r"\bjp-mod-best\b"))
        expect(rows.first).to_have_attribute("data-best", "true")
        expect(cell(marked, "orch-trial-value")).to_have_text("0.08")
        assert colour(marked) != colour(rows.nth(1))  # seen at a glance
        best_line = row.locator('[data-testid="orch-search-best"]')
        expect(best_line).to_have_text(f"best loss 0.08 at step 1 · #{best['number']} lr=0.01 width=8")

        # a click on a trial shows its task's log
        marked.click()
        expect(marked).to_have_class(re.compile(r"\bjp-mod-selected\b"))
        lines = ui.section("logs").locator('[data-testid="orch-log-line"]')
        expect(lines.filter(has_text="trial lr=0.01 width=8")).to_have_count(1, timeout=LONG)
        expect(ui.row("task", best["task_id"])).to_have_class(re.compile(r"\bjp-mod-selected\b"))
        ui.screenshot("search-trials", searches(ui))
        ui.screenshot("search-sidebar")
    finally:
        go.write_text("go")


def test_a_running_search_is_cancelled_from_its_row(ui: Any) -> None:
    name = unique("ui-cancel")
    go = Path(ui.server.root) / f"{name}.go"
    client = ui.server.client()
    try:
        search = client.search(
            waiting,
            {"a": uniform(0, 1)},
            str(go),
            metric="loss",
            scheduler="random",
            max_trials=4,
            max_concurrent=2,
            name=name,
        )
        row = search_row(ui, search.id)
        expect(row).to_be_visible(timeout=LONG)
        row.click()
        rows = trial_rows(ui)
        expect(rows).to_have_count(2, timeout=LONG)
        for i in range(2):
            expect(rows.nth(i)).to_have_attribute("data-state", "running", timeout=LONG)
        # no value yet: no best trial, and the summary says so
        expect(rows.and_(ui.page.locator('[data-best="true"]'))).to_have_count(0)
        expect(row.locator('[data-testid="orch-search-best"]')).to_have_text("no loss reported yet")
        # the trials are running on workers before the search is cancelled
        lines = ui.section("logs").locator('[data-testid="orch-log-line"]')
        rows.first.click()
        expect(lines.filter(has_text="waiting a=")).to_have_count(1, timeout=LONG)

        row.locator('[data-testid="orch-search-cancel"]').click()
        expect(row).to_have_attribute("data-state", "cancelled", timeout=LONG)
        expect(row.locator('[data-testid="orch-search-cancel"]')).to_have_count(0)
        for i in range(2):
            expect(rows.nth(i)).to_have_attribute("data-state", "cancelled", timeout=LONG)
            expect(cell(rows.nth(i), "orch-trial-state")).to_have_text("cancelled")
        assert client.get_search(search.id).state == "cancelled"
        for t in client.get_search(search.id).view["trials"]:
            task = client.api.get(f"/tasks/{t['task_id']}")
            assert task["state"] == "cancelled", task
    finally:
        go.write_text("go")


def colour(locator: Any) -> str:
    return str(locator.evaluate("el => getComputedStyle(el).backgroundColor"))
