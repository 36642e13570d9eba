"""Loading a workflow file (YAML or JSON; JSON is read by the same YAML parser, which keeps
positions) and reporting its problems as ``file:line:column: message``.

Positions come from the YAML node tree: each value's path (``("tasks", 1, "depends", 0)``)
maps to where it starts, and each mapping key to where the key starts (for unknown fields).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from ..core.errors import SpecError
from ..core.workflow import Path, Problem, Workflow, build, check

Position = tuple[int, int]  # 1-based line and column


@dataclass(frozen=True)
class Located:
    line: int
    column: int
    message: str

    def format(self, filename: str) -> str:
        return f"{filename}:{self.line}:{self.column}: {self.message}"


class WorkflowFileInvalid(SpecError):
    """A workflow file with problems; ``problems`` are located (line, column)."""

    def __init__(self, filename: str, problems: list[Located]) -> None:
        self.filename = filename
        self.problems = problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(problems[0].format(filename) + more, field="workflow")
        self.details = [p.format(filename) for p in problems]


@dataclass
class Document:
    data: Any
    values: dict[Path, Position]
    keys: dict[Path, Position]
    duplicates: list[tuple[Path, Position]]

    def locate(self, problem: Problem) -> Located:
        table = self.keys if problem.key else self.values
        path = problem.path
        while path and path not in table:  # a missing field: point at its parent
            path = path[:-1]
        line, col = table.get(path) or self.values.get(path) or (1, 1)
        return Located(
            line, col, f"{problem.where()}: {problem.message}" if problem.path else problem.message
        )


_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse(text: str, filename: str = "<workflow>") -> Document:
    """The document and its positions; ``WorkflowFileInvalid`` for text that is not YAML."""
    loader = _LOADER(text)  # libyaml's parser when PyYAML has it: ten times faster, same marks
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = getattr(exc, "problem", None) or str(exc)
        raise WorkflowFileInvalid(
            filename, [Located(line, col, f"not valid YAML or JSON: {problem}")]
        ) from None
    finally:
        loader.dispose()
    doc = Document(data=data, values={}, keys={}, duplicates=[])
    if node is not None:
        _positions(node, (), doc, yaml.SafeLoader(""))
    return doc


def _positions(node: yaml.Node, path: Path, doc: Document, keyer: yaml.SafeLoader) -> None:
    doc.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = keyer.construct_object(key_node, deep=True)
            key = key if isinstance(key, (str, int, float, bool)) or key is None else str(key)
            here = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if path + (key,) in doc.keys:
                doc.duplicates.append((path + (key,), here))
            doc.keys[path + (key,)] = here
            _positions(value_node, path + (key,), doc, keyer)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _positions(item, path + (i,), doc, keyer)


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The workflow JSON Schema shipped in this package."""
    text = resources.files(__package__).joinpath("workflow.schema.json").read_text()
    return json.loads(text)  # type: ignore[no-any-return]


def _valid(data: Any) -> bool:
    """The file against the schema, by a validator compiled to Python (fastjsonschema);
    jsonschema then says what is wrong when it is not."""
    import fastjsonschema

    try:
        _compiled()(data)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


@lru_cache(maxsize=1)
def _compiled() -> Any:
    import fastjsonschema

    return fastjsonschema.compile(copy.deepcopy(schema()))  # it writes into the schema it compiles


def problems_of(
    doc: Document, base_dir: str | None = None, notebook_exists: Callable[[str], bool] | None = None
) -> list[Located]:
    """Every problem: duplicate keys, the JSON Schema, then the graph rules. Notebook paths
    are checked with ``notebook_exists``, else against ``base_dir`` when given."""
    import jsonschema

    found: list[Located] = [
        Located(line, col, f"{'.'.join(map(str, path))}: the key appears twice")
        for path, (line, col) in doc.duplicates
    ]
    schema_paths: set[Path] = set()
    errors: Any = ()
    if not _valid(doc.data):  # the compiled check first: a large valid file costs little
        errors = jsonschema.Draft202012Validator(schema()).iter_errors(doc.data)
    for error in sorted(errors, key=lambda e: list(map(str, e.absolute_path))):
        path = tuple(error.absolute_path)
        schema_paths.add(path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties") or {})
            for extra in sorted(set(error.instance) - allowed, key=str):
                hint = f" (known: {', '.join(sorted(allowed))})" if allowed else ""
                found.append(doc.locate(Problem(path + (extra,), f"unknown field {extra!r}{hint}", key=True)))
            continue
        found.append(doc.locate(Problem(path, _schema_message(error))))
    exists = notebook_exists
    if exists is None and base_dir is not None:
        exists = lambda p: os.path.isfile(os.path.join(base_dir, p))  # noqa: E731
    # the graph rules, except where the schema already said what is wrong with that value
    found += [doc.locate(p) for p in check(doc.data, exists) if p.path not in schema_paths]
    unique: dict[tuple[int, int, str], Located] = {}
    for item in found:
        unique.setdefault((item.line, item.column, item.message), item)
    return sorted(unique.values(), key=lambda p: (p.line, p.column))


def _schema_message(error: Any) -> str:
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    if error.validator == "type":
        return f"must be {_a(error.validator_value)}, not {json.dumps(error.instance)[:60]}"
    return str(error.message)


def _a(kinds: Any) -> str:
    names = {"string": "a string", "number": "a number", "integer": "a whole number", "boolean": "true or false",
             "array": "a list", "object": "a mapping", "null": "null"}  # fmt: skip
    if isinstance(kinds, list):
        return " or ".join(names.get(k, k) for k in kinds)
    return names.get(kinds, str(kinds))


def load(path: str) -> tuple[Workflow, Document]:
    """The workflow in the file at ``path``; ``WorkflowFileInvalid`` lists every problem."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return loads(text, path, base_dir=os.path.dirname(os.path.abspath(path)))


def loads(text: str, filename: str = "<workflow>", base_dir: str | None = None) -> tuple[Workflow, Document]:
    doc = parse(text, filename)
    problems = problems_of(doc, base_dir)
    if problems:
        raise WorkflowFileInvalid(filename, problems)
    exists = None
    if base_dir is not None:
        exists = lambda p: os.path.isfile(os.path.join(base_dir, p))  # noqa: E731
    return build(doc.data, exists, checked=True), doc
