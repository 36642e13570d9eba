"""The Helm chart, rendered by Helm's own Go library (helm-python-sdk), for the tests of
this folder (imported as ``chartkit``).

``render(values)`` gives the parsed objects a release would install (hooks included);
``VARIANTS`` are the value sets the tests run over."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate.utils
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "jupyter-orch"
RELEASE, NAMESPACE = "jupyter-orch", "jhub"
DB_URL = "postgresql://orch:secret@db.example.org:5432/orch"

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "personal": {
        "mode": "personal",
        "serviceAccount": {"name": "orch-users"},
        "networkPolicy": {"serverPort": 9999},
    },
    "team-db-url": {"mode": "team", "db": {"url": DB_URL}},
    "team-postgresql": {"mode": "team", "postgresql": {"enabled": True}},
    "team-existing-secrets": {
        "mode": "team",
        "db": {"existingSecret": {"name": "orch-db", "key": "url"}},
        "hub": {"apiTokenFromSecret": {"name": "hub", "key": "hub.services.orch.apiToken"}},
    },
    "team-networkpolicy-off": {"mode": "team", "db": {"url": DB_URL}, "networkPolicy": {"create": False}},
    "personal-networkpolicy-off": {"networkPolicy": {"create": False}},
    "team-everything": {
        "mode": "team",
        "postgresql": {"enabled": True, "persistence": {"storageClass": "fast"}},
        "hub": {"serviceName": "gpus", "baseUrl": "/jhub/", "apiToken": "given-token", "groupsInterval": 0},
        "networkPolicy": {"hubNamespace": "hub-ns", "workerEgress": [{"ports": [{"port": 443}]}]},
        "persistence": {"enabled": False},
        "pdb": {"minAvailable": 1},
        "image": {"tag": "9.9.9", "pullSecrets": [{"name": "regcred"}]},
        "extraEnv": [{"name": "EXTRA", "value": "1"}],
        "nodeSelector": {"pool": "system"},
        "config": {
            "OrchApp": {"quotas": {"default": {"gpus": 2}}},
            "KubernetesProvider": {"image": "py:3.12", "server_id": "gpu-orch"},
        },
    },
}
TEAM_VARIANTS = [name for name, values in VARIANTS.items() if values.get("mode") == "team"]


def render(values: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    """Every object the chart renders for ``values`` (NOTES.txt aside)."""
    kwargs = {"name": RELEASE, "namespace": NAMESPACE, "is_install": True, **kwargs}
    config = kwargs.pop("config", None)
    chart = helm_python.Chart.load(CHART)
    with chart:
        out = config.render(chart, values, **kwargs) if config else chart.render(values, **kwargs)
    return [
        doc
        for path, text in sorted(out.items())
        if path.endswith((".yaml", ".yml"))
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def notes(values: dict[str, Any] | None = None) -> str:
    """The chart's NOTES.txt, as `helm install` prints it."""
    with helm_python.Chart.load(CHART) as chart:
        out = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    [text] = [text for path, text in out.items() if path.endswith("/NOTES.txt")]
    return text


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, (
        f"{len(found)} {kind} {name or ''} in {[(o['kind'], o['metadata']['name']) for o in objects]}"
    )
    return found[0]


def kinds(objects: list[dict[str, Any]]) -> list[str]:
    return sorted(o["kind"] for o in objects)


def kube_versions() -> tuple[str, str]:
    """The oldest Kubernetes the chart declares (Chart.yaml's kubeVersion) and the newest
    whose schemas kubernetes-validate bundles."""
    declared = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    match = re.fullmatch(r">=\s*(\d+)\.(\d+)\.0-0", declared.strip())
    assert match, f"kubeVersion {declared!r} is not of the form '>= X.Y.0-0'"
    oldest = f"{match[1]}.{match[2]}.0"
    bundled = sorted(
        set(kubernetes_validate.utils.all_versions()), key=lambda v: tuple(map(int, v.split(".")))
    )
    assert oldest in bundled, f"no bundled schemas for the declared oldest Kubernetes {oldest}"
    return oldest, bundled[-1]
