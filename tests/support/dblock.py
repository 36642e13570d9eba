"""Another process's write lock on a SQLite database file, held until released: what a
commit meets when something else writes to the file."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any


class Locker:
    """Another process's write lock on the database file, held until released."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.locked = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=10)
        conn.execute("BEGIN EXCLUSIVE")
        self.locked.set()
        self.release.wait(30)
        conn.execute("ROLLBACK")
        conn.close()

    def __enter__(self) -> Locker:
        self.thread.start()
        assert self.locked.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release.set()
        self.thread.join(10)
