"""A hub group's jupyter-orch settings (its ``properties.orch`` in JupyterHub) over the
configuration's: what applies, and what a wrong one leaves (the configuration's, and a
line in the log saying why)."""

from __future__ import annotations

from jupyter_orch.core.fairshare import Quota, Shares
from jupyter_orch.server.sharing import with_group_settings


def test_a_groups_properties_override_the_configuration_for_that_group() -> None:
    base = Shares(groups={"ml-team": Quota(gpus=8), "web": Quota(gpus=1)}, group_weights={"web": 2.0})
    groups = [
        {"name": "ml-team", "properties": {"orch": {"quota": {"gpus": 16, "running": 4}, "weight": 3}}},
        {"name": "web", "properties": {}},
        {"name": "new", "properties": {"orch": {"quota": {"queued": 10}}}},
    ]
    shares, applied, problems = with_group_settings(base, groups)
    assert shares.groups["ml-team"] == Quota(gpus=16, running=4) and shares.group_weights["ml-team"] == 3
    assert shares.groups["web"] == Quota(gpus=1) and shares.group_weights["web"] == 2  # untouched
    assert shares.groups["new"] == Quota(queued=10)
    assert applied == ["ml-team", "new"] and problems == []


def test_wrong_settings_of_a_group_leave_the_configurations_and_say_why() -> None:
    base = Shares(groups={"ml-team": Quota(gpus=8)})
    groups = [
        {"name": "ml-team", "properties": {"orch": {"quota": {"gpus": "many"}}}},
        {"name": "odd", "properties": {"orch": {"quota": {}, "colour": "red"}}},
        {"name": "light", "properties": {"orch": {"weight": 0}}},
    ]
    shares, applied, problems = with_group_settings(base, groups)
    assert shares.groups == {"ml-team": Quota(gpus=8)} and applied == []
    assert problems == [
        "hub group ml-team: properties.orch.quota.gpus must be a whole number of at least 0, not 'many'; "
        "the configuration's settings apply to it",
        "hub group odd: properties.orch must be an object with quota and/or weight; "
        "the configuration's settings apply to it",
        "hub group light: properties.orch.weight must be a number above 0, not 0; "
        "the configuration's settings apply to it",
    ]
