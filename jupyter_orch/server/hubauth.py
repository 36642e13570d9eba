"""Users of a JupyterHub, for ``jupyter orch serve`` running as one of the hub's services
(team mode: one orchestrator for every user of the hub).

Configure the server with::

    --ServerApp.identity_provider_class=jupyter_orch.server.hubauth.HubIdentityProvider
    --OrchApp.owner_from=identity

Kernels, the CLI and users' servers send the user's JupyterHub API token
(``Authorization: token $JUPYTERHUB_API_TOKEN``). The hub says who it is: name, groups, scopes (``custom:orch:read-all``,
``custom:orch:admin``) and whether they are a hub admin (:mod:`jupyter_orch.core.access`
reads them from ``hub_user``). A token without the service's access scope
(``access:services!service=<name>``, which the hub grants through roles) is refused.

It needs the ``jupyterhub`` package (``pip install 'jupyter-orch[hub]'``), and the
environment the hub gives a service it starts (``JUPYTERHUB_API_TOKEN``,
``JUPYTERHUB_API_URL``, ``JUPYTERHUB_SERVICE_NAME``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User
from jupyterhub.services.auth import HubAuth
from traitlets import Float, Instance, default


@dataclass
class HubUser(User):
    """A hub user; ``hub_user`` is the hub's user model, as JupyterHub's own servers keep it."""

    hub_user: dict[str, Any] = field(default_factory=dict)


class HubIdentityProvider(IdentityProvider):
    cache_max_age = Float(
        60.0, config=True, help="Seconds a token's user model is kept before the hub is asked again."
    )
    # tokens only: browsers reach the orchestrator through their user's server (HubOAuth's
    # cookie login, and its XSRF patching of Jupyter's handlers, are not used)
    hub_auth = Instance(HubAuth)

    @default("hub_auth")
    def _hub_auth(self) -> HubAuth:
        return HubAuth(parent=self, cache_max_age=self.cache_max_age)

    async def get_user(self, handler: Any) -> User | None:  # type: ignore[override]
        """The hub's user for the request's token (Jupyter's own token, which the server
        still prints, lets nobody in)."""
        model = await self.hub_auth.get_user(handler, sync=False)
        if not model:
            return None
        required = self.hub_auth.access_scopes
        if required and not self.hub_auth.check_scopes(required, model):
            self.log.warning(
                "refused %s: their token lacks %s (grant it with a JupyterHub role)",
                model.get("name"),
                " or ".join(sorted(required)),
            )
            return None
        name = str(model["name"])
        return HubUser(username=name, name=name, display_name=name, hub_user=dict(model))
