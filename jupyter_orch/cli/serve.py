"""``jupyter orch serve``: a Jupyter server running only this extension — the standalone
API service and scheduler."""

from __future__ import annotations

from typing import Any

from ..server.app import OrchApp


class OrchServeApp(OrchApp):
    """The same extension, launched as its own server without other extensions."""

    load_other_extensions = False
    # an API service, not a notebook server: no kernels or terminals run in it, so running
    # it as root (as in many containers) is allowed
    serverapp_config = {"open_browser": False}

    @classmethod
    def make_serverapp(cls, **kwargs: Any) -> Any:
        kwargs.setdefault("allow_root", True)
        return super().make_serverapp(**kwargs)


def main(argv: list[str]) -> int:
    translated = []
    for arg in argv:  # friendly short forms of the usual server options
        for short, long in (
            ("--port=", "--ServerApp.port="),
            ("--ip=", "--ServerApp.ip="),
            ("--token=", "--IdentityProvider.token="),
        ):
            if arg.startswith(short):
                arg = long + arg[len(short) :]
        translated.append(arg)
    # the server loads the extension as OrchApp (its entry point), not as this class: a
    # service that cannot start stops, and exits non-zero
    OrchApp.stop_server_on_failure = True
    OrchServeApp.launch_instance(argv=translated)
    return 1 if OrchApp.start_error is not None else 0
