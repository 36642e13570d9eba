"""The kernel side of jupyter-orch: ``%load_ext jupyter_orch`` registers the ``%%orch`` /
``%orch`` magics (:mod:`.magics`); :mod:`.cells` sends a cell and binds what comes back;
:mod:`.output` shows a task's output in the running cell; :mod:`.displays` registers the
notebook views of futures, runs and progress with the client when this package is imported
(``displays.install()``, also what the package root calls when IPython runs).
"""

from __future__ import annotations

from typing import Any

from . import displays

displays.install()


def load_ipython_extension(ipython: Any) -> None:
    from .magics import OrchMagics

    displays.install()
    ipython.register_magics(OrchMagics)
