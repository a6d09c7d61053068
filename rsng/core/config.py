"""Run configuration: one validated, typed record per trajectory.

Every field is checked before any work starts; a bad value raises :class:`ConfigError` naming the
field and what is accepted (the CLI turns it into one line on stderr and exit code 2).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

from rsng.core import recipe, record, registry
from rsng.core.problems import CUTOFF_KEYS, PRESETS, get_problem, problem_names

__all__ = ["RunConfig", "ConfigError", "INTEGRATORS", "PRECISIONS", "LSTSQ_METHODS", "SOLVERS", "resolve"]

INTEGRATORS = record.field("integrator").accepted()
PRECISIONS = record.field("precision").accepted()
LSTSQ_METHODS = record.field("lstsq").accepted()
SOLVERS = tuple(registry.GALERKIN)
#: Most stored times per trajectory when ``save_every`` is left to its default.
MAX_SAVED = 1000


def __getattr__(name: str) -> Any:
    if name == "SAMPLERS":  # the registry's names now (a sampler may be registered later)
        return registry.sampler_names()
    raise AttributeError(name)


class ConfigError(record.RecordError):
    """Invalid configuration value. ``field`` names the offending option."""


def _steps(self) -> int:
    return round(self.t_end / self.dt)


def _dense(self) -> bool:
    return self.sampler == "dense" or self.s == self.p


def _to_dict(self) -> dict[str, Any]:
    """Every field by name (registered fields included), JSON-able."""
    d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
    d.update(dict(self.extra))
    return d


def _getattr(self, name: str) -> Any:
    if name != "extra":
        for k, v in object.__getattribute__(self, "extra"):
            if k == name:
                return v
    raise AttributeError(f"RunConfig has no field {name!r}")


def _from_dict(cls, d: dict[str, Any]) -> RunConfig:
    """The record of :meth:`to_dict` (registered fields go to ``extra``, in registration order)."""
    names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
    order = [f.name for f in record.extra_fields()]
    rest = sorted((k for k in d if k not in names), key=lambda k: (order.index(k) if k in order else len(order), k))
    return cls(**{k: v for k, v in d.items() if k in names}, extra=tuple((k, d[k]) for k in rest))


_DOC = """One RSNG trajectory: a validated record with one attribute per field of :mod:`rsng.core.record`
(``problem``, ``sampler``, ``s``, ``p``, ``n``, ``depth``, ``width``, ``dt``, ``t_end``, ``seed`` (the sketch
seed), ``init_seed``, ``precision``, ``rcond``, ``integrator``, ``lstsq``, ``save_every``, ``solver``); fields
registered later with :func:`rsng.core.record.register_field` are attributes too (held in ``extra``).
Build it with :func:`resolve`; ``steps`` is ``t_end / dt``; ``dense`` says whether all p parameters move."""

#: The validated record of one trajectory, derived from :data:`rsng.core.record.FIELDS`.
RunConfig = dataclasses.make_dataclass(
    "RunConfig",
    [
        (
            f.name,
            f.pytype | None,
            dataclasses.field(default=None if f.default is record.FROM_PROBLEM else f.default, compare=f.input),
        )
        for f in record.FIELDS
        if f.input
    ]
    + [("p", int, dataclasses.field(default=0, compare=False)), ("extra", tuple, dataclasses.field(default=()))],
    namespace={
        "steps": property(_steps),
        "dense": property(_dense),
        "to_dict": _to_dict,
        "__getattr__": _getattr,
        "from_dict": classmethod(_from_dict),
        "__doc__": _DOC,
        "__module__": __name__,
    },
    frozen=True,
)


def _choice(name: str, value: Any, accepted: tuple[str, ...]) -> None:
    if value not in accepted:
        raise ConfigError(name, f"unknown value {value!r}; accepted: {', '.join(accepted)}")


def resolve(preset: str | None = None, **overrides: Any) -> RunConfig:
    """Build a complete, validated :class:`RunConfig`.

    Defaults come from the problem (docs/method.md, "Problems"), then the preset (``smoke``, ``fast``, ``accurate``),
    then ``overrides`` (``None`` values are ignored). ``s`` may be the string ``"dense"``.
    """
    from rsng.core.network import Network

    overrides = {k: v for k, v in overrides.items() if v is not None}
    accepted = [f.name for f in record.input_fields()]
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        raise ConfigError(unknown[0], f"unknown option; accepted: {', '.join(accepted)}")
    if "problem" not in overrides:
        raise ConfigError("problem", f"is required; accepted: {', '.join(problem_names())}")
    _choice("problem", overrides["problem"], problem_names())
    problem = get_problem(overrides["problem"])

    values: dict[str, Any] = {
        "n": problem.n,
        "dt": problem.dt,
        "t_end": problem.t_end,
        "rcond": problem.rcond,
    }
    preset_values = problem.presets.get(preset, {})
    if preset is not None:
        _choice("preset", preset, PRESETS)
        # the preset's recipe keys choose the default θ(0) below (Problem.default_theta0); the others are run fields
        values.update({k: v for k, v in preset_values.items() if k not in ("fit_recipe", *CUTOFF_KEYS)})
    values.update(overrides)
    if overrides.get("fit_recipe", "default") == "default":  # none asked for, or "default" by name (a sweep axis)
        # the preset's at the run's cut-off, the preset's own, the problem's at the cut-off, the problem's; with
        # the init seed of that default fit unless the run names one (Problem.default_theta0)
        values["fit_recipe"], init_seed = problem.default_theta0(values["rcond"], preset)
        values.setdefault("init_seed", init_seed)
    if values.get("s") == "dense":
        values["s"] = None
        values["sampler"] = "dense"
    if values.get("solver") in registry.SOLVER_ALIASES:
        new = registry.SOLVER_ALIASES[values["solver"]]
        warnings.warn(
            f"solver {values['solver']!r} is deprecated; use {new!r} (the same method)",
            DeprecationWarning,
            stacklevel=2,
        )
        values["solver"] = new
    if values.get("lstsq") is None:  # float32 runs: f64 Gram (faster, as accurate); float64 runs: QR
        values["lstsq"] = "gram" if values.get("precision", "f32") == "f32" else "qr"
    for f in record.input_fields():  # type, accepted values and bounds of every field, in record order
        if f.name not in values and f.default is not record.FROM_PROBLEM:
            values[f.name] = f.default
        try:
            values[f.name] = f.check(values[f.name])
        except record.RecordError as e:
            raise ConfigError(e.field, str(e).split(": ", 1)[1]) from None

    steps = values["t_end"] / values["dt"]
    if abs(steps - round(steps)) > 1e-6 * max(1.0, steps):
        raise ConfigError(
            "t_end", f"must be an integer number of time steps dt={values['dt']:g}, got t_end={values['t_end']:g}"
        )
    try:
        problem.grid_shape(values["n"])
    except ValueError as e:
        raise ConfigError("n", str(e)) from None

    fit = recipe.parse(values["fit_recipe"])
    if fit.fit_points:
        try:
            problem.grid_shape(fit.fit_points)
        except ValueError as e:
            raise ConfigError(
                "fit_recipe", f"points={fit.fit_points} is not a grid of {problem.name}'s box: {e}"
            ) from None
    if values["depth"] == 2 and fit.weight_decay > 0:
        raise ConfigError(
            "fit_recipe",
            f"weight decay (wd) acts on the hidden dense weights, and depth 2 has none; use depth ≥ 3 "
            f"or wd=0, got {values['fit_recipe']!r} at depth 2",
        )
    net = Network(problem.dim, problem.lengths, values.get("width", 25), values.get("depth", 7))
    p = net.num_params
    sampler = values.get("sampler", "uniform")
    s = values.get("s")
    if sampler == "dense":
        s = p if s is None else s
        if s != p:
            raise ConfigError("s", f"sampler 'dense' updates all p={p} parameters; got s={s} (omit s or pass 'dense')")
    elif s is None:
        s = p
    if s > p:
        raise ConfigError("s", f"must be ≤ p={p} (the network's parameter count), got {s}")
    values["s"] = s
    if values.get("save_every") is None:
        values["save_every"] = max(1, math.ceil(round(steps) / MAX_SAVED))
    extra = tuple((f.name, values.pop(f.name)) for f in record.extra_fields())
    return RunConfig(**values, p=p, extra=extra)
