"""Several users on one server, as JupyterHub gives them: an ``IdentityProvider`` (the
jupyter_server seam every hub single-user server and service uses) that knows a few API
tokens, each a hub user model (name, groups, scopes, admin). The server under test runs it
with ``--ServerApp.identity_provider_class=support.identities.HubUsers`` and the models in
``ORCH_TEST_USERS`` (JSON: token -> model); the user object carries ``hub_user`` like
JupyterHub's own ``JupyterHubUser``. Jupyter's own token still works (a user of its own)."""

from __future__ import annotations

import inspect
import json
import os
from dataclasses import dataclass, field
from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User


@dataclass
class HubUser(User):
    hub_user: dict[str, Any] = field(default_factory=dict)


class HubUsers(IdentityProvider):
    def _models(self) -> dict[str, dict[str, Any]]:
        return json.loads(os.environ.get("ORCH_TEST_USERS", "{}"))

    async def get_user(self, handler: Any) -> User | None:  # type: ignore[override]
        scheme, _, secret = handler.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in ("token", "bearer"):
            secret = handler.get_argument("token", "")
        model = self._models().get(secret.strip())
        if model is None:  # Jupyter's own token (or none)
            user = super().get_user(handler)
            return await user if inspect.isawaitable(user) else user
        handler._token_authenticated = True  # token requests skip XSRF checks, as Jupyter's own
        return HubUser(username=model["name"], name=model["name"], hub_user=model)


def hub_users(**models: dict[str, Any]) -> dict[str, str]:
    """The server environment for users ``name=model`` (their token is ``<name>-token``)."""
    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    users = {
        f"{name}-token": {"name": name, "groups": [], "scopes": [], **model} for name, model in models.items()
    }
    path = os.pathsep.join(p for p in (tests, os.environ.get("PYTHONPATH", "")) if p)
    return {"ORCH_TEST_USERS": json.dumps(users), "PYTHONPATH": path}


IDENTITY_ARGS = [
    "--OrchApp.owner_from=identity",
    "--ServerApp.identity_provider_class=support.identities.HubUsers",
]
