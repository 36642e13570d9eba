"""Browser tests of the JupyterLab sidebar: a real Jupyter server with JupyterLab and the
extension (built in this checkout), real local workers, SQLite in a temporary data dir, and
Debian's Chromium driven by Playwright (``scripts/lab-test-deps.sh`` installs it; Playwright's
own browsers are never downloaded).

Screenshots go to ``$ORCH_LAB_ARTIFACTS`` (default ``tests/lab/artifacts/``, git-ignored);
with ``ORCH_LAB_UPDATE_DOCS=1`` they are also copied to ``docs/images/``. A failing test
leaves ``FAILED-<test>.png`` there too.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from support.orchserver import OrchServer

REPO = Path(__file__).resolve().parents[2]
BUILT = REPO / "jupyter_orch" / "labextension"
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
ARTIFACTS = Path(os.environ.get("ORCH_LAB_ARTIFACTS") or REPO / "tests" / "lab" / "artifacts")
DOCS_IMAGES = REPO / "docs" / "images"
SIDEBAR = "#jupyter-orch-sidebar"
SIDEBAR_WIDTH = 460


def extension_built() -> bool:
    """The prebuilt JupyterLab extension is in this checkout (``pip install -e .`` or
    ``scripts/build-labextension.sh`` puts it in ``jupyter_orch/labextension/``)."""
    return (BUILT / "package.json").is_file() and any((BUILT / "static").glob("remoteEntry.*.js"))


NOT_BUILT = (
    "the JupyterLab extension is not built: jupyter_orch/labextension/ (package.json, "
    "static/remoteEntry.*.js) is missing; build it with `pip install -e .` or "
    "scripts/build-labextension.sh"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if extension_built():
        return
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.skip(reason=NOT_BUILT))


def _lab_settings(config_dir: Path) -> None:
    """User settings of the test's JupyterLab: no news pop-up (it covers screenshots), no
    update check (no network), no dialog asking for a kernel."""
    settings = config_dir / "lab" / "user-settings" / "@jupyterlab"
    notification = settings / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True, exist_ok=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))


@contextlib.contextmanager
def lab_server(
    root: Path, args: Sequence[str] = (), env: dict[str, str] | None = None
) -> Iterator[OrchServer]:
    """A whole Jupyter server with JupyterLab and the extension, 2 local workers, SQLite in
    its own data dir under ``root`` (``args``, ``env``: more of them). The checkout's built
    extension is found first: it is linked into the server's JUPYTER_DATA_DIR/labextensions,
    which JupyterLab searches before sys.prefix."""
    package = json.loads((BUILT / "package.json").read_text())
    link = root / "data" / "labextensions" / package["name"]
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(BUILT, target_is_directory=True)
    _lab_settings(root / "config")
    server = OrchServer(
        root,
        full=True,
        workers=2,
        args=["--ServerApp.open_browser=False", "--OrchApp.worker_grace=3", *args],
        # this checkout's build (linked above) before a copy pip put into the environment
        env={"MPLBACKEND": "agg", "JUPYTER_PREFER_ENV_PATH": "0", **(env or {})},
    )
    try:
        server.start(timeout=120)
        server.wait_workers()
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrchServer]:
    with lab_server(tmp_path_factory.mktemp("lab")) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/lab-test-deps.sh (Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


class Lab:
    """The page of one test, opened on /lab with the Orchestrator sidebar showing."""

    def __init__(self, server: OrchServer, page: Any) -> None:
        self.server = server
        self.page = page
        self.sidebar = page.locator(SIDEBAR)

    def url(self, path: str = "lab", **query: str) -> str:
        from urllib.parse import urlencode

        query = {"reset": "", "token": self.server.jupyter_token, **query}
        return f"{self.server.url}/{path}?{urlencode(query)}"

    def open(self, path: str = "lab") -> None:
        from playwright.sync_api import expect

        self.page.goto(self.url(path))
        expect(self.page.locator("#jupyterlab-splash")).to_have_count(0, timeout=60_000)
        self.show_sidebar()

    def show_sidebar(self) -> None:
        from playwright.sync_api import expect

        if not self.sidebar.is_visible():
            tab = self.page.locator(f'.jp-SideBar .lm-TabBar-tab[data-id="{SIDEBAR[1:]}"]')
            tab.click()
        expect(self.sidebar).to_be_visible()
        self.widen()
        expect(self.sidebar.locator('[data-testid="orch-connection"]')).to_have_attribute(
            "data-state", "open", timeout=30_000
        )

    def widen(self, width: int = SIDEBAR_WIDTH) -> None:
        """Drag the left area's edge so the sidebar is ``width`` pixels wide, as a user
        watching runs would (the default 250 px truncates rows and the DAG)."""
        box = self.sidebar.bounding_box()
        if box is None or abs(box["width"] - width) < 4:
            return
        edge_x, mid_y = box["x"] + box["width"] + 2, box["y"] + box["height"] / 2
        mouse = self.page.mouse
        mouse.move(edge_x, mid_y)
        mouse.down()
        mouse.move(edge_x + width - box["width"], mid_y, steps=5)
        mouse.up()

    def section(self, name: str) -> Any:
        return self.sidebar.locator(f'[data-testid="orch-{name}"]')

    def row(self, kind: str, id_: str) -> Any:
        return self.sidebar.locator(f'[data-testid="orch-run-row"][data-kind="{kind}"][data-id="{id_}"]')

    def rows(self, text: str) -> Any:
        return self.sidebar.locator('[data-testid="orch-run-row"]').filter(has_text=text)

    def screenshot(self, name: str, target: Any = None) -> Path:
        """``name``.png of ``target`` (default: the sidebar) as an artifact (and in docs/images/
        with ORCH_LAB_UPDATE_DOCS=1)."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        (target if target is not None else self.sidebar).screenshot(path=str(path), animations="disabled")
        if os.environ.get("ORCH_LAB_UPDATE_DOCS") == "1":
            DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_IMAGES / f"sidebar-{name}.png")
        return path


@pytest.fixture
def ui(lab: OrchServer, browser: Any, request: pytest.FixtureRequest) -> Iterator[Lab]:
    """A fresh browser context on /lab (workspace reset) with the sidebar open; browser
    console errors and a screenshot of a failing test land in the artifacts."""
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    lab_page = Lab(lab, page)
    try:
        lab_page.open()
        yield lab_page
    finally:
        if request.node.stash.get(_FAILED, True):
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            try:
                page.screenshot(path=str(ARTIFACTS / f"FAILED-{request.node.name}.png"))
            except Exception:
                pass
            (ARTIFACTS / f"FAILED-{request.node.name}.console.txt").write_text("\n".join(errors))
        context.close()
