"""Resources: memory sizes, strict parsing with the field named, round trips, GPU matching."""

from __future__ import annotations

import math
import random

import pytest

from jupyter_orch.core.errors import SpecError
from jupyter_orch.core.resources import Gpu, Resources, format_memory, parse_labels, parse_memory

GI = 2**30
MI = 2**20
KI = 2**10


# --------------------------------------------------------------------------- parse_memory
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8Gi", 8 * GI),
        ("512Mi", 512 * MI),
        ("1G", 10**9),
        ("1.5Gi", 3 * GI // 2),
        ("4Ki", 4 * KI),
        ("2Ti", 2 * 2**40),
        ("3k", 3000),
        ("7M", 7 * 10**6),
        ("1T", 10**12),
        ("8gi", 8 * GI),  # case-insensitive
        ("8GiB", 8 * GI),  # a trailing B is accepted
        ("8GB", 8 * 10**9),
        (" 8 Gi ", 8 * GI),  # surrounding / inner blanks
        ("1024", 1024),  # plain bytes as text
        ("0", 0),
        ("9007199254740993", 2**53 + 1),  # past float precision: exact
    ],
)
def test_parse_memory_strings(text: str, expected: int) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize(("value", "expected"), [(0, 0), (1, 1), (4096, 4096), (2**40, 2**40), (1.9, 1)])
def test_parse_memory_numbers(value: float, expected: int) -> None:
    assert parse_memory(value) == expected


def test_parse_memory_none_means_no_reservation() -> None:
    assert parse_memory(None) == 0


@pytest.mark.parametrize(
    "bad",
    [
        "lots",
        "8 XB",
        "-1",
        "-1Gi",
        "Gi",
        "",
        "8Gi8",
        "1e3",
        "8 Gi B B",
        "1,5Gi",
        -1,
        -0.5,
        True,
        False,
        math.inf,
        math.nan,
        [8],
        {"size": 8},
        b"8Gi",
    ],
)
def test_parse_memory_rejects_bad_values_naming_the_field(bad: object) -> None:
    with pytest.raises(SpecError) as info:
        parse_memory(bad)
    assert info.value.field == "resources.memory"
    assert "resources.memory" in str(info.value)


def test_parse_memory_uses_the_given_field_name() -> None:
    with pytest.raises(SpecError) as info:
        parse_memory("lots", "workers.w1.memory")
    assert info.value.field == "workers.w1.memory"
    assert info.value.to_dict()["field"] == "workers.w1.memory"


# -------------------------------------------------------------------------- format_memory
@pytest.mark.parametrize(
    ("nbytes", "text"),
    [
        (8 * GI, "8Gi"),
        (512 * MI, "512Mi"),
        (3 * 2**40, "3Ti"),
        (4 * KI, "4Ki"),
        (1024 * GI, "1Ti"),  # the largest exact unit wins
        (1536 * MI, "1536Mi"),  # exact beats a rounded "1.5Gi"
        (GI + 1, "1.0Gi"),  # not exact in any unit: one decimal
        (1500, "1.5Ki"),
        (1000, "1000"),  # under 1Ki: plain bytes
        (1, "1"),
        (0, "0"),
        (-5, "0"),
    ],
)
def test_format_memory(nbytes: int, text: str) -> None:
    assert format_memory(nbytes) == text


def test_format_memory_exact_forms_parse_back() -> None:
    for n in (1, 2, 3, 1000, 1023, 1024):
        for unit in (1, KI, MI, GI, 2**40):
            nbytes = n * unit
            text = format_memory(nbytes)
            if "." not in text:
                assert parse_memory(text) == nbytes, (nbytes, text)


# --------------------------------------------------------------------- Resources.from_dict
def test_defaults() -> None:
    r = Resources.from_dict(None)
    assert r == Resources()
    assert (r.cpus, r.memory, r.gpus, r.gpu_type, dict(r.labels)) == (1.0, 0, 0, None, {})
    assert Resources.from_dict({}) == Resources()


def test_full_dict() -> None:
    r = Resources.from_dict(
        {"cpus": 2.5, "memory": "16Gi", "gpus": 2, "gpu_type": " A100 ", "labels": {"zone": "a", "n": 3}}
    )
    assert r.cpus == 2.5
    assert r.memory == 16 * GI
    assert r.gpus == 2 and isinstance(r.gpus, int)
    assert r.gpu_type == "A100"  # stripped
    assert dict(r.labels) == {"zone": "a", "n": "3"}  # values become strings


