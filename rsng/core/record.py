"""The run record: one declaration of every field of a trajectory's configuration.

Each :class:`Field` says its name, type, default, accepted values, unit, meaning, command-line flag,
whether it varies with the seed (and so is not part of "one configuration"), and how it is stored.
Everything else is derived from :data:`FIELDS` (plus any field added with :func:`register_field`):

- validation of :func:`rsng.core.config.resolve` and the :class:`rsng.core.config.RunConfig` record;
- the run options of the ``rsng`` command line (:mod:`rsng.cli`);
- the configuration columns of the Parquet trajectory rows (:mod:`rsng.results.schema`);
- the params of an MLflow child run (:mod:`rsng.tracking.tracker`);
- the keys a sweep grid may use (:mod:`rsng.service.spec`);
- :data:`CONFIG_COLUMNS`, the columns that define one configuration (:mod:`rsng.analysis`).

Adding a run field is its declaration here (or a :func:`register_field` call) plus the code that uses
it. This module imports nothing heavy: no JAX, no pandas.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rsng.core import recipe, registry

__all__ = [
    "Field",
    "FIELDS",
    "FROM_PROBLEM",
    "register_field",
    "unregister_field",
    "fields",
    "field",
    "input_fields",
    "stored_fields",
    "config_columns",
    "record_columns",
    "CONFIG_COLUMNS",
    "RecordError",
    "FIT_FIELDS",
    "fit_fields_given",
]


class _FromProblem:
    def __repr__(self) -> str:
        return "FROM_PROBLEM"


#: Default of a field whose value comes from the problem (then the preset) when not given.
FROM_PROBLEM: Any = _FromProblem()


class RecordError(ValueError):
    """An invalid value for a field; ``field`` names it (as :class:`rsng.core.config.ConfigError`)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Field:
    """One field of the run record.

    Attributes:
      name: the field's name (RunConfig attribute, Parquet column, MLflow param, grid key).
      type: ``"str"``, ``"int"`` or ``"float"``.
      default: the value when not given; :data:`FROM_PROBLEM` for the problem's (or preset's) value;
        ``None`` where :func:`rsng.core.config.resolve` derives it.
      doc: what the field means (CLI help, column doc, docs).
      unit: unit of a number ("" for none).
      choices: accepted values of a ``str`` field: a tuple or a function giving them (registries).
      flag: command-line flag (default ``--`` + name with ``-``); ``aliases``: more accepted flags.
      cli: which commands take the flag: ``"run"`` (every command with run options), ``"solve"``
        (only ``rsng solve``) or ``None`` (none).
      varies_with_seed: the field changes between the seeds of one configuration (``seed``): it is
        not among :data:`CONFIG_COLUMNS`.
      column: Parquet column type (``int32``, ``int64``, ``float64``, ``string``); ``None``: not stored.
      input: given by the user (``False`` for derived fields such as ``p``).
      lo, lo_open, hi, hi_open: bounds of a number; ``nullable``: ``None`` is a valid value.
      absent: the value of rows written before the field existed (filled in by the loader);
        ``None``: such rows cannot be read.
      parse: for a ``str`` field without fixed choices, a function checking a value and returning its
        canonical spelling (raising ``ValueError`` with the accepted forms otherwise).
    """

    name: str
    type: str
    default: Any
    doc: str
    unit: str = ""
    choices: tuple[str, ...] | Callable[[], Sequence[str]] | None = None
    flag: str | None = None
    aliases: tuple[str, ...] = ()
    cli: str | None = "solve"
    varies_with_seed: bool = False
    column: str | None = None
    input: bool = True
    lo: float | None = None
    lo_open: bool = False
    hi: float | None = None
    hi_open: bool = False
    nullable: bool = False
    absent: Any = None
    parse: Callable[[str], str] | None = None

    @property
    def option(self) -> str:
        """The command-line flag."""
        return self.flag or "--" + self.name.replace("_", "-")

    def accepted(self) -> tuple[str, ...] | None:
        c = self.choices
        return tuple(c() if callable(c) else c) if c is not None else None

    @property
    def pytype(self) -> type:
        return {"str": str, "int": int, "float": float}[self.type]

    def check(self, value: Any) -> Any:
        """``value`` checked against the type, choices and bounds, in the field's Python type."""
        if value is None:
            if self.nullable:
                return None
            raise RecordError(self.name, "is required")
        if self.type == "str":
            accepted = self.accepted()
            if accepted is not None and value not in accepted:
                raise RecordError(self.name, f"unknown value {value!r}; accepted: {', '.join(accepted)}")
            if not isinstance(value, str):
                raise RecordError(self.name, f"must be a string, got {value!r}")
            if self.parse is not None:
                try:
                    return self.parse(value)
                except ValueError as e:
                    raise RecordError(self.name, str(e)) from None
            return value
        integer = self.type == "int"
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or (integer and not float(value).is_integer())
        ):
            raise RecordError(self.name, f"must be {'an integer' if integer else 'a number'}, got {value!r}")
        if not math.isfinite(value):
            raise RecordError(self.name, f"must be finite, got {value!r}")
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            raise RecordError(self.name, f"must be {'>' if self.lo_open else '≥'} {self.lo:g}, got {value!r}")
        if self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi):
            hi = "2**32" if self.hi == 2**32 else f"{self.hi:g}"
            raise RecordError(self.name, f"must be {'<' if self.hi_open else '≤'} {hi}, got {value!r}")
        return int(value) if integer else float(value)


