"""Rich output from a task: ``display(obj)`` turns an object into a MIME bundle (as Jupyter
does: ``_repr_html_``, ``_repr_png_``, ``_repr_mimebundle_``, matplotlib figures, ...) and
hands it to the sink the executor installs, which sends it to the worker in order with the
task's stdout and stderr. Outside a task it prints the plain-text form.
"""

from __future__ import annotations

import base64
import io
import json
import sys
from collections.abc import Callable
from typing import Any

Bundle = dict[str, Any]  # {"data": {mime: value}, "metadata": {...}}

_sink: Callable[[Bundle], None] | None = None

_REPR_METHODS = (
    ("text/html", "_repr_html_"),
    ("text/markdown", "_repr_markdown_"),
    ("text/latex", "_repr_latex_"),
    ("image/svg+xml", "_repr_svg_"),
    ("image/png", "_repr_png_"),
    ("image/jpeg", "_repr_jpeg_"),
    ("application/json", "_repr_json_"),
)
_BINARY = frozenset({"image/png", "image/jpeg"})


def set_sink(sink: Callable[[Bundle], None] | None) -> None:
    global _sink
    _sink = sink


def display(*objs: Any, raw: bool = False, metadata: dict[str, Any] | None = None, **_: Any) -> None:
    """Show each object as the notebook would; ``raw=True`` takes ready MIME dicts."""
    for obj in objs:
        if raw:
            publish(dict(obj), metadata or {})
        else:
            data, meta = mime_bundle(obj)
            publish(data, {**meta, **(metadata or {})})


def publish(data: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
    for stream in (sys.stderr, sys.stdout):  # what was printed before comes before
        try:
            stream.flush()
        except Exception:
            pass
    sink = _sink
    if sink is None:
        print(data.get("text/plain", ""))
        return
    sink({"data": data, "metadata": metadata or {}})


def mime_bundle(obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    data: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    if isinstance(obj, type):  # a class's repr methods are unbound: show its name only
        return {"text/plain": repr(obj)}, meta
    if _is_figure(obj):
        buf = io.BytesIO()
        obj.savefig(buf, format="png", bbox_inches="tight")
        data["image/png"] = base64.b64encode(buf.getvalue()).decode("ascii")
    method = getattr(obj, "_repr_mimebundle_", None)
    if callable(method):
        try:
            got = method(include=None, exclude=None)
        except Exception:
            got = None
        if isinstance(got, tuple) and len(got) == 2:
            got, extra = got
            meta.update(extra or {})
        if isinstance(got, dict):
            data.update({k: _jsonable(k, v) for k, v in got.items()})
    for mime, name in _REPR_METHODS:
        if mime in data:
            continue
        method = getattr(obj, name, None)
        if not callable(method):
            continue
        try:
            value = method()
        except Exception:
            continue
        if isinstance(value, tuple) and len(value) == 2:
            value, extra = value
            if extra:
                meta[mime] = extra
        if value is not None:
            data[mime] = _jsonable(mime, value)
    data.setdefault("text/plain", _plain(obj))
    return data, meta


def _plain(obj: Any) -> str:
    try:
        return repr(obj)
    except Exception as exc:
        return f"<{type(obj).__name__} (repr failed: {exc})>"


def _jsonable(mime: str, value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        if mime in _BINARY or not value.isascii():
            return base64.b64encode(value).decode("ascii")
        return value.decode("ascii")
    if mime == "application/json" or mime.endswith("+json"):
        return json.loads(json.dumps(value, default=str))
    return value if isinstance(value, str) else str(value)


def _is_figure(obj: Any) -> bool:
    cls = type(obj)
    return cls.__name__ == "Figure" and cls.__module__.startswith("matplotlib") and hasattr(obj, "savefig")


def flush_figures() -> None:
    """Show every open matplotlib figure and close it (what a notebook does at the end of a
    cell); nothing when matplotlib was never imported."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    try:
        numbers = plt.get_fignums()
    except Exception:
        return
    for number in numbers:
        display(plt.figure(number))
    plt.close("all")
