"""The JupyterLab sidebar under load (issue 6's performance requirement), run by hand.

A whole Jupyter server with JupyterLab and the extension built in this checkout (started as
the browser tests start it, ``tests/lab/conftest.py``), 2 local workers of 26 slots, SQLite
in a temporary data dir; Debian's Chromium driven by Playwright. With ``--tasks`` finished
tasks in the database and ``--streams`` shell tasks running that each print a line every
200 ms, it measures:

* first render: a fresh page on ``/lab`` (workspace reset), from navigation start, and from
  the click on the sidebar's icon, until the runs list shows rows (``--loads`` times);
* event-to-DOM latency: ``--probes`` shell tasks submitted one at a time; from each task's
  ``created_at`` (server clock, same machine) until a MutationObserver in the page sees its
  row, and from its ``ended_at`` until the row's ``data-state`` says ``succeeded``;
* memory: one streaming task selected so its log streams into the Logs view; every 30 s the
  JS heap after a forced GC (CDP ``HeapProfiler.collectGarbage``, ``Performance.getMetrics``)
  and the page's DOM node count, for ``--minutes`` minutes; also how late log lines reach
  the DOM (the line's own ``date`` stamp to the observer).

    .venv/bin/python benchmarks/bench_sidebar.py --minutes 10   # writes results/sidebar.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from lab.conftest import BUILT, CHROMIUM, CHROMIUM_ARGS, SIDEBAR, _lab_settings  # noqa: E402

from support.orchserver import OrchServer  # noqa: E402

ROW = '[data-testid="orch-run-row"]'
STREAM_CMD = "while true; do echo tick $(date +%s.%N); sleep 0.2; done"

# Installed at document start: the first run row's time, and (once armed) every row's first
# appearance and state, and how late each streamed log line lands.
OBSERVER = """
(() => {
  const w = window;
  w.__orch = {firstRow: null, pointerdown: null, seen: {}, states: {}, logLags: [], armed: false};
  const o = w.__orch;
  w.addEventListener('pointerdown', () => { if (o.pointerdown === null) o.pointerdown = Date.now(); }, true);
  const rowOf = (n) => (n.matches && n.matches('[data-testid="orch-run-row"]')) ? [n]
    : (n.querySelectorAll ? Array.from(n.querySelectorAll('[data-testid="orch-run-row"]')) : []);
  const logsOf = (n) => (n.matches && n.matches('[data-testid="orch-log-line"]')) ? [n]
    : (n.querySelectorAll ? Array.from(n.querySelectorAll('[data-testid="orch-log-line"]')) : []);
  const mark = (row, now) => {
    const id = row.dataset.id, st = row.dataset.state;
    if (!(id in o.seen)) o.seen[id] = now;
    const k = id + ':' + st;
    if (!(k in o.states)) o.states[k] = now;
  };
  const obs = new MutationObserver((muts) => {
    const now = Date.now();
    for (const m of muts) {
      if (m.type === 'childList') {
        for (const n of m.addedNodes) {
          if (n.nodeType !== 1) continue;
          const rows = rowOf(n);
          if (rows.length && o.firstRow === null) o.firstRow = now;
          if (!o.armed) continue;
          for (const r of rows) mark(r, now);
          for (const l of logsOf(n)) {
            const t = /tick (\\d+\\.\\d+)/.exec(l.textContent || '');
            if (t && o.logLags.length < 100000) o.logLags.push(now - parseFloat(t[1]) * 1000);
          }
        }
      } else if (o.armed && m.type === 'attributes' && m.target.matches &&
                 m.target.matches('[data-testid="orch-run-row"]')) {
        mark(m.target, now);
      }
    }
  });
  const start = () => obs.observe(document.documentElement, {
    childList: true, subtree: true, attributes: true, attributeFilter: ['data-state', 'data-id']});
  if (document.documentElement) start(); else document.addEventListener('DOMContentLoaded', start);
})();
"""


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, max(0, int(round(p / 100 * len(s))) - 1))], 1)


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50": pct(values, 50),
        "p90": pct(values, 90),
        "p99": pct(values, 99),
        "max": round(max(values), 1) if values else None,
    }


def slope_per_min(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) in value per minute."""
    if len(points) < 2:
        return None
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den * 60 if den else None