def test_numbers_as_strings_are_accepted() -> None:
    r = Resources.from_dict({"cpus": "0.5", "gpus": "2"})
    assert r.cpus == 0.5
    assert r.gpus == 2


def test_whole_float_gpus_accepted() -> None:
    assert Resources.from_dict({"gpus": 2.0}).gpus == 2


def test_a_resources_object_passes_through() -> None:
    r = Resources(cpus=3)
    assert Resources.from_dict(r) is r


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"cpu": 1}, "resources.cpu"),
        ({"gpus": 1, "zzz": 1, "aaa": 2}, "resources.aaa"),  # the first unknown key, sorted
        ({"gpus": -1}, "resources.gpus"),
        ({"gpus": 1.5}, "resources.gpus"),
        ({"gpus": "abc"}, "resources.gpus"),
        ({"gpus": True}, "resources.gpus"),
        ({"gpus": None}, "resources.gpus"),
        ({"gpus": [1]}, "resources.gpus"),
        ({"gpus": "inf"}, "resources.gpus"),
        ({"cpus": -1}, "resources.cpus"),
        ({"cpus": "nan"}, "resources.cpus"),
        ({"cpus": math.inf}, "resources.cpus"),
        ({"cpus": "many"}, "resources.cpus"),
        ({"memory": "lots"}, "resources.memory"),
        ({"memory": -1}, "resources.memory"),
        ({"gpu_type": "A100"}, "resources.gpu_type"),  # without gpus
        ({"gpu_type": "A100", "gpus": 0}, "resources.gpu_type"),
        ({"gpu_type": "  ", "gpus": 1}, "resources.gpu_type"),
        ({"gpu_type": 100, "gpus": 1}, "resources.gpu_type"),
        ({"labels": "zone=a"}, "resources.labels"),
        ({"labels": ["zone"]}, "resources.labels"),
        ({"labels": [1]}, "resources.labels"),
        ({"labels": {"bad key": "v"}}, "resources.labels.bad key"),
        ({"labels": {"-x": "v"}}, "resources.labels.-x"),
        ({"labels": ["=v"]}, "resources.labels."),
        ({"labels": {"k": ["v"]}}, "resources.labels.k"),
        ({"labels": {"k": None}}, "resources.labels.k"),
    ],
)
def test_bad_resources_name_their_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as info:
        Resources.from_dict(data)
    assert info.value.field == field
    assert info.value.code == "invalid"


def test_non_mapping_is_refused() -> None:
    for bad in ("2 gpus", 3, ["gpus"]):
        with pytest.raises(SpecError) as info:
            Resources.from_dict(bad)
        assert info.value.field == "resources"


def test_prefix_is_used_in_fields() -> None:
    with pytest.raises(SpecError) as info:
        Resources.from_dict({"gpus": -2}, prefix="steps.train.resources")
    assert info.value.field == "steps.train.resources.gpus"


def test_non_string_unknown_keys_are_a_spec_error() -> None:
    with pytest.raises(SpecError) as info:
        Resources.from_dict({1: 2, "zz": 3})
    assert info.value.field == "resources.1"


def test_unknown_key_message_lists_known_keys() -> None:
    with pytest.raises(SpecError, match="cpus, memory, gpus, gpu_type, labels"):
        Resources.from_dict({"gpu": 1})


# ------------------------------------------------------------------------------- labels
def test_labels_as_dict_and_as_list_are_the_same() -> None:
    as_dict = Resources.from_dict({"labels": {"zone": "eu-1", "team/ml": "yes"}})
    as_list = Resources.from_dict({"labels": ["zone=eu-1", "team/ml=yes"]})
    assert as_dict == as_list
    assert dict(as_list.labels) == {"zone": "eu-1", "team/ml": "yes"}


def test_label_value_may_contain_equals_and_be_empty() -> None:
    assert parse_labels(["k=a=b", "e="], "labels") == {"k": "a=b", "e": ""}


def test_label_key_rules() -> None:
    ok = ["a", "a.b", "example.com/gpu-kind", "A_1", "x" * 253]
    for key in ok:
        assert parse_labels({key: "v"}, "labels") == {key: "v"}
    bad = ["", "a b", "-a", "a-", "x" * 254, "ä", "a=b"]
    for key in bad:
        with pytest.raises(SpecError):
            parse_labels({key: "v"}, "labels")


