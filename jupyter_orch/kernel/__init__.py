"""The kernel side of jupyter-orch: ``%load_ext jupyter_orch`` registers the ``%%orch`` /
``%orch`` magics (:mod:`.magics`); :mod:`.cells` sends a cell and binds what comes back;
:mod:`.output` shows a task's output in the running cell.
"""

from __future__ import annotations

from typing import Any


def load_ipython_extension(ipython: Any) -> None:
    from .magics import OrchMagics

    ipython.register_magics(OrchMagics)
