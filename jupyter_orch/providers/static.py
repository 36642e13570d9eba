"""The static provider: workers started by hand anywhere, each with a token the server
issued (``jupyter orch token create NAME`` or ``POST /orch/api/v1/workers/tokens``)."""

from __future__ import annotations

from typing import Any

from .base import Provider


class StaticProvider(Provider):
    name = "static"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hint": "start workers with: jupyter orch worker --server URL --token TOKEN",
        }
