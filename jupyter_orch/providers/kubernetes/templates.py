"""Pod templates (``c.KubernetesProvider.pod_template``): checked as configured, and merged
over the default worker pod. Pure."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def merge(base: Any, override: Any) -> Any:
    """``override`` merged over ``base``: dicts key by key (a None value removes the key),
    lists of named dicts (containers, env, volumes, ...) by ``name``, anything else replaced."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        out = {k: copy.deepcopy(v) for k, v in base.items()}
        for key, value in override.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
        return out
    if _named_list(base) and _named_list(override):
        out_list = [copy.deepcopy(item) for item in base]
        index = {item["name"]: i for i, item in enumerate(out_list)}
        for item in override:
            if item["name"] in index:
                out_list[index[item["name"]]] = merge(out_list[index[item["name"]]], item)
            else:
                out_list.append(copy.deepcopy(item))
        return out_list
    return copy.deepcopy(override)


def _named_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(i, Mapping) and "name" in i for i in value)


def validate_template(template: Any, setting: str = "KubernetesProvider.pod_template") -> dict[str, Any]:
    """A pod template as given in the configuration (a dict or YAML text), checked."""
    if isinstance(template, str):
        import yaml

        try:
            template = yaml.safe_load(template) if template.strip() else {}
        except yaml.YAMLError as exc:
            raise ValueError(f"{setting} is not valid YAML: {exc}") from None
    if template is None:
        return {}
    if not isinstance(template, Mapping):
        raise ValueError(
            f"{setting} must be a mapping with metadata and/or spec, not {type(template).__name__}"
        )
    unknown = set(template) - {"apiVersion", "kind", "metadata", "spec"}
    if unknown:
        raise ValueError(
            f"{setting} has {', '.join(sorted(map(str, unknown)))}: a pod template has only "
            "metadata and spec (e.g. spec: {{containers: [{{name: worker, ...}}]}})"
        )
    for key in ("metadata", "spec"):
        if key in template and not isinstance(template[key], (Mapping, type(None))):
            raise ValueError(f"{setting}.{key} must be a mapping")
    containers = (template.get("spec") or {}).get("containers")
    if containers is not None and not _named_list(containers):
        raise ValueError(f"{setting}.spec.containers must be a list of containers, each with a name")
    return dict(template)
