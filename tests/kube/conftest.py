"""Fixtures for Kubernetes without a cluster: the API emulator and the test kubelet.

``kube_api``: a started :class:`support.kube.KubeApiServer` (``.url``, ``.api_client()``,
``.core_v1()``, side doors: ``add_node``, ``fail_next``, ``drop_watches``, ``compact``, ...).
``kube_api_factory(**kwargs)``: more of them (a bearer ``token=...``, a short ``history=...``).
``kubelet``: a started :class:`support.kube.Kubelet` on ``kube_api`` with one CPU-only node
``node-0``; at teardown every process it started is gone (checked by ``ORCH_TEST_TAG``).
``v1``: a ``kubernetes.client.CoreV1Api`` on ``kube_api``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from support.kube import KubeApiServer, Kubelet, kube_api_server, run_kubelet


@pytest.fixture
def kube_api_factory() -> Iterator[Callable[..., KubeApiServer]]:
    with ExitStack() as stack:
        yield lambda **kwargs: stack.enter_context(kube_api_server(**kwargs))


@pytest.fixture
def kube_api(kube_api_factory: Callable[..., KubeApiServer]) -> KubeApiServer:
    return kube_api_factory()


@pytest.fixture
def v1(kube_api: KubeApiServer) -> Any:
    return kube_api.core_v1()


@pytest.fixture
def kubelet(kube_api: KubeApiServer, tmp_path: Path) -> Iterator[Kubelet]:
    with run_kubelet(kube_api, tmp_path / "kubelet") as kubelet:
        yield kubelet
