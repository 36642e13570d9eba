"""The shared error vocabulary."""

from __future__ import annotations

import pytest

from jupyter_orch.core.errors import (
    ERRORS_BY_CODE,
    Conflict,
    Forbidden,
    IllegalTransition,
    NotFound,
    OrchError,
    QuotaExceeded,
    SpecError,
    TooLarge,
    Unauthorized,
    Unavailable,
)

EXPECTED = {
    "error": OrchError,
    "invalid": SpecError,
    "not_found": NotFound,
    "wrong_state": Conflict,
    "too_large": TooLarge,
    "forbidden": Forbidden,
    "unauthorized": Unauthorized,
    "unavailable": Unavailable,
    "quota_exceeded": QuotaExceeded,
}


def test_codes_map_to_classes() -> None:
    assert ERRORS_BY_CODE == EXPECTED
    for code, cls in ERRORS_BY_CODE.items():
        assert cls.code == code


def test_codes_are_unique() -> None:
    codes = [cls.code for cls in EXPECTED.values()]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize("cls", list(EXPECTED.values()))
def test_to_dict_without_field(cls: type[OrchError]) -> None:
    err = cls("something is wrong")
    assert err.to_dict() == {"error": cls.code, "message": "something is wrong"}
    assert "field" not in err.to_dict()
    assert err.field is None
    assert err.message == "something is wrong"
    assert str(err) == "something is wrong"


@pytest.mark.parametrize("cls", list(EXPECTED.values()))
def test_to_dict_with_field(cls: type[OrchError]) -> None:
    err = cls("bad gpus", field="resources.gpus")
    assert err.to_dict() == {"error": cls.code, "message": "bad gpus", "field": "resources.gpus"}


def test_an_empty_field_is_left_out() -> None:
    assert "field" not in SpecError("x", field="").to_dict()


def test_round_trip_through_the_code() -> None:
    # what a client does with a server's error body
    body = NotFound("no task abc").to_dict()
    again = ERRORS_BY_CODE[body["error"]](body["message"], field=body.get("field"))
    assert isinstance(again, NotFound)
    assert again.to_dict() == body


def test_hierarchy() -> None:
    for cls in EXPECTED.values():
        assert issubclass(cls, OrchError)
        assert issubclass(cls, Exception)
    assert not issubclass(IllegalTransition, OrchError)
    with pytest.raises(OrchError):
        raise Conflict("task is running")


def test_field_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        SpecError("msg", "field")  # type: ignore[misc]
