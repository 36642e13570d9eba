"""Search spaces of a hyperparameter search: what a space may hold, its validation, and the
trials' parameters it gives, deterministically from a seed.

A space maps a parameter name to one of:

- a non-empty **list**: a grid axis, every value taken in turn (``"lr": [0.1, 0.01]``);
- a **distribution**, a one-key dict, sampled for each trial:
  ``{"uniform": [low, high]}`` (a float in [low, high]),
  ``{"loguniform": [low, high]}`` (a float in [low, high], uniform in log; 0 < low),
  ``{"randint": [low, high]}`` (an int in [low, high): **high is exclusive**, as in Ray
  Tune's ``randint``, numpy and ``range``),
  ``{"quniform": [low, high, q]}`` (a multiple of q in [low, high], each equally likely;
  an int when low, high and q are ints),
  ``{"choice": [values...]}`` (one of the values, sampled: unlike a list, not a grid axis);
- any other JSON scalar (str, number, bool, null): a **constant**, passed as is. A constant
  list or dict is written as a one-value grid axis: ``"layers": [[64, 64]]``.

Trial ``n`` of a space is a pure function of ``(space, seed, n)``: its grid part is the
``n``-th combination of the grid axes (in ``itertools.product`` order, the last axis
varying fastest, cycling when the space also has distributions) and its sampled part comes
from ``random.Random`` seeded with ``"{seed}/{n}"``. So a search persisted as JSON needs no
random generator state to go on after a restart: only the next trial number.

Pure: no I/O, standard library only; the SDK's helpers (:func:`uniform`, ...) build the raw
dicts, :func:`parse_space` checks a raw space and raises :class:`SpecError` naming
``space.<name>``.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, Union

from .errors import SpecError

MAX_NAMES = 64  # parameters in one space
MAX_NAME = 64  # characters in a parameter name
MAX_VALUES = 10_000  # values of one grid axis or one choice
MAX_DEPTH = 16  # nesting of a JSON value in a grid axis or a choice
MAX_TEXT = 10_000  # characters of a string value
DISTRIBUTIONS = ("uniform", "loguniform", "randint", "quniform", "choice")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LIMIT = 2.0**53  # the largest magnitude a bound may have (exact in a float and in JSON)

JSON = Any
"""A JSON value: None, bool, int, float (finite), str, list or dict with str keys."""
_D = TypeVar("_D", bound=Mapping[str, Any])


# --- the SDK's helpers --------------------------------------------------------------------


def uniform(low: float, high: float) -> dict[str, list[float]]:
    """A float drawn uniformly from [low, high]."""
    return _checked({"uniform": [low, high]})


def loguniform(low: float, high: float) -> dict[str, list[float]]:
    """A float in [low, high] (0 < low) whose logarithm is uniform: for learning rates."""
    return _checked({"loguniform": [low, high]})


def randint(low: int, high: int) -> dict[str, list[int]]:
    """An int drawn uniformly from [low, high): ``high`` is exclusive, as in ``range``."""
    return _checked({"randint": [low, high]})


def quniform(low: float, high: float, q: float) -> dict[str, list[float]]:
    """A multiple of ``q`` in [low, high], each equally likely."""
    return _checked({"quniform": [low, high, q]})


def choice(values: Sequence[JSON]) -> dict[str, list[JSON]]:
    """One of ``values``, sampled for each trial (a plain list would be a grid axis)."""
    return _checked({"choice": list(values)})


def _checked(raw: _D) -> _D:
    _parse_dim(raw, None)  # a wrong call fails where it is written, not at submit
    return raw


# --- dimensions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """A grid axis: every value in turn."""

    values: tuple[JSON, ...]

    def to_raw(self) -> JSON:
        return list(self.values)


@dataclass(frozen=True)
class Constant:
    value: JSON

    def to_raw(self) -> JSON:
        return self.value


@dataclass(frozen=True)
class Uniform:
    """A float in [low, high]; uniform in log when ``log`` (0 < low)."""

    low: float
    high: float
    log: bool = False

    def sample(self, rng: random.Random) -> JSON:
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return min(max(value, self.low), self.high)  # float rounding never leaves the range

    def to_raw(self) -> JSON:
        return {"loguniform" if self.log else "uniform": [self.low, self.high]}


@dataclass(frozen=True)
class RandInt:
    """An int in [low, high): high exclusive."""

    low: int
    high: int

    def sample(self, rng: random.Random) -> JSON:
        return rng.randrange(self.low, self.high)

    def to_raw(self) -> JSON:
        return {"randint": [self.low, self.high]}


@dataclass(frozen=True)
class QUniform:
    """A multiple of q in [low, high], every one equally likely."""

    low: float
    high: float
    q: float

    def _range(self) -> tuple[int, int]:
        return math.ceil(self.low / self.q - 1e-9), math.floor(self.high / self.q + 1e-9)

    def sample(self, rng: random.Random) -> JSON:
        first, last = self._range()
        k = rng.randint(first, last)
        if all(isinstance(v, int) for v in (self.low, self.high, self.q)):
            return int(k * self.q)
        value = float(f"{k * self.q:.12g}")  # 0.30000000000000004 -> 0.3
        return min(max(value, float(self.low)), float(self.high))

    def to_raw(self) -> JSON:
        return {"quniform": [self.low, self.high, self.q]}


@dataclass(frozen=True)
class Choice:
    """One of the values, sampled."""

    values: tuple[JSON, ...]

    def sample(self, rng: random.Random) -> JSON:
        return self.values[rng.randrange(len(self.values))]

    def to_raw(self) -> JSON:
        return {"choice": list(self.values)}


Sampled = Union[Uniform, RandInt, QUniform, Choice]
Dimension = Union[Grid, Constant, Sampled]


# --- the space -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Space:
    """A checked search space (made by :func:`parse_space`). Names keep the order given."""

    dims: tuple[tuple[str, Dimension], ...]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.dims]

    def is_grid(self) -> bool:
        """Only grid axes and constants: the space is finite, nothing is sampled."""
        return all(isinstance(dim, (Grid, Constant)) for _, dim in self.dims)

    def grid_size(self) -> int:
        """The number of combinations of the grid axes (1 when there are none)."""
        return math.prod(len(dim.values) for _, dim in self.dims if isinstance(dim, Grid))

    def count(self, max_trials: int | None) -> int:
        """How many trials :meth:`trials` gives: a grid's combinations (at most
        ``max_trials``), or ``max_trials`` when something is sampled (then it is required:
        :class:`SpecError` on ``max_trials``)."""
        if max_trials is not None:
            _check_max_trials(max_trials)
        if self.is_grid():
            size = self.grid_size()
            return size if max_trials is None else min(size, max_trials)
        if max_trials is None:
            sampled = ", ".join(name for name, dim in self.dims if not isinstance(dim, (Grid, Constant)))
            raise SpecError(
                f"set max_trials: the space samples {sampled}, so it has no end of its own",
                field="max_trials",
            )
        return max_trials

    def trial(self, number: int, seed: int) -> dict[str, JSON]:
        """The parameters of trial ``number`` (from 0): the same for the same seed, always."""
        if number < 0:
            raise ValueError(f"a trial number is >= 0, not {number}")
        combination = number % self.grid_size()
        grid: dict[str, JSON] = {}
        for name, dim in reversed(self.dims):  # the last axis varies fastest
            if isinstance(dim, Grid):
                combination, index = divmod(combination, len(dim.values))
                grid[name] = dim.values[index]
        rng = random.Random(f"{seed}/{number}")
        out: dict[str, JSON] = {}
        for name, dim in self.dims:  # sampled in the space's order: stable per seed
            if isinstance(dim, Grid):
                out[name] = grid[name]
            elif isinstance(dim, Constant):
                out[name] = dim.value
            else:
                out[name] = dim.sample(rng)
        return out

    def trials(self, max_trials: int | None, seed: int = 0) -> Iterator[dict[str, JSON]]:
        """The trials' parameters in order: a grid's every combination (at most
        ``max_trials``; all when it is None), or ``max_trials`` sampled trials taking the grid
        axes' combinations in turn. :class:`SpecError` on ``max_trials`` when something is
        sampled and it is None."""
        total = self.count(max_trials)
        return (self.trial(n, seed) for n in range(total))

    def to_dict(self) -> dict[str, JSON]:
        """The space as raw JSON again; ``parse_space(space.to_dict()) == space``."""
        return {name: dim.to_raw() for name, dim in self.dims}


def _check_max_trials(max_trials: object) -> int:
    if isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 1:
        raise SpecError(f"max_trials must be a whole number >= 1, not {max_trials!r}", field="max_trials")
    return max_trials


def parse_space(raw: object) -> Space:
    """Check a raw space (JSON, or what the SDK's helpers build); :class:`SpecError` with
    ``field="space.<name>"`` (or ``"space"``) says what is wrong."""
    if isinstance(raw, Space):
        return raw
    if not isinstance(raw, Mapping):
        raise SpecError(
            f"a search space is a mapping of parameter names to values, lists or distributions, "
            f"not {type(raw).__name__}",
            field="space",
        )
    if not raw:
        raise SpecError("the search space is empty: give at least one parameter", field="space")
    if len(raw) > MAX_NAMES:
        raise SpecError(f"a search space has at most {MAX_NAMES} parameters, not {len(raw)}", field="space")
    dims: list[tuple[str, Dimension]] = []
    for name, value in raw.items():
        if not isinstance(name, str) or len(name) > MAX_NAME or not _NAME.fullmatch(name):
            raise SpecError(
                f"a parameter name is letters, digits and '_' (not starting with a digit, at most "
                f"{MAX_NAME} characters), not {name!r}",
                field=f"space.{name}" if isinstance(name, str) and name.isprintable() else "space",
            )
        dims.append((name, _parse_dim(value, f"space.{name}")))
    return Space(tuple(dims))


def _parse_dim(value: object, field: str | None) -> Dimension:
    where = f"{field}: " if field else ""
    if isinstance(value, (list, tuple)):
        if not value:
            raise SpecError(
                f"{where}an empty list is a grid axis with no value; give at least one", field=field
            )
        return Grid(_json_values(value, field, "a grid axis"))
    if isinstance(value, Mapping):
        if len(value) != 1:
            raise SpecError(
                f"{where}a distribution is a dict of one key ({', '.join(DISTRIBUTIONS)}), "
                f"e.g. {{'uniform': [0, 1]}}, not one of {len(value)} keys; wrap a constant dict "
                f"in a list: [{{...}}]",
                field=field,
            )
        ((kind, args),) = value.items()
        if kind not in DISTRIBUTIONS:
            raise SpecError(
                f"{where}unknown distribution {kind!r}: use one of {', '.join(DISTRIBUTIONS)}",
                field=field,
            )
        if not isinstance(args, (list, tuple)):
            raise SpecError(
                f"{where}{kind} takes a list of arguments, e.g. {{'{kind}': {_EXAMPLES[kind]}}}, "
                f"not {args!r:.60}",
                field=field,
            )
        if kind == "choice":
            if not args:
                raise SpecError(f"{where}choice needs at least one value", field=field)
            return Choice(_json_values(args, field, "choice"))
        return _parse_numeric(kind, list(args), field, where)
    if isinstance(value, (set, frozenset)):
        raise SpecError(f"{where}a set has no order: use a list for a grid axis", field=field)
    _check_json(value, field, 0)
    return Constant(value)


_EXAMPLES = {
    "uniform": "[0.0, 1.0]",
    "loguniform": "[1e-5, 1e-1]",
    "randint": "[1, 10]",
    "quniform": "[0, 1, 0.25]",
    "choice": "['adam', 'sgd']",
}


def _parse_numeric(kind: str, args: list[object], field: str | None, where: str) -> Sampled:
    arity = 3 if kind == "quniform" else 2
    names = "low, high, q" if kind == "quniform" else "low, high"
    if len(args) != arity:
        raise SpecError(
            f"{where}{kind} takes [{names}], e.g. {{'{kind}': {_EXAMPLES[kind]}}}, not {len(args)} values",
            field=field,
        )
    numbers: list[float] = []
    for arg in args:
        if isinstance(arg, bool) or not isinstance(arg, (int, float)) or not abs(arg) <= _LIMIT:
            raise SpecError(
                f"{where}{kind} takes finite numbers [{names}] (at most 2**53 in size), not {arg!r:.60}",
                field=field,
            )
        numbers.append(arg)
    low, high = numbers[0], numbers[1]
    if not low < high:
        raise SpecError(f"{where}{kind} needs low < high, not [{low!r}, {high!r}]", field=field)
    if kind == "randint":
        if not all(isinstance(v, int) for v in (low, high)):
            raise SpecError(
                f"{where}randint takes whole numbers [low, high) (high exclusive), not [{low!r}, {high!r}]",
                field=field,
            )
        return RandInt(int(low), int(high))
    if kind == "loguniform":
        if low <= 0:
            raise SpecError(f"{where}loguniform needs 0 < low, not low = {low!r}", field=field)
        return Uniform(low, high, log=True)
    if kind == "quniform":
        q = numbers[2]
        if q <= 0:
            raise SpecError(f"{where}quniform needs a step q > 0, not {q!r}", field=field)
        dim = QUniform(low, high, q)
        first, last = dim._range()
        if first > last:
            raise SpecError(f"{where}quniform: no multiple of {q!r} lies in [{low!r}, {high!r}]", field=field)
        return dim
    return Uniform(low, high)


def _json_values(values: Sequence[object], field: str | None, what: str) -> tuple[JSON, ...]:
    if len(values) > MAX_VALUES:
        raise SpecError(
            f"{field + ': ' if field else ''}{what} has at most {MAX_VALUES} values, not {len(values)}",
            field=field,
        )
    return tuple(_check_json(v, field, 1) for v in values)


def _check_json(value: object, field: str | None, depth: int) -> JSON:
    """``value`` as JSON (tuples become lists), or a SpecError saying why it is not JSON."""
    where = f"{field}: " if field else ""
    if depth > MAX_DEPTH:
        raise SpecError(f"{where}a value nests more than {MAX_DEPTH} levels deep", field=field)
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SpecError(f"{where}{value!r} is not a JSON number: use a finite number", field=field)
        return value
    if isinstance(value, str):
        if len(value) > MAX_TEXT or "\0" in value or not _utf8(value):
            raise SpecError(
                f"{where}a string value has at most {MAX_TEXT} characters of UTF-8 text without NUL",
                field=field,
            )
        return value
    if isinstance(value, (list, tuple)):
        return [_check_json(v, field, depth + 1) for v in value]
    if isinstance(value, Mapping):
        out: dict[str, JSON] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SpecError(f"{where}a dict value's keys must be strings, not {key!r:.60}", field=field)
            _check_json(key, field, depth + 1)
            out[key] = _check_json(item, field, depth + 1)
        return out
    raise SpecError(
        f"{where}{type(value).__name__} is not a JSON value (str, number, bool, None, list or dict)",
        field=field,
    )


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True
