"""``python -m jupyter_orch``: the same as ``jupyter orch``."""

import sys

from .cli.main import main

sys.exit(main())