def test_labels_none_is_empty() -> None:
    assert parse_labels(None, "labels") == {}


# ---------------------------------------------------------------------------- round trip
def test_to_dict_form() -> None:
    r = Resources(cpus=2, memory=8 * GI, gpus=1, gpu_type="A100", labels={"zone": "a"})
    assert r.to_dict() == {"cpus": 2, "memory": "8Gi", "gpus": 1, "gpu_type": "A100", "labels": {"zone": "a"}}
    assert Resources().to_dict()["memory"] is None


def test_to_dict_keeps_inexact_sizes_as_bytes() -> None:
    assert Resources(memory=GI + 1).to_dict()["memory"] == GI + 1
    assert Resources(memory=1500).to_dict()["memory"] == 1500  # "1.5Ki" would read back as 1536
    assert Resources.from_dict(Resources(memory=1500).to_dict()).memory == 1500


def _random_memory(rng: random.Random) -> int:
    shape = rng.randrange(5)
    if shape == 0:
        return rng.randrange(1, 2**64)
    if shape == 1:
        return rng.randrange(1, 4096) * rng.choice([KI, MI, GI, 2**40])
    if shape == 2:
        return rng.randrange(1, 4096) * rng.choice([KI, MI, GI, 2**40]) + rng.choice([-1, 1, 512])
    if shape == 3:
        return rng.randrange(1, 2048)
    return rng.randrange(1, 10**6) * rng.choice([10**3, 10**6, 10**9])


def test_round_trip_property_over_memory_sizes() -> None:
    rng = random.Random(20240611)
    for _ in range(3000):
        memory = _random_memory(rng)
        gpus = rng.randrange(0, 9)
        r = Resources(
            cpus=rng.choice([0.0, 0.25, 1.0, 3.5, 64.0]),
            memory=memory,
            gpus=gpus,
            gpu_type=rng.choice([None, "A100", "H100"]) if gpus else None,
            labels=rng.choice([{}, {"zone": "a"}, {"a.b/c": "1", "x": ""}]),
        )
        back = Resources.from_dict(r.to_dict())
        assert back == r, (memory, r.to_dict())
        assert back.memory == memory


def test_memory_text_round_trip_property() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        nbytes = _random_memory(rng)
        text = format_memory(nbytes)
        parsed = parse_memory(text)
        if "." in text:
            # rounded to one decimal: within 5% (one decimal of at least 1 unit)
            assert abs(parsed - nbytes) <= 0.05 * nbytes + 1, (nbytes, text)
        else:
            assert parsed == nbytes, (nbytes, text)


def test_describe() -> None:
    assert Resources().describe() == "1 cpu"
    r = Resources(cpus=2, memory=8 * GI, gpus=4, gpu_type="A100", labels={"z": "1", "a": "2"})
    assert r.describe() == "2 cpu, 8Gi memory, 4 A100 gpu, a=2,z=1"
    assert Resources(gpus=1).describe() == "1 cpu, 1 gpu"


# ------------------------------------------------------------------------------------ Gpu
def test_gpu_matches() -> None:
    gpu = Gpu(index=0, uuid="GPU-1", model="NVIDIA A100-SXM4-80GB", memory=80 * GI)
    assert gpu.matches(None)
    assert gpu.matches("A100")
    assert gpu.matches("a100")
    assert gpu.matches("nvidia a100-sxm4")
    assert not gpu.matches("H100")
    assert not gpu.matches("V100")
    assert Gpu(index=1, model="Tesla T4").matches("t4")
    # whole words only: an A10 is not an A100, an L4 is not an L40S
    assert not gpu.matches("A10")
    assert Gpu(index=2, model="NVIDIA A10").matches("A10")
    assert not Gpu(index=2, model="NVIDIA L40S").matches("L4")
    assert not Gpu(index=1, model="").matches("T4")
    assert Gpu(index=1, model="").matches(None)


def test_gpu_dict_round_trip() -> None:
    gpu = Gpu(index=3, uuid="GPU-abc", model="H100", memory=80 * GI)
    assert Gpu.from_dict(gpu.to_dict()) == gpu
    assert Gpu.from_dict({"index": "2"}) == Gpu(index=2)
    assert Gpu.from_dict({"index": 1, "uuid": None, "model": None, "memory": None}) == Gpu(index=1)
