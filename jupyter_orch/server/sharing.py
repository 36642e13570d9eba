"""Sharing one server between users: the fair-share settings from the configuration, and,
in team mode, the JupyterHub's groups.

:class:`HubGroups` reads the hub's groups every ``interval`` seconds (the service's token
needs ``read:groups``): who is in each (so group quotas and weights apply to a user from the
start, not only after their first request), and each group's jupyter-orch settings from its
``properties`` in the hub, which override the configuration's for that group::

    PUT /hub/api/groups/ml-team/properties  {"orch": {"quota": {"gpus": 8}, "weight": 3}}

A group whose settings are wrong keeps the configuration's, and the log says why.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from ..core.errors import SpecError
from ..core.fairshare import Quota, Shares, weight_value

log = logging.getLogger("jupyter_orch.server")
PAGE = 200


def shares_from_settings(
    owner_from: str, quotas: Mapping[str, Any], weights: Mapping[str, Any], half_life: float
) -> Shares | None:
    """Quotas and fair share across users: on when the server is shared
    (``owner_from = "identity"``) or quotas or weights are set; errors name the setting."""
    if owner_from != "identity" and not quotas and not weights:
        return None
    try:
        return Shares.from_config(quotas, weights, half_life)
    except SpecError as exc:
        raise SpecError(f"c.OrchApp.{exc}", field=f"OrchApp.{exc.field}" if exc.field else None) from None


def with_group_settings(base: Shares, groups: list[dict[str, Any]]) -> tuple[Shares, list[str], list[str]]:
    """``base`` with the quota and weight each hub group's ``properties.orch`` sets; the
    groups whose settings came from the hub; the problems of those whose were left out."""
    quotas, weights = dict(base.groups), dict(base.group_weights)
    problems: list[str] = []
    applied: list[str] = []
    for group in groups:
        name = str(group.get("name"))
        settings = (group.get("properties") or {}).get("orch")
        if settings is None:
            continue
        try:
            if not isinstance(settings, Mapping) or set(settings) - {"quota", "weight"}:
                raise SpecError("properties.orch must be an object with quota and/or weight")
            if "quota" in settings:
                quotas[name] = Quota.from_dict(settings["quota"], "properties.orch.quota")
            if "weight" in settings:
                weights[name] = weight_value(settings["weight"], "properties.orch.weight")
            applied.append(name)
        except SpecError as exc:
            problems.append(f"hub group {name}: {exc}; the configuration's settings apply to it")
    return dataclasses.replace(base, groups=quotas, group_weights=weights), applied, problems


class HubGroups:
    """Keeps the engine's view of the hub's groups current (team mode)."""

    def __init__(
        self,
        base: Shares,
        api_url: str,
        token: str,
        interval: float,
        *,
        apply: Callable[[Shares, dict[str, frozenset[str]]], None],
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] = log,
    ) -> None:
        self.log = logger  # the server's: what it says shows with its other lines
        self.base = base
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.interval = interval
        self._apply = apply  # the merged settings, and each member's groups
        self._task: asyncio.Task[None] | None = None
        self._last: Any = None

    async def _groups(self) -> list[dict[str, Any]]:
        client = AsyncHTTPClient()
        out: list[dict[str, Any]] = []
        while True:
            request = HTTPRequest(
                f"{self.api_url}/groups?offset={len(out)}&limit={PAGE}",
                headers={"Authorization": f"token {self.token}"},
                request_timeout=30,
            )
            page = json.loads((await client.fetch(request)).body)
            out += page
            if len(page) < PAGE:
                return out

    async def refresh(self) -> None:
        groups = await self._groups()
        if groups == self._last:
            return
        self._last = groups
        shares, applied, problems = with_group_settings(self.base, groups)
        for problem in problems:
            self.log.error("%s", problem)
        members: dict[str, set[str]] = {}
        for group in groups:
            for user in group.get("users") or ():
                members.setdefault(str(user), set()).add(str(group["name"]))
        self._apply(shares, {u: frozenset(g) for u, g in members.items()})
        self.log.info(
            "jupyter-orch: %d hub group(s); settings from the hub for: %s",
            len(groups),
            ", ".join(sorted(applied)) or "none",
        )

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def _loop(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # the hub may be restarting: try again next time
                self.log.warning("jupyter-orch: could not read the hub's groups: %s", exc)
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
