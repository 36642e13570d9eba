"""The Orchestrator dashboard under load (issue 16's benchmarks), run by hand.

A whole Jupyter server with JupyterLab and the extension built in this checkout (started as
the browser tests start it, ``tests/lab/conftest.py``, with ``window.jupyterapp`` exposed),
local workers, SQLite in a temporary data dir; Debian's Chromium driven by Playwright with
the tests' flags. Each part has its own server and is measured ``--repeat`` times:

* ``dag``: 5,000 finished shell tasks, a 200-step workflow run (20 layers of 10; each step
  needs two of the layer before, every third one also a step two layers back) and
  ``--waiting`` tasks that can never be placed (they ask for 8 GPUs). On a fresh page
  (workspace reset) whose sidebar has loaded its runs, ``jupyter-orch:dashboard`` is
  executed with ``{panel}``; from that call to the DOM holding the panel's content (the
  DAG's 200 step boxes; the queue's rows; the timeline's lanes) seen by a MutationObserver,
  and to the frame after it (``requestAnimationFrame`` then ``setTimeout(0)``: painted by
  then). For the timeline also the end of its first draw and of the first draw that holds
  the server's history (``GET /timeline``: the 5,000 tasks' bars), timed by wrapping the
  panel's ``onFrame`` from outside (no source changed). ``--loads`` fresh pages per panel.
* ``timeline``: 2 workers, each with 32 GPUs of the stand-in ``pynvml``
  (``tests/support/fakenvml``, ``FAKE_GPUS=64`` shared out round-robin) and 32 slots; 50
  shell tasks asking for a GPU each, sleeping. The timeline shown (follow mode, 1 h): for
  ``--seconds`` s every ``requestAnimationFrame`` timestamp (frame intervals, dropped frames
  at 60 fps) and the time of the panel's own ``onFrame`` and ``draw`` (wrapped from outside);
  then the same page with the dashboard on its queue tab (the timeline's frame loop stops)
  as the baseline of this headless browser on this machine.
* ``metrics``: 1 worker; a task reports one point, waits for a file, then reports
  ``--rate`` points a second for ``--metric-seconds`` s (``jupyter_orch.report``, which
  stamps each point with the wall clock; the task keeps the same stamps and returns them).
  The Experiments panel shows the task (its box ticked, as a user would). A MutationObserver
  sees each redraw of the line (``data-count``: points drawn so far); per point, from its
  stamp to the first redraw whose count includes it (DOM) and to the frame after (painted).

    .venv/bin/python benchmarks/bench_dashboard.py                 # writes results/dashboard.json
    .venv/bin/python benchmarks/bench_dashboard.py --parts timeline --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from lab.conftest import BUILT, CHROMIUM, CHROMIUM_ARGS, SIDEBAR, _lab_settings  # noqa: E402

from support.orchserver import OrchServer  # noqa: E402

FAKE_NVML = REPO / "tests" / "support" / "fakenvml"
ROW = '[data-testid="orch-run-row"]'
DASH = "#jupyter-orch-dashboard"
FRAME_MS = 1000 / 60

# Open the dashboard on `panel` and time it: from the command's call to the DOM holding `n`
# elements matching `sel` (a MutationObserver), to the next frame, and to just after it.
# With `wrap`, the timeline panel's onFrame is wrapped (before its first frame: the command's
# promise settles before the next animation frame) to time each of its frames.
OPEN_AND_TIME = """
async ({panel, sel, n, wrap}) => {
  const t0 = performance.now();
  const out = {dom_ms: null, frame_ms: null, painted_ms: null};
  const count = () => document.querySelectorAll(sel).length;
  const seen = new Promise(resolve => {
    const fire = () => {
      out.dom_ms = performance.now() - t0;
      requestAnimationFrame(() => {
        out.frame_ms = performance.now() - t0;
        setTimeout(() => { out.painted_ms = performance.now() - t0; resolve(); }, 0);
      });
    };
    const obs = new MutationObserver(() => { if (count() >= n) { obs.disconnect(); fire(); } });
    obs.observe(document.body, {childList: true, subtree: true});
    setTimeout(() => { obs.disconnect(); resolve(); }, 60000);
  });
  const dash = await window.jupyterapp.commands.execute('jupyter-orch:dashboard', {panel});
  out.executed_ms = performance.now() - t0;
  if (panel === 'dag') {
    // the DAG's layout and SVG, built once the run's steps are read (GET /runs/{id})
    const p = dash.panel('dag');
    const draw = p.draw;
    p.draw = function (steps) {
      const a = performance.now();
      draw.call(p, steps);
      out.dag_draw_start_ms = a - t0;
      out.dag_draw_ms = performance.now() - a;
    };
  }
  if (wrap) {
    const p = dash.panel('timeline');
    const frames = [];
    window.__benchFrames = frames;
    const onFrame = p.onFrame.bind(p);
    p.onFrame = () => {
      const a = performance.now();
      onFrame();
      const b = performance.now();
      frames.push({end: b - t0, ms: b - a, bars: p.lay.all.length, server: p.serverSpans.length,
                   lanes: p.lay.lanes.length});
    };
  }
  await seen;
  out.found = count();
  return out;
}
"""

# A frame recorder for the timeline: rAF timestamps for `seconds`, and (wrapped from outside)
# the panel's onFrame and draw times over the same span.
RECORD_FRAMES = """
async ({seconds, wrap}) => {
  const dash = await window.jupyterapp.commands.execute('jupyter-orch:dashboard', {});
  const p = dash.panel('timeline');
  const calls = {onFrame: [], draw: []};
  let restore = () => undefined;
  if (wrap) {
    const onFrame = p.onFrame, draw = p.draw;
    p.onFrame = function () { const a = performance.now(); onFrame.call(p); calls.onFrame.push(performance.now() - a); };
    p.draw = function (now) { const a = performance.now(); draw.call(p, now); calls.draw.push(performance.now() - a); };
    restore = () => { delete p.onFrame; delete p.draw; };
  }
  const stamps = [];
  const end = performance.now() + seconds * 1000;
  await new Promise(resolve => {
    const f = ts => { stamps.push(ts); if (ts < end) requestAnimationFrame(f); else resolve(); };
    requestAnimationFrame(f);
  });
  restore();
  return {stamps, calls, bars: p.lay.all.length, lanes: p.lay.lanes.length,
          running: p.lay.all.filter(b => b.span.ended_at === null).length,
          visible_lanes: p.visibleLanes(), status: document.querySelector('[data-testid="orch-timeline-status"]')?.textContent};
}
"""

# Every redraw of the chosen task's line: (Date.now(), data-count), and the time just after
# the frame that painted it. Also the Experiments panel's drawCharts time, wrapped.
METRIC_OBSERVER = """
async (task) => {
  const dash = await window.jupyterapp.commands.execute('jupyter-orch:dashboard', {});
  const p = dash.panel('experiments');
  const o = {draws: [], charts: [], frames: []};
  window.__benchMetrics = o;
  const drawCharts = p.drawCharts;
  p.drawCharts = function () { const a = performance.now(); drawCharts.call(p); o.charts.push(performance.now() - a); };
  const sel = `path[data-testid="orch-exp-line"][data-task="${task}"]`;
  const root = document.querySelector('[data-testid="orch-exp-charts"]');
  const obs = new MutationObserver(() => {
    const line = root.querySelector(sel);
    if (!line) return;
    const count = parseInt(line.getAttribute('data-count') || '0', 10);
    const last = o.draws[o.draws.length - 1];
    if (last && last.count === count) return;
    const rec = {t: Date.now(), count, painted: null};
    o.draws.push(rec);
    requestAnimationFrame(() => setTimeout(() => { rec.painted = Date.now(); }, 0));
  });
  obs.observe(root, {childList: true, subtree: true, attributes: true, attributeFilter: ['data-count']});
  o.stop = () => obs.disconnect();
  const f = ts => { o.frames.push(ts); if (!o.done) requestAnimationFrame(f); };
  requestAnimationFrame(f);
  return true;
}
"""


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, max(0, int(round(p / 100 * len(s))) - 1))], 1)


def summary(values: list[float], ps: tuple[int, ...] = (50, 95, 99)) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(values)}
    for p in ps:
        out[f"p{p}"] = pct(values, p)
    out["max"] = round(max(values), 1) if values else None
    out["mean"] = round(statistics.fmean(values), 2) if values else None
    return out


def machine() -> dict[str, Any]:
    def sh(cmd: str) -> str:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()

    return {
        "uname": " ".join(platform.uname()),
        "cpus": os.cpu_count(),
        "mem": sh("free -m | sed -n 2p"),
        "python": sys.version.split()[0],
        "chromium": sh(f"{CHROMIUM} --version"),
    }


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def make_server(tag: str, workers: int, slots: int, fake_gpus: int = 0) -> OrchServer:
    root = Path(tempfile.mkdtemp(prefix=f"orch_bdash_{tag}_"))
    package = json.loads((BUILT / "package.json").read_text())
    link = root / "data" / "labextensions" / package["name"]
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(BUILT, target_is_directory=True)
    _lab_settings(root / "config")
    env = {"MPLBACKEND": "agg", "JUPYTER_PREFER_ENV_PATH": "0"}
    if fake_gpus:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(FAKE_NVML), os.environ.get("PYTHONPATH", "")) if p
        )
        env["FAKE_GPUS"] = str(fake_gpus)
    return OrchServer(
        root,
        full=True,
        workers=workers,
        args=[
            "--ServerApp.open_browser=False",
            "--OrchApp.worker_grace=3",
            f"--LocalProvider.slots_per_worker={slots}",
            f"--LocalProvider.cpus_per_worker={slots}",  # a CPU a slot: the slots are the limit
            "--LabApp.expose_app_in_browser=True",
        ],
        env=env,
    )


def wait_idle(api: Any, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not api.get("/tasks", state="pending,scheduled,running", limit=1)["tasks"]:
            return
        time.sleep(0.5)
    raise TimeoutError("the seeded tasks did not finish")


def open_lab(browser: Any, server: OrchServer, settle: float) -> tuple[Any, Any]:
    """A fresh context on /lab (workspace reset) whose sidebar shows its runs, then `settle`
    seconds for the older pages of tasks to arrive (the store full, as a user would find it)."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    context.set_default_timeout(60_000)
    page = context.new_page()
    page.on("pageerror", lambda exc: print("pageerror:", exc, file=sys.stderr))
    page.goto(f"{server.url}/lab?reset&token={server.jupyter_token}")
    expect(page.locator("#jupyterlab-splash")).to_have_count(0, timeout=120_000)
    page.wait_for_function("() => !!window.jupyterapp", timeout=60_000)
    sidebar = page.locator(SIDEBAR)
    if not sidebar.is_visible():
        page.locator(f'.jp-SideBar .lm-TabBar-tab[data-id="{SIDEBAR[1:]}"]').click()
    sidebar.locator(ROW).first.wait_for(state="attached", timeout=60_000)
    expect(sidebar.locator('[data-testid="orch-connection"]')).to_have_attribute("data-state", "open")
    time.sleep(settle)
    return context, page


