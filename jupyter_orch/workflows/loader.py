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

from ..core import limits
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
    """The document and its positions; ``WorkflowFileInvalid`` for text that is not YAML,
    is nested too deep, or whose aliases would expand it past the budget (a "billion
    laughs" document is refused before anything is built from it)."""
    if len(text) > limits.MAX_WORKFLOW_BYTES:
        raise SpecError(
            f"{filename} is {len(text)} characters, over the limit of {limits.MAX_WORKFLOW_BYTES}",
            field="source",
        )
    limits.check_text(text, "source", nul=True)  # a lone surrogate is not text YAML can read
    loader = _LOADER(text)  # libyaml's parser when PyYAML has it: ten times faster, same marks
    try:
        _guard(text, filename)
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


def _guard(text: str, filename: str) -> None:
    """One pass over the parser's events, before any node is built: nesting at most
    ``MAX_DEPTH`` deep, and the values that aliases bring in (each alias counts the size
    of what it names, nested aliases multiplied out) at most ``MAX_YAML_ALIAS_NODES`` or
    ten times the document's own size, whichever is larger."""
    sizes: dict[str, int] = {}  # anchor -> how many values it stands for
    stack: list[list[Any]] = []  # open collections: [anchor, size so far]
    own = from_aliases = 0
    budget = limits.MAX_YAML_ALIAS_NODES
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent)):
            if isinstance(event, yaml.AliasEvent):
                size = sizes.get(event.anchor or "", 1)
                from_aliases += size
                budget = max(limits.MAX_YAML_ALIAS_NODES, 10 * own)
                if from_aliases > budget:
                    raise _refused(event, filename, f"aliases expand this file past {budget} values "
                                   f"(*{event.anchor} alone stands for {size}); write the values out "
                                   "or nest fewer aliases")  # fmt: skip
            else:
                size = 1
                own += 1
                if event.anchor:
                    sizes[event.anchor] = 1
            if stack:
                stack[-1][1] += size
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if len(stack) >= limits.MAX_DEPTH:
                raise _refused(event, filename, f"values are nested more than {limits.MAX_DEPTH} levels deep")
            own += 1
            stack.append([event.anchor, 1])
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            anchor, size = stack.pop()
            if anchor:
                sizes[anchor] = size
            if stack:
                stack[-1][1] += size


def _refused(event: Any, filename: str, message: str) -> WorkflowFileInvalid:
    mark = event.start_mark
    return WorkflowFileInvalid(filename, [Located(mark.line + 1, mark.column + 1, message)])


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
    found += [doc.locate(p) for p in _text_problems(doc.data)]
    exists = notebook_exists
    if exists is None and base_dir is not None:
        exists = lambda p: os.path.isfile(os.path.join(base_dir, p))  # noqa: E731
    # the graph rules, except where the schema already said what is wrong with that value
    found += [doc.locate(p) for p in check(doc.data, exists) if p.path not in schema_paths]
    unique: dict[tuple[int, int, str], Located] = {}
    for item in found:
        unique.setdefault((item.line, item.column, item.message), item)
    return sorted(unique.values(), key=lambda p: (p.line, p.column))


def _text_problems(data: Any) -> list[Problem]:
    """Strings no database can store: a NUL character, a lone UTF-16 surrogate (both can
    be written as escapes in a double-quoted YAML string)."""
    out: list[Problem] = []
    stack: list[tuple[Any, Path]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            try:
                limits.check_text(value, "value")
            except SpecError as exc:
                out.append(Problem(path, exc.message.removeprefix("value ")))
        elif isinstance(value, dict):
            stack.extend((v, path + (k,)) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, path + (i,)) for i, v in enumerate(value))
    return out


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
