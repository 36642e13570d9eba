"""Whether a task's pickles can be read here, and what to say when they cannot: a refusal
before unpickling when the client's Python or cloudpickle differs from ours, and failures
that name the missing module or code (with the pip name to install)."""

from __future__ import annotations

import platform
from typing import Any

from .. import serialization

Reply = tuple[dict[str, Any], bytes]  # a task's reply to the worker: header fields, result blob

# Where a pip distribution name differs from the module people import.
_PIP_NAMES = {
    "sklearn": "scikit-learn",
    "cv2": "opencv-python",
    "PIL": "Pillow",
    "yaml": "pyyaml",
    "bs4": "beautifulsoup4",
    "skimage": "scikit-image",
    "attr": "attrs",
    "dateutil": "python-dateutil",
}


def _env_mismatch(client_env: Any) -> str | None:
    """A sentence on how the submitting client's Python/cloudpickle differ from ours."""
    if not isinstance(client_env, dict):
        return None
    ours = serialization.environment()
    theirs_py = str(client_env.get("python") or "")
    theirs_cp = str(client_env.get("cloudpickle") or "")
    py_differs = bool(theirs_py) and theirs_py.split(".")[:2] != ours["python"].split(".")[:2]
    cp_differs = bool(theirs_cp) and theirs_cp != ours["cloudpickle"]
    if not (py_differs or cp_differs):
        return None
    return (
        f"the task was pickled with Python {theirs_py or '?'} and cloudpickle {theirs_cp or '?'}, "
        f"but this worker has Python {ours['python']} and cloudpickle {ours['cloudpickle']}"
    )


def incompatible(client_env: Any, worker: str) -> Reply | None:
    """Refuse, before unpickling, a payload made where Python's or cloudpickle's minor
    version differs from ours: code pickled by value (notebook functions, cells) does not
    survive that, and the unpickling traceback would not say why."""
    if not isinstance(client_env, dict):
        return None
    ours = serialization.environment()
    theirs_py = str(client_env.get("python") or "")
    theirs_cp = str(client_env.get("cloudpickle") or "")
    if theirs_py and theirs_py.split(".")[:2] != ours["python"].split(".")[:2]:
        error = (
            f"the task was pickled with Python {theirs_py}, but worker {worker} runs Python {ours['python']}: "
            f"use an image (or worker) with Python {'.'.join(theirs_py.split('.')[:2])}, "
            f"or submit from a kernel with Python {'.'.join(ours['python'].split('.')[:2])}"
        )
    elif theirs_cp and theirs_cp.split(".")[:2] != ours["cloudpickle"].split(".")[:2]:
        error = (
            f"the task was pickled with cloudpickle {theirs_cp}, but worker {worker} has cloudpickle "
            f"{ours['cloudpickle']}: install the same version on both (pip install cloudpickle=={theirs_cp} "
            "on the worker, or use an image that has it)"
        )
    else:
        return None
    return {"ok": False, "error_kind": "environment", "error": error}, b""


def unpickling_failure(exc: BaseException, what: str, header: dict[str, Any], worker: str) -> Reply:
    mismatch = _env_mismatch(header.get("client_env"))
    python = f"Python {platform.python_version()}"
    if isinstance(exc, ModuleNotFoundError):
        module = (exc.name or str(exc)).split(".")[0]
        pip_name = _PIP_NAMES.get(module, module)
        kind = "environment"
        error = (
            f"module {module!r} is not installed on worker {worker} ({python}): "
            f"install it there (pip install {pip_name}) or use an image that has it"
        )
    elif isinstance(exc, ImportError) or (
        isinstance(exc, AttributeError) and "Can't get attribute" in str(exc)
    ):
        kind = "environment"
        error = (
            f"{what} needs code that worker {worker} ({python}) does not have "
            f"({type(exc).__name__}: {exc}): install the same versions there or use an image that has them"
        )
    else:
        kind = "bad_payload"
        error = f"{what} could not be unpickled: {type(exc).__name__}: {exc}"
    if mismatch:
        error += f"; note: {mismatch}"
    return {"ok": False, "error_kind": kind, "error": error}, b""
