"""The orchestrator's traitlets configuration in team mode (the ConfigMap's
jupyter_server_config.json and the Deployment's command-line options): it loads with
traitlets' own JSON loader, every key is a configurable trait of a real class, and the
kubernetes provider accepts its settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from chartkit import TEAM_VARIANTS, VARIANTS, one, render
from jupyter_server.serverapp import ServerApp
from traitlets.config import Config
from traitlets.config.loader import JSONFileConfigLoader, KVArgParseConfigLoader

from jupyter_orch.providers.kubernetes import KubernetesProvider
from jupyter_orch.server.app import OrchApp
from jupyter_orch.server.hubauth import HubIdentityProvider

CLASSES = {cls.__name__: cls for cls in (ServerApp, OrchApp, KubernetesProvider, HubIdentityProvider)}


def traits_config(objects: list[dict[str, Any]], tmp_path: Path) -> Config:
    [(name, text)] = one(objects, "ConfigMap")["data"].items()
    (tmp_path / name).write_text(text)
    return JSONFileConfigLoader(name, path=str(tmp_path)).load_config()


def args_config(objects: list[dict[str, Any]]) -> Config:
    [c] = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    options = [a for a in c["args"] if not a.startswith("--config=")]
    return KVArgParseConfigLoader(options).load_config()


def unknown_keys(config: Config) -> list[str]:
    bad = []
    for section, settings in config.items():
        cls = CLASSES.get(section)
        if cls is None:
            bad.append(section)
            continue
        traits = cls.class_traits(config=True)
        bad += [f"{section}.{key}" for key in settings if key not in traits]
    return bad


@pytest.mark.parametrize("variant", TEAM_VARIANTS)
def test_every_key_is_a_configurable_trait(variant: str, tmp_path: Path) -> None:
    objects = render(VARIANTS[variant])
    config = traits_config(objects, tmp_path)
    assert set(config) >= {"ServerApp", "OrchApp", "KubernetesProvider"}
    assert unknown_keys(config) == []
    assert unknown_keys(args_config(objects)) == []


def test_a_misspelt_key_is_caught(tmp_path: Path) -> None:
    objects = render({**VARIANTS["team-db-url"], "config": {"OrchApp": {"qoutas": {}}, "KubeProvider": {}}})
    assert unknown_keys(traits_config(objects, tmp_path)) == ["KubeProvider", "OrchApp.qoutas"]


def test_the_chart_sets_team_mode_and_the_user_config_wins(tmp_path: Path) -> None:
    objects = render(VARIANTS["team-everything"])
    config = traits_config(objects, tmp_path)
    assert config.OrchApp.provider == "kubernetes"
    assert config.OrchApp.quotas == {"default": {"gpus": 2}}
    assert config.OrchApp.hub_groups_interval == 0
    assert config.KubernetesProvider.image == "py:3.12"
    assert config.KubernetesProvider.owner_pod == ""  # worker pods outlive a restart of the orchestrator
    # the data directory is the mounted volume
    [c] = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert config.OrchApp.data_dir in {m["mountPath"] for m in c["volumeMounts"]}
    cli = args_config(objects)
    assert cli.OrchApp.owner_from == "identity"
    assert cli.ServerApp.identity_provider_class == "jupyter_orch.server.hubauth.HubIdentityProvider"


@pytest.mark.parametrize("variant", TEAM_VARIANTS)
def test_the_kubernetes_provider_accepts_its_settings(variant: str, tmp_path: Path) -> None:
    config = traits_config(render(VARIANTS[variant]), tmp_path)
    provider = KubernetesProvider(config=config)
    provider.check_settings()
    assert provider.server_url == config.KubernetesProvider.server_url
    assert provider.namespace == "jhub"
    json.dumps(dict(config))  # plain data, nothing else