def workflow_doc(name: str, layers: int = 20, width: int = 10) -> dict[str, Any]:
    tasks = []
    for layer in range(layers):
        for i in range(width):
            deps = []
            if layer:
                deps = [f"s{layer - 1}-{i}", f"s{layer - 1}-{(i + 1) % width}"]
            if layer >= 2 and (layer * width + i) % 3 == 0:
                deps.append(f"s{layer - 2}-{(i + 3) % width}")
            step: dict[str, Any] = {"name": f"s{layer}-{i}", "shell": "true"}
            if deps:
                step["depends"] = deps
            tasks.append(step)
    return {"name": name, "tasks": tasks}


# ---------------------------------------------------------------------------- part 1: first render


def part_dag(args: argparse.Namespace, browser: Any) -> dict[str, Any]:
    server = make_server("dag", workers=2, slots=16)
    out: dict[str, Any] = {"load_before": loadavg()}
    try:
        server.start(timeout=180)
        server.wait_workers()
        api = server.api()
        client = server.client()
        t = time.monotonic()
        for start in range(0, args.tasks, 1000):
            batch = [
                {"kind": "shell", "command": "true", "name": f"seed-{i}"}
                for i in range(start, min(args.tasks, start + 1000))
            ]
            api.post("/tasks", {"tasks": batch})
        wait_idle(api)
        out["seed_s"] = round(time.monotonic() - t, 1)
        t = time.monotonic()
        doc = workflow_doc(f"bench-dag-{uuid.uuid4().hex[:6]}")
        run = client.submit_workflow(doc)
        final = run.wait(timeout=900)
        out["workflow"] = {
            "steps": len(doc["tasks"]),
            "state": final.get("state"),
            "run_s": round(time.monotonic() - t, 1),
        }
        for i in range(args.waiting):
            client.submit_shell("true", gpus=8, name=f"waiting-{i}")  # no worker has 8 GPUs
        print(f"seeded {args.tasks} tasks in {out['seed_s']} s; workflow {out['workflow']}", flush=True)

        lanes = 2 * 16
        targets = {
            "dag": ('[data-testid="orch-dagp-node"]', len(doc["tasks"]), False),
            "queue": ('[data-testid="orch-queue-row"]', args.waiting, False),
            "timeline": ('[data-testid="orch-timeline-lane"]', lanes, True),
        }
        loads: dict[str, list[dict[str, Any]]] = {k: [] for k in targets}
        for i in range(args.loads):
            for panel, (sel, n, wrap) in targets.items():
                context, page = open_lab(browser, server, args.settle)
                try:
                    r = page.evaluate(
                        OPEN_AND_TIME, {"panel": panel, "sel": f"{DASH} {sel}", "n": n, "wrap": wrap}
                    )
                    if wrap:
                        time.sleep(3)  # the history read (GET /timeline) and drawn
                        frames = page.evaluate("window.__benchFrames")
                        r["first_draw_ms"] = round(frames[0]["end"], 1) if frames else None
                        r["first_draw_own_ms"] = round(frames[0]["ms"], 1) if frames else None
                        full = [f for f in frames if f["server"] > 0]
                        r["history_drawn_ms"] = round(full[0]["end"], 1) if full else None
                        r["history_draw_own_ms"] = round(full[0]["ms"], 1) if full else None
                        r["bars"] = full[0]["bars"] if full else (frames[-1]["bars"] if frames else None)
                        r["frames_seen"] = len(frames)
                        r["onframe_ms_after_history"] = summary([f["ms"] for f in full[1:]])
                    r["queue_tab"] = page.evaluate(
                        "document.querySelector('[data-testid=\"orch-dash-tab-queue\"]')?.textContent"
                    )
                    r = {k: round(v, 1) if isinstance(v, float) else v for k, v in r.items()}
                    print(f"load {i + 1} {panel}: {r}", flush=True)
                    loads[panel].append(r)
                finally:
                    context.close()
        out["loads"] = loads
        out["summary"] = {}
        for panel in targets:
            rs = loads[panel]
            s = {
                "dom_ms": summary([r["dom_ms"] for r in rs if r["dom_ms"] is not None], (50, 95)),
                "painted_ms": summary([r["painted_ms"] for r in rs if r["painted_ms"] is not None], (50, 95)),
                "missed": sum(1 for r in rs if r["dom_ms"] is None),
            }
            if panel == "timeline":
                s["history_drawn_ms"] = summary(
                    [r["history_drawn_ms"] for r in rs if r.get("history_drawn_ms") is not None], (50, 95)
                )
                s["first_draw_ms"] = summary(
                    [r["first_draw_ms"] for r in rs if r.get("first_draw_ms")], (50, 95)
                )
            out["summary"][panel] = s
    finally:
        out["load_after"] = loadavg()
        server.cleanup()
    return out


