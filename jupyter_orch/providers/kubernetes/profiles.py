"""Per-group pod settings (``c.KubernetesProvider.group_profiles``), checked, and which one a
task's pod gets. Pure: no client, no I/O.

A profile names a JupyterHub group and what the pods made for its members' tasks get: an
image (for tasks that name none), a node selector, tolerations and labels, and whether a
pod is its user's (it runs only that user's tasks) or the group's (any member's). A user
in several groups gets the profile of the first of them in the setting's order.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...core.errors import SpecError
from ...core.resources import parse_labels

SETTING = "KubernetesProvider.group_profiles"
KEYS = ("image", "node_selector", "tolerations", "labels", "pods")
TOLERATION_KEYS = ("key", "operator", "value", "effect", "tolerationSeconds")
OPERATORS = ("Exists", "Equal")
EFFECTS = ("", "NoSchedule", "PreferNoSchedule", "NoExecute")
POD_OWNERS = ("user", "group")

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
_IMAGE = re.compile(r"^[A-Za-z0-9]\S*$")  # an image reference (the registry says the rest)


@dataclass(frozen=True)
class GroupProfile:
    """What the worker pods made for a group's members' tasks get."""

    group: str
    image: str = ""  # for tasks that name no image ("": KubernetesProvider.image)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    pods: str = "user"  # user: a pod runs only its user's tasks; group: any member's

    def apply(self, spec: dict[str, Any]) -> None:
        """Set the profile's placement on a pod ``spec`` (in place): its node selector over
        the pod's (the group's wins over a task's label of the same key), its tolerations
        added to the pod's."""
        if self.node_selector:
            spec["nodeSelector"] = {**(spec.get("nodeSelector") or {}), **self.node_selector}
        if self.tolerations:
            tolerations = list(spec.get("tolerations") or [])
            for tol in self.tolerations:
                if tol not in tolerations:
                    tolerations.append(copy.deepcopy(tol))
            spec["tolerations"] = tolerations


def profile_for(groups: Iterable[str], profiles: Mapping[str, GroupProfile]) -> GroupProfile | None:
    """The profile of the first group in ``profiles`` (the setting's order) among ``groups``."""
    mine = set(groups)
    for name, profile in profiles.items():
        if name in mine:
            return profile
    return None


def parse_profiles(
    value: Any, reserved_labels: Iterable[str] = (), setting: str = SETTING
) -> dict[str, GroupProfile]:
    """The profiles as configured (``{group: {image, node_selector, tolerations, labels,
    pods}}``), in order, checked: ValueError naming the setting and key of the first bad
    one (``KubernetesProvider.group_profiles.ml-team.tolerations[0]: ...``)."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{setting} must be a mapping of group names to settings")
    reserved = set(reserved_labels)
    out: dict[str, GroupProfile] = {}
    for group, entry in value.items():
        where = f"{setting}.{group}"
        if not isinstance(group, str) or not group.strip():
            raise ValueError(f"{setting}: a group name must be a non-empty string, not {group!r}")
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: must be a mapping with any of {', '.join(KEYS)}")
        unknown = sorted(str(k) for k in entry if k not in KEYS)
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}; a profile has {', '.join(KEYS)}")
        image = entry.get("image") or ""
        if not isinstance(image, str) or (image and not _IMAGE.match(image)):
            raise ValueError(
                f"{where}.image: must be an image reference like pytorch/pytorch:2.4, not {image!r}"
            )
        pods = entry.get("pods", "user")
        if pods not in POD_OWNERS:
            raise ValueError(
                f"{where}.pods: must be 'user' (a pod runs only its user's tasks) or 'group' "
                f"(any member's), not {pods!r}"
            )
        out[group] = GroupProfile(
            group=group,
            image=image,
            node_selector=_labels(entry.get("node_selector"), f"{where}.node_selector", ()),
            tolerations=_tolerations(entry.get("tolerations"), f"{where}.tolerations"),
            labels=_labels(entry.get("labels"), f"{where}.labels", reserved),
            pods=pods,
        )
    return out


def _labels(value: Any, where: str, reserved: Iterable[str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: must be a mapping of label keys to values")
    for key, val in value.items():
        if not isinstance(val, str):
            raise ValueError(f"{where}.{key}: must be a string, not {val!r}")
        if not _LABEL_VALUE.match(val):
            raise ValueError(f"{where}.{key}: {val!r} is not a valid label value")
        if key in reserved:
            raise ValueError(f"{where}.{key}: may not be set (the provider sets it)")
    try:
        return parse_labels(dict(value), where)
    except SpecError as exc:
        raise ValueError(exc.message) from None


def _tolerations(value: Any, where: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{where}: must be a list of tolerations")
    out = []
    for i, tol in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(tol, Mapping):
            raise ValueError(f"{at}: must be a mapping with {', '.join(TOLERATION_KEYS)}")
        unknown = sorted(str(k) for k in tol if k not in TOLERATION_KEYS)
        if unknown:
            raise ValueError(f"{at}: unknown fields {unknown}; a toleration has {', '.join(TOLERATION_KEYS)}")
        operator = tol.get("operator", "Equal")
        if operator not in OPERATORS:
            raise ValueError(f"{at}.operator: must be Exists or Equal, not {operator!r}")
        for name in ("key", "value"):
            if name in tol and not isinstance(tol[name], str):
                raise ValueError(f"{at}.{name}: must be a string, not {tol[name]!r}")
        if operator == "Exists" and tol.get("value"):
            raise ValueError(f"{at}.value: must be empty when the operator is Exists")
        if operator == "Equal" and not tol.get("key"):
            raise ValueError(f"{at}.key: is needed when the operator is Equal")
        if tol.get("effect", "") not in EFFECTS:
            raise ValueError(
                f"{at}.effect: must be one of NoSchedule, PreferNoSchedule, NoExecute, not {tol['effect']!r}"
            )
        seconds = tol.get("tolerationSeconds")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int)):
            raise ValueError(f"{at}.tolerationSeconds: must be a whole number of seconds, not {seconds!r}")
        if seconds is not None and tol.get("effect") != "NoExecute":
            raise ValueError(f"{at}.tolerationSeconds: is only for the NoExecute effect")
        out.append(dict(tol))
    return out