def wait_idle(api: Any, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not api.get("/tasks", state="pending,scheduled,running", limit=1)["tasks"]:
            return
        time.sleep(0.5)
    raise TimeoutError("the seeded tasks did not finish")


def open_lab(browser: Any, server: OrchServer) -> tuple[Any, Any, dict[str, Any]]:
    """A fresh context on /lab with the sidebar shown; the first-render timings."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    context.set_default_timeout(60_000)
    context.add_init_script(OBSERVER)
    page = context.new_page()
    api_calls: list[dict[str, Any]] = []
    started: dict[Any, float] = {}

    def on_request(req: Any) -> None:
        if "/orch/api/v1/" in req.url:
            started[req] = time.time() * 1000

    def on_finished(req: Any) -> None:
        if req in started:
            path = req.url.split("/orch/api/v1", 1)[1].split("&token")[0]
            api_calls.append({"path": path, "start": started.pop(req), "end": time.time() * 1000})

    page.on("request", on_request)
    page.on("requestfinished", on_finished)
    page.goto(f"{server.url}/lab?reset&token={server.jupyter_token}")
    expect(page.locator("#jupyterlab-splash")).to_have_count(0, timeout=120_000)
    sidebar = page.locator(SIDEBAR)
    clicked = None
    if not sidebar.is_visible():
        clicked = page.evaluate("Date.now()")
        page.locator(f'.jp-SideBar .lm-TabBar-tab[data-id="{SIDEBAR[1:]}"]').click()
    sidebar.locator(ROW).first.wait_for(state="attached", timeout=60_000)
    t = page.evaluate(
        "({origin: performance.timeOrigin, first: window.__orch.firstRow, down: window.__orch.pointerdown,"
        " rows: document.querySelectorAll('[data-testid=\"orch-run-row\"]').length})"
    )
    first = t["first"]
    render = {
        "navigation_to_rows_ms": round(first - t["origin"], 1),
        "click_to_rows_ms": round(first - clicked, 1) if clicked is not None else None,
        "pointerdown_to_rows_ms": round(first - t["down"], 1) if t["down"] else None,
        "rows_in_dom": t["rows"],
        "sidebar_shown_by_default": clicked is None,
    }
    expect(sidebar.locator('[data-testid="orch-connection"]')).to_have_attribute("data-state", "open")
    render["api_calls_ms_from_navigation"] = [
        {"path": c["path"], "start": round(c["start"] - t["origin"]), "end": round(c["end"] - t["origin"])}
        for c in api_calls
        if c["start"] < first
    ]
    return context, page, render


def sample(page: Any, cdp: Any, t0: float) -> dict[str, Any]:
    cdp.send("HeapProfiler.collectGarbage")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    dom = page.evaluate(
        """() => {
      const o = window.__orch; const lags = o.logLags; o.logLags = [];
      const logs = document.querySelectorAll('[data-testid="orch-log-line"]');
      const last = logs.length ? logs[logs.length - 1].textContent : '';
      const m = /tick (\\d+\\.\\d+)/.exec(last || '');
      return {nodes: document.getElementsByTagName('*').length,
              rows: document.querySelectorAll('[data-testid="orch-run-row"]').length,
              log_lines: logs.length, lags,
              last_line_age_ms: m ? Date.now() - parseFloat(m[1]) * 1000 : null};
    }"""
    )
    lags = dom.pop("lags")
    return {
        "t_s": round(time.monotonic() - t0, 1),
        "js_heap_used_mb": round(metrics["JSHeapUsedSize"] / 2**20, 2),
        "js_heap_total_mb": round(metrics["JSHeapTotalSize"] / 2**20, 2),
        "cdp_nodes": int(metrics.get("Nodes", 0)),
        "listeners": int(metrics.get("JSEventListeners", 0)),
        **dom,
        "log_lag_ms": summary(lags),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=5000, help="finished tasks seeded first")
    ap.add_argument("--streams", type=int, default=50, help="running tasks with streaming logs")
    ap.add_argument("--probes", type=int, default=100, help="tasks submitted one by one for latency")
    ap.add_argument("--loads", type=int, default=3, help="fresh page loads timed for first render")
    ap.add_argument("--minutes", type=float, default=10.0, help="minutes of streaming for memory")
    ap.add_argument("--interval", type=float, default=30.0, help="seconds between memory samples")
    ap.add_argument("--log-buffer-lines", type=int, default=0, help="the logBufferLines setting (0: default)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "sidebar.json"))
    args = ap.parse_args()

    from playwright.sync_api import expect, sync_playwright

    root = Path(tempfile.mkdtemp(prefix="bench-sidebar-"))
    package = json.loads((BUILT / "package.json").read_text())
    link = root / "data" / "labextensions" / package["name"]
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(BUILT, target_is_directory=True)
    _lab_settings(root / "config")
    if args.log_buffer_lines:
        mine = root / "config" / "lab" / "user-settings" / package["name"] / "plugin.jupyterlab-settings"
        mine.parent.mkdir(parents=True, exist_ok=True)
        mine.write_text(json.dumps({"logBufferLines": args.log_buffer_lines}))
    server = OrchServer(
        root,
        full=True,
        workers=2,
        args=[
            "--ServerApp.open_browser=False",
            "--OrchApp.worker_grace=3",
            f"--LocalProvider.slots_per_worker={(args.streams + 3) // 2 + 1}",
        ],
    )
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "params": vars(args) | {"out": None},
    }
    streams: list[str] = []
    try:
        server.start(timeout=120)
        server.wait_workers()
        api = server.api()

        t = time.monotonic()
        for start in range(0, args.tasks, 1000):
            batch = [
                {"kind": "shell", "command": "true", "name": f"seed-{i}"}
                for i in range(start, min(args.tasks, start + 1000))
            ]
            api.post("/tasks", {"tasks": batch})
        wait_idle(api)
        result["seed_s"] = round(time.monotonic() - t, 1)
        print(f"seeded {args.tasks} tasks in {result['seed_s']} s", flush=True)

        batch = [{"kind": "shell", "command": STREAM_CMD, "name": f"stream-{i}"} for i in range(args.streams)]
        streams = [v["id"] for v in api.post("/tasks", {"tasks": batch})["tasks"]]
        deadline = time.monotonic() + 120
        while (running := len(api.get("/tasks", state="running", limit=1000)["tasks"])) < args.streams:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {running} of the {args.streams} streaming tasks started")
            time.sleep(0.5)
        print(f"{args.streams} streaming tasks running", flush=True)

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                renders = []
                for _ in range(args.loads):
                    context, page, render = open_lab(browser, server)
                    renders.append(render)
                    print("first render", render, flush=True)
                    context.close()
                context, page, render = open_lab(browser, server)
                renders.append(render)
                result["first_render"] = {
                    "loads": renders,
                    "navigation_to_rows_ms": summary([r["navigation_to_rows_ms"] for r in renders]),
                    "click_to_rows_ms": summary(
                        [r["click_to_rows_ms"] for r in renders if r["click_to_rows_ms"]]
                    ),
                }

                # ---- event-to-DOM latency
                page.evaluate("window.__orch.armed = true")
                time.sleep(2)
                probes = []
                for i in range(args.probes):
                    view = api.post("/tasks", {"kind": "shell", "command": "true", "name": f"probe-{i}"})
                    probes.append(view["id"])
                    time.sleep(0.4)
                time.sleep(5)
                seen = page.evaluate("({seen: window.__orch.seen, states: window.__orch.states})")
                created, ended, missing_rows, missing_states = [], [], 0, 0
                for tid in probes:
                    view = api.get(f"/tasks/{tid}")
                    if tid in seen["seen"]:
                        created.append(seen["seen"][tid] - view["created_at"] * 1000)
                    else:
                        missing_rows += 1
                    k = f"{tid}:succeeded"
                    if view.get("ended_at") and k in seen["states"]:
                        ended.append(seen["states"][k] - view["ended_at"] * 1000)
                    else:
                        missing_states += 1
                result["event_to_dom_ms"] = {
                    "created_to_row": summary(created),
                    "ended_to_succeeded_state": summary(ended),
                    "rows_never_seen": missing_rows,
                    "succeeded_never_seen": missing_states,
                }
                print("latency", result["event_to_dom_ms"], flush=True)

                # ---- memory while one streaming task's log is shown
                target = f"stream-{args.streams // 2}"
                text = page.locator(SIDEBAR).locator('[data-testid="orch-filter-text"]')
                text.fill(target)
                row = page.locator(SIDEBAR).locator(f'{ROW}[data-id="{streams[args.streams // 2]}"]')
                row.click()
                text.fill("")
                lines = page.locator(SIDEBAR).locator('[data-testid="orch-log-line"]')
                expect(lines.first).to_be_attached(timeout=30_000)
                page.evaluate("window.__orch.logLags = []")
                cdp = page.context.new_cdp_session(page)
                cdp.send("Performance.enable")
                t0 = time.monotonic()
                samples = [sample(page, cdp, t0)]
                print("memory", samples[-1], flush=True)
                end = t0 + args.minutes * 60
                while time.monotonic() < end:
                    time.sleep(max(0.0, min(args.interval, end - time.monotonic())))
                    samples.append(sample(page, cdp, t0))
                    print("memory", samples[-1], flush=True)
                heap = [(s["t_s"], s["js_heap_used_mb"]) for s in samples]
                nodes = [(s["t_s"], float(s["nodes"])) for s in samples]
                all_lags = [s["log_lag_ms"]["p50"] for s in samples[1:] if s["log_lag_ms"]["p50"] is not None]
                result["memory"] = {
                    "minutes": args.minutes,
                    "selected_task": target,
                    "js_heap_used_mb": {
                        "start": heap[0][1],
                        "end": heap[-1][1],
                        "max": max(h for _, h in heap),
                        "slope_mb_per_min": round(slope_per_min(heap) or 0.0, 3),
                        "slope_after_first_minute_mb_per_min": round(
                            slope_per_min([h for h in heap if h[0] >= 60]) or 0.0, 3
                        ),
                    },
                    "dom_nodes": {
                        "start": int(nodes[0][1]),
                        "end": int(nodes[-1][1]),
                        "max": int(max(n for _, n in nodes)),
                        "slope_per_min": round(slope_per_min(nodes) or 0.0, 1),
                    },
                    "log_line_lag_p50_ms_per_interval": all_lags,
                    "samples": samples,
                }
                context.close()
            finally:
                browser.close()
    finally:
        try:
            api = server.api()
            for tid in streams:
                try:
                    api.post(f"/tasks/{tid}/cancel")
                except Exception as exc:  # a task that already ended
                    print("cancel", tid, exc, file=sys.stderr)
        except Exception as exc:
            print("cancel failed:", exc, file=sys.stderr)
        server.cleanup()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "memory"}, indent=1))
    print(json.dumps({k: v for k, v in result["memory"].items() if k != "samples"}, indent=1))


if __name__ == "__main__":
    main()
