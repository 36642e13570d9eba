"""Publishing ``jupyter_orch.output(name, value)`` from the kernel a notebook runs in (the
output itself is defined in :mod:`jupyter_orch.notebooks.outputs`)."""

from __future__ import annotations

from typing import Any

from ..notebooks.outputs import output_bundle


def output(name: str, value: Any) -> None:
    data = output_bundle(name, value)
    try:
        from IPython.display import publish_display_data
    except ImportError:  # not in a kernel: the plain text is all there is
        print(data["text/plain"])
        return
    publish_display_data(data)