# ---------------------------------------------------------------------------- part 2: timeline frames


def frame_stats(stamps: list[float]) -> dict[str, Any]:
    iv = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    dropped = sum(max(0, round(x / FRAME_MS) - 1) for x in iv)
    span = (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0
    return {
        "frames": len(iv),
        "seconds": round(span / 1000, 2),
        "fps": round(len(iv) / (span / 1000), 1) if span else None,
        "interval_ms": summary(iv),
        "long_frames_over_25ms": sum(1 for x in iv if x > 25),
        "dropped_at_60fps": dropped,
        "dropped_pct": round(100 * dropped / max(1, dropped + len(iv)), 2),
    }


def part_timeline(args: argparse.Namespace, browser: Any) -> dict[str, Any]:
    server = make_server("tl", workers=2, slots=32, fake_gpus=64)
    out: dict[str, Any] = {"load_before": loadavg()}
    try:
        server.start(timeout=180)
        workers = server.wait_workers()
        gpus = sum(len(w.get("gpus") or []) for w in workers.values())
        out["workers"] = len(workers)
        out["gpus"] = gpus
        client = server.client()
        api = server.api()
        ids = [client.submit_shell("sleep 3600", gpus=1, name=f"gpu-{i}").id for i in range(args.running)]
        deadline = time.monotonic() + 180
        while (running := len(api.get("/tasks", state="running", limit=1000)["tasks"])) < args.running:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {running} of {args.running} GPU tasks started")
            time.sleep(0.5)
        print(f"{gpus} GPUs on {len(workers)} workers, {args.running} tasks running", flush=True)
        out["repeats"] = []
        for rep in range(args.repeat):
            context, page = open_lab(browser, server, args.settle)
            try:
                page.evaluate(
                    "window.jupyterapp.commands.execute('jupyter-orch:dashboard', {panel: 'timeline'})"
                )
                page.locator(f'{DASH} [data-testid="orch-timeline-lane"]').nth(gpus - 1).wait_for(
                    state="attached"
                )
                page.wait_for_function(
                    f"() => /{args.running} running/.test(document.querySelector("
                    "'[data-testid=\"orch-timeline-status\"]')?.textContent || '')",
                    timeout=60_000,
                )
                time.sleep(2)
                r: dict[str, Any] = {"load": loadavg()}
                rec = page.evaluate(RECORD_FRAMES, {"seconds": args.seconds, "wrap": True})
                r["timeline"] = frame_stats(rec["stamps"])
                r["timeline"]["onFrame_ms"] = summary(rec["calls"]["onFrame"])
                r["timeline"]["draw_ms"] = summary(rec["calls"]["draw"])
                r["timeline"]["bars"] = rec["bars"]
                r["timeline"]["lanes"] = rec["lanes"]
                r["timeline"]["running"] = rec["running"]
                r["timeline"]["visible_lanes"] = rec["visible_lanes"]
                r["timeline"]["status"] = rec["status"]
                # the same page, the same wrapper cost, no wrapper: the frames alone
                rec2 = page.evaluate(RECORD_FRAMES, {"seconds": args.seconds, "wrap": False})
                r["timeline_unwrapped"] = frame_stats(rec2["stamps"])
                # baseline: the dashboard on its queue tab (the timeline's frame loop stops)
                page.evaluate(
                    "window.jupyterapp.commands.execute('jupyter-orch:dashboard', {panel: 'queue'})"
                )
                time.sleep(1)
                base = page.evaluate(
                    """async (seconds) => { const s = []; const end = performance.now() + seconds * 1000;
                    await new Promise(r => { const f = ts => { s.push(ts); if (ts < end) requestAnimationFrame(f); else r(); };
                    requestAnimationFrame(f); }); return s; }""",
                    args.seconds,
                )
                r["baseline_queue_tab"] = frame_stats(base)
                r["load_after"] = loadavg()
                print(f"timeline repeat {rep + 1}: {json.dumps(r)}", flush=True)
                out["repeats"].append(r)
            finally:
                context.close()
        for tid in ids:
            try:
                api.post(f"/tasks/{tid}/cancel")
            except Exception as exc:
                print("cancel", tid, exc, file=sys.stderr)
    finally:
        out["load_after"] = loadavg()
        server.cleanup()
    return out


# ---------------------------------------------------------------------------- part 3: metrics


def reporter(go: str, rate: float, seconds: float) -> list[float]:
    """One point, then wait for `go`; then `rate` points a second, paced against the clock.
    Returns each streamed point's wall-clock stamp (``report`` stamps it the same way)."""
    import os
    import time

    import jupyter_orch

    jupyter_orch.report(step=0, loss=1.0)
    while not os.path.exists(go):
        time.sleep(0.01)
    n = int(rate * seconds)
    stamps = []
    start = time.perf_counter()
    for i in range(1, n + 1):
        stamps.append(time.time())
        jupyter_orch.report(step=i, loss=1.0 / (i + 1))
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    return stamps


def part_metrics(args: argparse.Namespace, browser: Any) -> dict[str, Any]:
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    server = make_server("met", workers=1, slots=2)
    out: dict[str, Any] = {"load_before": loadavg(), "rate": args.rate, "seconds": args.metric_seconds}
    try:
        server.start(timeout=180)
        server.wait_workers()
        client = server.client()
        out["repeats"] = []
        for rep in range(args.repeat):
            go = Path(tempfile.mkdtemp(prefix="orch_bdash_go_")) / "go"
            fut = client.submit(reporter, str(go), args.rate, args.metric_seconds, name=f"metrics-{rep}")
            context, page = open_lab(browser, server, 1.0)
            try:
                page.evaluate(
                    "window.jupyterapp.commands.execute('jupyter-orch:dashboard', {panel: 'experiments'})"
                )
                item = page.locator(f'{DASH} [data-testid="orch-exp-task"][data-id="{fut.id}"]')
                item.wait_for(state="attached", timeout=60_000)
                item.locator("input").check()
                page.locator(f'{DASH} path[data-testid="orch-exp-line"][data-task="{fut.id}"]').wait_for(
                    state="attached", timeout=30_000
                )
                page.evaluate(METRIC_OBSERVER, fut.id)
                time.sleep(0.5)
                go.write_text("go")
                stamps = fut.result(args.metric_seconds + 120)
                time.sleep(2)
                o = page.evaluate(
                    "() => { const o = window.__benchMetrics; o.stop(); o.done = true;"
                    " return {draws: o.draws, charts: o.charts, frames: o.frames}; }"
                )
            finally:
                context.close()
            draws = o["draws"]
            dom, painted, missing = [], [], 0
            j = 0
            for k, ts in enumerate(stamps, start=2):  # point k of the line (the first came before go)
                while j < len(draws) and draws[j]["count"] < k:
                    j += 1
                if j == len(draws):
                    missing += 1
                    continue
                dom.append((ts, draws[j]["t"] - ts * 1000))
                if draws[j]["painted"]:
                    painted.append((ts, draws[j]["painted"] - ts * 1000))
            steady = stamps[0] + 1.0
            r = {
                "points": len(stamps),
                "not_drawn": missing,
                "redraws": len(draws),
                "to_dom_ms": summary([v for _, v in dom], (50, 90, 99)),
                "to_painted_ms": summary([v for _, v in painted], (50, 90, 99)),
                "to_painted_steady_ms": summary([v for t, v in painted if t >= steady], (50, 90, 99)),
                "drawCharts_ms": summary(o["charts"]),
                "page_frames": frame_stats(o["frames"]),
                "load": loadavg(),
            }
            print(f"metrics repeat {rep + 1}: {json.dumps(r)}", flush=True)
            out["repeats"].append(r)
    finally:
        out["load_after"] = loadavg()
        server.cleanup()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="dag,timeline,metrics")
    ap.add_argument("--repeat", type=int, default=2, help="repeats of the timeline and metrics parts")
    ap.add_argument("--tasks", type=int, default=5000, help="finished tasks seeded for the first render")
    ap.add_argument("--waiting", type=int, default=50, help="tasks that never start (the queue)")
    ap.add_argument("--loads", type=int, default=5, help="fresh pages per panel for the first render")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds after the sidebar's rows appear")
    ap.add_argument("--running", type=int, default=50, help="GPU tasks running on the timeline")
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds of frames recorded")
    ap.add_argument("--rate", type=float, default=1000.0, help="metric points per second")
    ap.add_argument("--metric-seconds", type=float, default=20.0)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "dashboard.json"))
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    out_path = Path(args.out)
    result: dict[str, Any] = json.loads(out_path.read_text()) if out_path.exists() else {}
    result.setdefault("runs", [])
    run: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "params": vars(args) | {"out": None},
    }
    result["runs"].append(run)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        run["machine"]["browser"] = browser.version
        try:
            for part in args.parts.split(","):
                fn = {"dag": part_dag, "timeline": part_timeline, "metrics": part_metrics}[part]
                print(f"== {part} (load {loadavg()})", flush=True)
                try:
                    run[part] = fn(args, browser)
                except Exception as exc:  # the other parts still run; this one says why not
                    print(f"{part} failed: {exc!r}", file=sys.stderr, flush=True)
                    run[part] = {"error": repr(exc)}
                out_path.write_text(json.dumps(result, indent=1) + "\n")  # after each part
        finally:
            browser.close()
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
