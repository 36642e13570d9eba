"""What a cell task carries to its worker and what comes back.

The payload is an ordinary function-task call, ``run_cell(job)`` (pickled by reference:
workers have :mod:`jupyter_orch`), so inputs travel with the same pickling, out-of-band
buffers and dependency references as any function argument. The result blob is a pickled
:class:`CellResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class CellJob:
    source: str  # the cell body, plain Python
    filename: str  # how tracebacks name the cell, e.g. "<orch In[3]>"
    first_line: int = 1  # the body's first line in the notebook cell (2 under %%orch run)
    inputs: dict[str, Any] = field(default_factory=dict)
    modules: dict[str, str] = field(default_factory=dict)  # name -> module imported again there
    outputs: tuple[str, ...] = ()
    display_last: bool = False


@dataclass
class CellResult:
    outputs: dict[str, Any] = field(default_factory=dict)
    modules: dict[str, str] = field(default_factory=dict)  # modules the cell bound to output names
    has_value: bool = False  # the last expression's value (shown like a cell's Out[n])
    value: Any = None
    value_bundle: dict[str, Any] | None = None  # its rich display, when the value itself cannot travel
    left_behind: dict[str, str] = field(default_factory=dict)  # output name -> why it could not come back
