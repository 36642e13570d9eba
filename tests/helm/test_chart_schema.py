"""values.schema.json: draft-07, closed at the top level so that a typo fails the install
(Helm checks it at lint and at render), and in step with values.yaml."""

from __future__ import annotations

import json
from typing import Any

import helm_python
import jsonschema
import pytest
import yaml
from chartkit import CHART, DB_URL, VARIANTS, render

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
DEFAULTS = yaml.safe_load((CHART / "values.yaml").read_text())

BAD = {
    "typo at the top": ({"netwrokPolicy": {"create": False}}, "netwrokPolicy"),
    "typo inside": ({"mode": "team", "db": {"uri": DB_URL}}, "uri"),
    "unknown mode": ({"mode": "shared"}, "/mode"),
    "port as text": ({"service": {"port": "8000"}}, "/service/port"),
    "flag as text": ({"networkPolicy": {"create": "false"}}, "/networkPolicy/create"),
    "config not by class": ({"config": {"OrchApp": "kubernetes"}}, "/config/OrchApp"),
    "service name not a DNS label": ({"hub": {"serviceName": "Orch_1"}}, "/hub/serviceName"),
    "password not URL-safe": ({"postgresql": {"password": "p@ss/word"}}, "/postgresql/password"),
}


def test_the_schema_is_draft_07_and_closed_at_the_top() -> None:
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["additionalProperties"] is False


def test_values_yaml_and_the_schema_name_the_same_keys() -> None:
    jsonschema.Draft7Validator(SCHEMA).validate(DEFAULTS)
    assert set(SCHEMA["properties"]) - {"global"} == set(DEFAULTS)

    def walk(schema: dict[str, Any], values: dict[str, Any], path: str) -> None:
        if schema.get("additionalProperties") is not False:
            return
        assert set(schema["properties"]) - {"global"} == set(values), path
        for key, sub in schema["properties"].items():
            if isinstance(values.get(key), dict) and "properties" in sub:
                walk(sub, values[key], f"{path}.{key}")

    walk(SCHEMA, DEFAULTS, "")


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_the_tests_use_is_valid(variant: str) -> None:
    with helm_python.Chart.load(CHART) as chart:
        jsonschema.Draft7Validator(SCHEMA).validate(chart.merge_values(VARIANTS[variant]))


@pytest.mark.parametrize("case", BAD)
def test_helm_refuses_bad_values_at_render(case: str) -> None:
    values, where = BAD[case]
    with pytest.raises(helm_python.HelmValuesError) as caught:
        render(values)
    assert where in str(caught.value)


@pytest.mark.parametrize("case", ["typo at the top", "port as text"])
def test_helm_lint_reports_bad_values(case: str) -> None:
    values, where = BAD[case]
    report = helm_python.lint(CHART, values)
    assert report["errors"] and any(where in e for e in report["errors"])
    assert helm_python.lint(CHART, {})["errors"] == []
