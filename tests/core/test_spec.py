"""TaskSpec validation (every error names its field), round trips, retry delays, names."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from jupyter_orch.core.errors import SpecError
from jupyter_orch.core.ids import is_valid_id, new_id
from jupyter_orch.core.resources import Resources
from jupyter_orch.core.spec import KINDS, MAX_NAME, RetryPolicy, TaskSpec

ID1 = new_id()
ID2 = new_id()


def shell(**extra: Any) -> dict[str, Any]:
    return {"kind": "shell", "command": "echo hi", **extra}


# ---------------------------------------------------------------------------- accepted
def test_minimal_shell_task() -> None:
    spec = TaskSpec.from_dict({"kind": "shell", "command": "nvidia-smi"}, owner="alice")
    assert spec.kind == "shell"
    assert spec.command == "nvidia-smi"
    assert spec.owner == "alice"
    assert is_valid_id(spec.id)
    assert spec.name is None
    assert spec.resources == Resources()
    assert spec.image is None
    assert spec.priority == 0
    assert spec.retry == RetryPolicy()
    assert spec.timeout is None
    assert dict(spec.env) == {}
    assert spec.depends == ()
    assert dict(spec.metadata) == {}
    assert not spec.needs_payload


@pytest.mark.parametrize("kind", ["function", "cell", "notebook"])
def test_payload_kinds(kind: str) -> None:
    spec = TaskSpec.from_dict({"kind": kind, "payload": "ignored here"})
    assert spec.kind == kind
    assert spec.command is None
    assert spec.needs_payload


def test_each_task_gets_a_fresh_id_unless_given() -> None:
    a = TaskSpec.from_dict(shell())
    b = TaskSpec.from_dict(shell())
    assert a.id != b.id
    assert TaskSpec.from_dict(shell(id=ID1)).id == ID1


def test_all_fields() -> None:
    spec = TaskSpec.from_dict(
        {
            "id": ID1,
            "kind": "function",
            "name": "train",
            "resources": {"gpus": 2, "memory": "32Gi"},
            "image": " pytorch:2.3 ",
            "priority": -5,
            "retries": 3,
            "retry_backoff": 2,
            "retry_backoff_factor": 3,
            "retry_max_backoff": 60,
            "timeout": 3600,
            "env": {"SEED": 1, "DEBUG": True, "X": "y"},
            "depends": [ID2, ID2],
            "metadata": {"function": "mod.train"},
        },
        owner="bob",
    )
    assert spec.id == ID1
    assert spec.name == "train"
    assert spec.resources.gpus == 2 and spec.resources.memory == 32 * 2**30
    assert spec.image == "pytorch:2.3"
    assert spec.priority == -5
    assert spec.retry == RetryPolicy(retries=3, backoff=2.0, factor=3.0, max_backoff=60.0)
    assert spec.timeout == 3600.0 and isinstance(spec.timeout, float)
    assert dict(spec.env) == {"SEED": "1", "DEBUG": "True", "X": "y"}
    assert spec.depends == (ID2,)  # duplicates dropped
    assert spec.owner == "bob"


def test_empty_name_is_no_name() -> None:
    assert TaskSpec.from_dict(shell(name="")).name is None


def test_name_at_the_limit() -> None:
    assert TaskSpec.from_dict(shell(name="n" * MAX_NAME)).name == "n" * MAX_NAME


def test_depends_keeps_order() -> None:
    ids = [new_id() for _ in range(5)]
    spec = TaskSpec.from_dict(shell(depends=[ids[3], ids[0], ids[3], ids[4]]))
    assert spec.depends == (ids[3], ids[0], ids[4])


def test_nulls_mean_defaults() -> None:
    spec = TaskSpec.from_dict(
        shell(
            name=None,
            resources=None,
            image=None,
            priority=None,
            retries=None,
            retry_backoff=None,
            timeout=None,
            env=None,
            depends=None,
            metadata=None,
        )
    )
    assert spec.priority == 0 and spec.retry == RetryPolicy() and spec.timeout is None


# ---------------------------------------------------------------------------- refused
@pytest.mark.parametrize(
    ("data", "field"),
    [
        (shell(colour="red"), "colour"),
        (shell(zeta=1, alpha=2), "alpha"),
        ({"command": "x"}, "kind"),
        ({"kind": "docker", "command": "x"}, "kind"),
        ({"kind": "Shell", "command": "x"}, "kind"),
        ({"kind": None}, "kind"),
        ({"kind": ["shell"]}, "kind"),
        ({"kind": "shell"}, "command"),
        ({"kind": "shell", "command": ""}, "command"),
        ({"kind": "shell", "command": "   "}, "command"),
        ({"kind": "shell", "command": ["ls", "-l"]}, "command"),
        ({"kind": "function", "command": "ls"}, "command"),
        ({"kind": "notebook", "command": ""}, "command"),
        (shell(id="not-an-id"), "id"),
        (shell(id=ID1.upper()), "id"),
        (shell(id=ID1[:-1]), "id"),
        (shell(id=ID1 + "\n"), "id"),
        (shell(id=12345), "id"),
        (shell(name=5), "name"),
        (shell(name="n" * (MAX_NAME + 1)), "name"),
        (shell(image=""), "image"),
        (shell(image="  "), "image"),
        (shell(image=3), "image"),
        (shell(depends=["abc"]), "depends"),
        (shell(depends=[ID1, "abc"]), "depends"),
        (shell(depends=ID1), "depends"),
        (shell(depends={ID1: 1}), "depends"),
        (shell(depends=[None]), "depends"),
        (shell(depends=[ID1 + "\n"]), "depends"),
        (shell(metadata=["a"]), "metadata"),
        (shell(metadata="x"), "metadata"),
        (shell(env={"": "x"}), "env."),
        (shell(env={"A=B": "x"}), "env.A=B"),
        (shell(env={"A\0": "x"}), "env.A\0"),
        (shell(env={"A": None}), "env.A"),
        (shell(env={"A": ["x"]}), "env.A"),
        (shell(env=["A=1"]), "env"),
        (shell(retries=-1), "retries"),
        (shell(retries=1.5), "retries"),
        (shell(retries="3"), "retries"),
        (shell(retries=True), "retries"),
        (shell(priority=1.5), "priority"),
        (shell(priority="high"), "priority"),
        (shell(priority=False), "priority"),
        (shell(preemptible="yes"), "preemptible"),
        (shell(preemptible=1), "preemptible"),
        (shell(timeout=0), "timeout"),
        (shell(timeout=-1), "timeout"),
        (shell(timeout="60"), "timeout"),
        (shell(timeout=True), "timeout"),
        (shell(timeout=math.inf), "timeout"),
        (shell(timeout=math.nan), "timeout"),
        (shell(retry_backoff=0), "retry_backoff"),
        (shell(retry_backoff_factor=-2), "retry_backoff_factor"),
        (shell(retry_max_backoff="1m"), "retry_max_backoff"),
        (shell(resources={"gpus": -1}), "resources.gpus"),
        (shell(resources={"gpu": 1}), "resources.gpu"),
        (shell(resources={"memory": "lots"}), "resources.memory"),
        (shell(resources="big"), "resources"),
    ],
)
def test_bad_specs_name_their_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as info:
        TaskSpec.from_dict(data)
    assert info.value.field == field
    assert info.value.to_dict() == {"error": "invalid", "message": str(info.value), "field": field}


@pytest.mark.parametrize("bad", [None, "shell", ["kind", "shell"], 42])
def test_a_task_must_be_an_object(bad: object) -> None:
    with pytest.raises(SpecError) as info:
        TaskSpec.from_dict(bad)
    assert info.value.field is None


def test_non_string_keys_are_a_spec_error_not_a_crash() -> None:
    with pytest.raises(SpecError) as info:
        TaskSpec.from_dict({"kind": "shell", "command": "x", 1: 2, "zz": 3})
    assert info.value.field == "1"


def test_unknown_field_is_checked_before_anything_else() -> None:
    # a typo in a field name is reported even when other fields are wrong too
    with pytest.raises(SpecError) as info:
        TaskSpec.from_dict({"kind": "nope", "gpus": 1})
    assert info.value.field == "gpus"


# ------------------------------------------------------------------------- round trip
def test_round_trip_simple() -> None:
    spec = TaskSpec.from_dict(shell(), owner="alice")
    assert TaskSpec.from_dict(spec.to_dict(), owner="alice") == spec


def test_to_dict_has_no_owner_and_from_dict_sets_it() -> None:
    spec = TaskSpec.from_dict(shell(), owner="alice")
    assert "owner" not in spec.to_dict()
    assert TaskSpec.from_dict(spec.to_dict(), owner="bob") == spec.with_owner("bob")
    assert spec.with_owner("bob").owner == "bob" and spec.owner == "alice"


def _random_spec_dict(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(KINDS)
    data: dict[str, Any] = {"kind": kind}
    if kind == "shell":
        data["command"] = rng.choice(["echo hi", "python train.py --lr 0.1", "x" * 100])
    if rng.random() < 0.5:
        data["id"] = new_id()
    if rng.random() < 0.5:
        data["name"] = rng.choice(["train", "étape 2", "n" * MAX_NAME])
    if rng.random() < 0.7:
        gpus = rng.randrange(0, 9)
        res: dict[str, Any] = {
            "cpus": rng.choice([0, 0.5, 1, 2, 96]),
            "memory": rng.choice([None, "1Gi", "512Mi", "1.5Gi", 10**9, 123457, "3G"]),
            "gpus": gpus,
            "labels": rng.choice([None, {"zone": "a"}, ["a/b=c", "d=e=f"]]),
        }
        if gpus and rng.random() < 0.5:
            res["gpu_type"] = rng.choice(["A100", "H100"])
        data["resources"] = res
    if rng.random() < 0.5:
        data["image"] = rng.choice(["python:3.11", "ghcr.io/x/y:latest"])
    if rng.random() < 0.5:
        data["priority"] = rng.randrange(-10, 11)
    if rng.random() < 0.5:
        data["retries"] = rng.randrange(0, 6)
        data["retry_backoff"] = rng.choice([0.5, 1, 10])
        data["retry_backoff_factor"] = rng.choice([1, 1.5, 2])
        data["retry_max_backoff"] = rng.choice([1, 60, 3600.5])
    if rng.random() < 0.5:
        data["timeout"] = rng.choice([0.1, 1, 7200])
    if rng.random() < 0.5:
        data["env"] = {"A": "1", "PATH_EXTRA": "/opt/bin", "N": 3}
    if rng.random() < 0.5:
        data["depends"] = [new_id() for _ in range(rng.randrange(0, 4))]
    if rng.random() < 0.5:
        data["metadata"] = {"function": "pkg.fn", "nested": {"a": [1, 2]}}
    return data


def test_round_trip_property() -> None:
    rng = random.Random(1234)
    for _ in range(1500):
        data = _random_spec_dict(rng)
        owner = rng.choice(["", "alice", "bob@example.com"])
        spec = TaskSpec.from_dict(data, owner=owner)
        again = TaskSpec.from_dict(spec.to_dict(), owner=owner)
        assert again == spec, data
        assert again.to_dict() == spec.to_dict()


# ------------------------------------------------------------------------- RetryPolicy
def test_delay_grows_by_the_factor() -> None:
    policy = RetryPolicy(retries=5, backoff=2.0, factor=3.0, max_backoff=1000.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [2.0, 6.0, 18.0, 54.0]


def test_delay_is_capped() -> None:
    policy = RetryPolicy(retries=10, backoff=1.0, factor=2.0, max_backoff=10.0)
    assert [policy.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_delay_defaults_and_small_retry_numbers() -> None:
    policy = RetryPolicy()
    assert policy.delay(1) == 1.0
    assert policy.delay(0) == 1.0  # clamped: never below the first wait
    assert policy.delay(-3) == 1.0
    assert policy.delay(9) == 256.0
    assert policy.delay(10) == 300.0


def test_delay_never_overflows() -> None:
    policy = RetryPolicy(retries=10**6)
    assert policy.delay(2000) == 300.0
    assert policy.delay(10**6) == 300.0
    assert RetryPolicy(backoff=1e300, factor=1e10).delay(3) == 300.0


def test_delay_is_monotonic_and_bounded() -> None:
    rng = random.Random(99)
    for _ in range(300):
        policy = RetryPolicy(
            backoff=rng.uniform(0.01, 100), factor=rng.uniform(1, 5), max_backoff=rng.uniform(1, 10_000)
        )
        delays = [policy.delay(n) for n in range(1, 60)]
        assert all(a <= b for a, b in zip(delays, delays[1:], strict=False))
        assert all(0 < d <= policy.max_backoff for d in delays)


def test_retry_policy_to_dict() -> None:
    assert RetryPolicy(retries=2).to_dict() == {
        "retries": 2,
        "backoff": 1.0,
        "factor": 2.0,
        "max_backoff": 300.0,
    }


# ------------------------------------------------------------------------ display_name
def test_display_name_prefers_the_name() -> None:
    assert TaskSpec.from_dict(shell(name="nightly")).display_name == "nightly"


def test_display_name_of_a_shell_task_is_its_command() -> None:
    assert TaskSpec.from_dict(shell(command="ls -l")).display_name == "ls -l"
    sixty = "x" * 60
    assert TaskSpec.from_dict(shell(command=sixty)).display_name == sixty
    long = "y" * 61
    shown = TaskSpec.from_dict(shell(command=long)).display_name
    assert shown == "y" * 57 + "..."
    assert len(shown) == 60


def test_display_name_of_a_function_task() -> None:
    assert TaskSpec.from_dict({"kind": "function", "metadata": {"function": "m.f"}}).display_name == "m.f"
    assert TaskSpec.from_dict({"kind": "function"}).display_name == "function"
    assert TaskSpec.from_dict({"kind": "notebook"}).display_name == "notebook"


def test_whole_numbers_written_as_floats_are_whole_numbers() -> None:
    spec = TaskSpec.from_dict({"kind": "shell", "command": "true", "retries": 3.0, "priority": -2.0})
    assert (spec.retry.retries, spec.priority) == (3, -2)
    with pytest.raises(SpecError) as err:
        TaskSpec.from_dict({"kind": "shell", "command": "true", "retries": 2.5})
    assert err.value.field == "retries"


@pytest.mark.parametrize("value", [False, 0, "", []])
def test_metadata_of_another_type_is_refused_even_when_empty(value: object) -> None:
    with pytest.raises(SpecError) as err:
        TaskSpec.from_dict({"kind": "shell", "command": "true", "metadata": value})
    assert err.value.field == "metadata"


@pytest.mark.parametrize("value", [False, 0, "", {}])
def test_depends_of_another_type_is_refused_even_when_empty(value: object) -> None:
    with pytest.raises(SpecError) as err:
        TaskSpec.from_dict({"kind": "shell", "command": "true", "depends": value})
    assert err.value.field == "depends"
