"""``python -m jupyter_orch.worker --server URL --token T``: run a worker."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
