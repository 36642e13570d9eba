"""Who may see and change what: deny by default.

A caller is an :class:`Identity`: a user name, the groups and the JupyterHub scopes it
holds, and whether it is an admin of the hub. A user sees and acts on their own tasks,
runs, logs, results, schedules, workers and tokens only. Wider rights come from
JupyterHub's RBAC, never from being logged in: the custom scope ``custom:orch:read-all``
lets a user read everyone's work; ``custom:orch:admin`` (or being a hub admin) lets them
also change it, and manage shared workers and their tokens. On a personal server (one user,
``owner_from = "server"``) that user is its admin.

Pure: no web framework here; the server turns its authenticated user into an Identity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import Forbidden

SCOPE_READ_ALL = "custom:orch:read-all"
SCOPE_ADMIN = "custom:orch:admin"


@dataclass(frozen=True)
class Identity:
    name: str
    groups: frozenset[str] = field(default_factory=frozenset)
    scopes: frozenset[str] = field(default_factory=frozenset)
    admin: bool = False  # a hub admin, or the one user of a personal server

    @classmethod
    def from_hub_model(cls, model: Mapping[str, Any]) -> Identity:
        """From a JupyterHub user model (``name``, ``groups``, ``scopes``, ``admin``), as the
        hub's OAuth and API tokens give it."""
        return cls(
            name=str(model.get("name") or ""),
            groups=_names(model.get("groups")),
            scopes=_names(model.get("scopes")),
            admin=model.get("admin") is True,
        )

    @property
    def is_admin(self) -> bool:
        """May change anyone's work and manage shared workers and tokens."""
        return self.admin or SCOPE_ADMIN in self.scopes

    @property
    def reads_all(self) -> bool:
        """May read anyone's work."""
        return self.is_admin or SCOPE_READ_ALL in self.scopes

    def may_read(self, owner: str) -> bool:
        return owner == self.name or self.reads_all

    def may_change(self, owner: str) -> bool:
        return owner == self.name or self.is_admin

    def read_filter(self) -> str | None:
        """The owner a lookup is restricted to (None: anyone's)."""
        return None if self.reads_all else self.name

    def change_filter(self) -> str | None:
        """The owner a change is restricted to (None: anyone's)."""
        return None if self.is_admin else self.name

    def listed_owner(self, requested: str | None) -> str | None:
        """Whose work a listing shows: the caller's own by default; another user's (or
        everyone's, ``*``) only with the right to read all, else :class:`Forbidden`."""
        if requested is None or requested == self.name:
            return self.name
        if not self.reads_all:
            raise Forbidden(
                f"you may list only your own work ({self.name}); reading other users' needs the "
                f"JupyterHub scope {SCOPE_READ_ALL}",
                field="owner",
            )
        return None if requested == "*" else requested

    def require_read_all(self, what: str) -> None:
        if not self.reads_all:
            raise Forbidden(f"{what} needs the JupyterHub scope {SCOPE_READ_ALL} (or {SCOPE_ADMIN})")

    def require_admin(self, what: str) -> None:
        if not self.is_admin:
            raise Forbidden(f"{what} needs the JupyterHub scope {SCOPE_ADMIN} (or a hub admin)")


def _names(value: object) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        return frozenset()
    return frozenset(str(v) for v in value if isinstance(v, str))