def _problems() -> tuple[str, ...]:
    from rsng.core.problems import problem_names

    return problem_names()


def _recipe(value: str) -> str:
    return recipe.canonical(value)


_SEED = dict(type="int", default=0, lo=0, hi=2**32, hi_open=True, column="int64")

#: The built-in fields, in row order.
FIELDS: tuple[Field, ...] = (
    Field("problem", "str", None, "PDE to solve (see `rsng problems`)", choices=_problems, cli="run", column="string"),
    Field(
        "sampler",
        "str",
        "uniform",
        "how the s parameters of a step are chosen (the sketch; docs/method.md)",
        choices=registry.sampler_names,
        column="string",
    ),
    Field(
        "s",
        "int",
        None,
        "parameters updated per step, 1 ≤ s ≤ p, or 'dense' (s = p)",
        unit="parameters",
        flag="--sparsity",
        column="int64",
        lo=1,
        nullable=True,
    ),
    Field(
        "p",
        "int",
        0,
        "network parameters (derived from depth, width and the problem)",
        unit="parameters",
        cli=None,
        column="int64",
        input=False,
    ),
    Field(
        "n",
        "int",
        FROM_PROBLEM,
        "collocation points (a perfect square for 2-D problems)",
        unit="points",
        cli="run",
        column="int64",
        lo=1,
    ),
    Field("depth", "int", 7, "network depth incl. embedding and output layer", cli="run", column="int32", lo=2),
    Field("width", "int", 25, "network width", cli="run", column="int32", lo=1),
    Field("dt", "float", FROM_PROBLEM, "time step δt", unit="time", cli="run", column="float64", lo=0, lo_open=True),
    Field(
        "t_end",
        "float",
        FROM_PROBLEM,
        "final time T (an integer number of steps)",
        unit="time",
        cli="run",
        column="float64",
        lo=0,
    ),
    Field(
        "seed",
        doc="sketch seed: seed of the stream of sketches (the index sets), not of the network",
        flag="--sketch-seed",
        aliases=("--seed",),
        varies_with_seed=True,
        **_SEED,
    ),
    Field(
        "init_seed",
        doc="seed of the network initialisation the θ(0) fit starts from; a run with the default recipe at a "
        "cut-off that names its fit's init seed gets that one (`rsng problems`)",
        cli="run",
        **_SEED,
    ),
    Field(
        "fit_recipe",
        "str",
        FROM_PROBLEM,
        f"θ(0) fit recipe: a name ({', '.join(recipe.RECIPES)}) and/or key=value overrides of its starting "
        f"point, stage budgets, weight decay and fit grid ({', '.join(recipe.KEYS)}), or "
        "'default' for the problem's own, which may depend on the preset and the cut-off (`rsng problems` "
        "lists them); docs/initial-fit.md",
        cli="run",
        column="string",
        absent=recipe.LEGACY_RECIPE,
        parse=_recipe,
    ),
    Field(
        "precision",
        "str",
        "f32",
        "floating-point precision of the time stepping",
        choices=("f32", "f64"),
        column="string",
    ),
    Field(
        "rcond",
        "float",
        FROM_PROBLEM,
        "least-squares cut-off: singular values below rcond·σ_max are dropped",
        column="float64",
        lo=0,
        hi=1,
        hi_open=True,
    ),
    Field("integrator", "str", "rk4", "explicit Runge–Kutta method", choices=("rk4", "euler"), column="string"),
    Field(
        "lstsq",
        "str",
        None,
        "how the truncated least squares is solved: gram (default for f32), qr (default for f64) or svd",
        choices=("qr", "svd", "gram"),
        column="string",
    ),
    Field(
        "save_every",
        "int",
        None,
        "record the error every k-th step (default: ≤ 1000 records)",
        unit="steps",
        lo=1,
        nullable=True,
    ),
    Field(
        "solver",
        "str",
        "fast",
        "Galerkin strategy: fast (only the sketch's Jacobian columns are formed, from "
        "per-layer factors) or full-jacobian (the full n×p Jacobian per stage; for checking)",
        choices=lambda: tuple(registry.GALERKIN),
        column="string",
    ),
)

_EXTRA: dict[str, Field] = {}


def register_field(f: Field) -> Field:
    """Add a run field (after the built-in ones). It reaches :func:`rsng.core.config.resolve`, the CLI,
    the Parquet rows, MLflow and the sweep grid keys with no other change."""
    if any(g.name == f.name for g in fields()):
        raise ValueError(f"run field {f.name!r} exists")
    if not f.name.isidentifier():
        raise ValueError(f"run field name {f.name!r} must be an identifier")
    if f.default is FROM_PROBLEM:
        raise ValueError(f"run field {f.name!r}: a registered field needs its own default")
    _EXTRA[f.name] = f
    return f


def unregister_field(name: str) -> None:
    _EXTRA.pop(name, None)


def fields() -> tuple[Field, ...]:
    """Every field, built-in then registered."""
    return FIELDS + tuple(_EXTRA.values())


def extra_fields() -> tuple[Field, ...]:
    """The fields added with :func:`register_field`."""
    return tuple(_EXTRA.values())


def field(name: str) -> Field:
    for f in fields():
        if f.name == name:
            return f
    raise KeyError(name)


def input_fields() -> tuple[Field, ...]:
    """The fields a user may give (:func:`rsng.core.config.resolve` keywords, sweep grid keys)."""
    return tuple(f for f in fields() if f.input)


def stored_fields() -> tuple[Field, ...]:
    """The fields stored as Parquet columns (and logged as MLflow params), in row order."""
    return tuple(f for f in fields() if f.column is not None)


def record_columns() -> tuple[str, ...]:
    """Names of the stored fields: the configuration part of a trajectory row."""
    return tuple(f.name for f in stored_fields())


def config_columns() -> tuple[str, ...]:
    """The stored fields that define one configuration (what seeds are averaged over)."""
    return tuple(f.name for f in stored_fields() if not f.varies_with_seed)


#: The built-in configuration columns (:func:`config_columns` includes registered fields).
CONFIG_COLUMNS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.column is not None and not f.varies_with_seed)


#: The run fields that choose θ(0)'s fit: a run given its own θ(0) (``rsng solve --theta0``,
#: :func:`rsng.core.fit.given_theta`) replaces the fit and must set none of them.
FIT_FIELDS = ("fit_recipe", "init_seed")


def fit_fields_given(values: Any) -> list[str]:
    """The :data:`FIT_FIELDS` that ``values`` (a mapping, or an object with those attributes) sets (not ``None``)."""
    get = values.get if hasattr(values, "get") else lambda name: getattr(values, name, None)
    return [name for name in FIT_FIELDS if get(name) is not None]
