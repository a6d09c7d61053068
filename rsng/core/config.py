"""Run configuration: one validated, typed record per trajectory.

Every field is checked before any work starts; a bad value raises :class:`ConfigError` naming the
field and what is accepted (the CLI turns it into one line on stderr and exit code 2).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from rsng.core.problems import PRESETS, get_problem, problem_names

__all__ = ["RunConfig", "ConfigError", "SAMPLERS", "INTEGRATORS", "PRECISIONS", "LSTSQ_METHODS", "SOLVERS", "resolve"]

SAMPLERS = ("uniform", "column_norm", "leverage", "pivoted_qr", "gaussian", "dense")
INTEGRATORS = ("rk4", "euler")
PRECISIONS = ("f32", "f64")
LSTSQ_METHODS = ("qr", "svd", "gram")
SOLVERS = ("fast", "reference")
#: Most stored times per trajectory when ``save_every`` is left to its default.
MAX_SAVED = 1000


class ConfigError(ValueError):
    """Invalid configuration value. ``field`` names the offending option."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class RunConfig:
    """One RSNG trajectory.

    Attributes:
      problem: registered problem name (``rsng.core.problems.problem_names()``).
      sampler: how the s parameters of a step are chosen (:data:`SAMPLERS`); ``dense`` uses all p.
      s: parameters updated per step, 1 ≤ s ≤ p; ``None`` means dense (s = p).
      n: collocation points (fixed equispaced grid; a perfect square in 2-D).
      depth, width: network depth (embedding and output layer included, ≥ 2) and width.
      dt: time step δt > 0; t_end: final time T ≥ 0 (an integer number of steps of δt).
      seed: seed of the sketch stream (the index sets); init_seed: seed of the network
        initialisation that the θ(0) fit starts from.
      precision: ``f32`` (default, as the paper) or ``f64``.
      rcond: singular values below ``rcond·σ_max`` are dropped in the least squares.
      integrator: ``rk4`` (default) or ``euler``; lstsq: ``gram`` (eigen-decomposition of the normal
        equations in float64, cut-off on σ = √λ; the default for f32 runs), ``qr`` (QR, then SVD of
        R; the default for f64 runs, where squaring κ would cost accuracy) or ``svd`` (thin SVD of the
        sketched matrix, as the authors' code) — all drop σ < rcond·σ_max.
      save_every: record u on the grid every k-th step (default: every step up to
        :data:`MAX_SAVED` stored times).
      solver: ``fast`` (default: only the sampled Jacobian columns are formed, from per-layer
        factors) or ``reference`` (the full n × p Jacobian per stage, as the authors' code) — the
        same method and index sets; θ agrees to rounding.
    """

    problem: str
    sampler: str = "uniform"
    s: int | None = None
    n: int | None = None
    depth: int = 7
    width: int = 25
    dt: float | None = None
    t_end: float | None = None
    seed: int = 0
    init_seed: int = 0
    precision: str = "f32"
    rcond: float | None = None
    integrator: str = "rk4"
    lstsq: str = "gram"
    save_every: int | None = None
    solver: str = "fast"

    # derived, filled by resolve()
    p: int = field(default=0, compare=False)

    @property
    def steps(self) -> int:
        return round(self.t_end / self.dt)

    @property
    def dense(self) -> bool:
        return self.sampler == "dense" or self.s == self.p

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_number(name: str, value: Any, *, integer: bool = False, lo: float | None = None,
                  lo_open: bool = False, allow_none: bool = False) -> None:
    if value is None:
        if allow_none:
            return
        raise ConfigError(name, "is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not float(value).is_integer()):
        kind = "an integer" if integer else "a number"
        raise ConfigError(name, f"must be {kind}, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(name, f"must be finite, got {value!r}")
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise ConfigError(name, f"must be {'>' if lo_open else '≥'} {lo:g}, got {value!r}")


def _choice(name: str, value: Any, accepted: tuple[str, ...]) -> None:
    if value not in accepted:
        raise ConfigError(name, f"unknown value {value!r}; accepted: {', '.join(accepted)}")


def resolve(preset: str | None = None, **overrides: Any) -> RunConfig:
    """Build a complete, validated :class:`RunConfig`.

    Defaults come from the problem (SPEC §3), then the preset (``smoke``, ``fast``, ``accurate``),
    then ``overrides`` (``None`` values are ignored). ``s`` may be the string ``"dense"``.
    """
    from rsng.core.network import Network

    overrides = {k: v for k, v in overrides.items() if v is not None}
    accepted = [f.name for f in dataclasses.fields(RunConfig) if f.name != "p"]
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        raise ConfigError(unknown[0], f"unknown option; accepted: {', '.join(accepted)}")
    if "problem" not in overrides:
        raise ConfigError("problem", f"is required; accepted: {', '.join(problem_names())}")
    _choice("problem", overrides["problem"], problem_names())
    problem = get_problem(overrides["problem"])

    values: dict[str, Any] = {"n": problem.n, "dt": problem.dt, "t_end": problem.t_end, "rcond": problem.rcond}
    if preset is not None:
        _choice("preset", preset, PRESETS)
        values.update(problem.presets.get(preset, {}))
    values.update(overrides)
    if values.get("s") == "dense":
        values["s"] = None
        values["sampler"] = "dense"

    _choice("sampler", values.get("sampler", "uniform"), SAMPLERS)
    _choice("precision", values.get("precision", "f32"), PRECISIONS)
    _choice("integrator", values.get("integrator", "rk4"), INTEGRATORS)
    if values.get("lstsq") is None:  # float32 runs: f64 Gram (faster, as accurate); float64 runs: QR
        values["lstsq"] = "gram" if values.get("precision", "f32") == "f32" else "qr"
    _choice("lstsq", values["lstsq"], LSTSQ_METHODS)
    _choice("solver", values.get("solver", "fast"), SOLVERS)
    _check_number("n", values["n"], integer=True, lo=1)
    _check_number("depth", values.get("depth", 7), integer=True, lo=2)
    _check_number("width", values.get("width", 25), integer=True, lo=1)
    _check_number("dt", values["dt"], lo=0, lo_open=True)
    _check_number("t_end", values["t_end"], lo=0)
    _check_number("rcond", values["rcond"], lo=0)
    if values["rcond"] >= 1:
        raise ConfigError("rcond", f"must be < 1, got {values['rcond']!r}")
    for name in ("seed", "init_seed"):
        _check_number(name, values.get(name, 0), integer=True, lo=0)
        if values.get(name, 0) >= 2**32:
            raise ConfigError(name, f"must be < 2**32, got {values[name]!r}")
    _check_number("save_every", values.get("save_every"), integer=True, lo=1, allow_none=True)
    _check_number("s", values.get("s"), integer=True, lo=1, allow_none=True)

    for key in ("n", "depth", "width", "seed", "init_seed", "s", "save_every"):
        if values.get(key) is not None:
            values[key] = int(values[key])
    for key in ("dt", "t_end", "rcond"):
        values[key] = float(values[key])

    steps = values["t_end"] / values["dt"]
    if abs(steps - round(steps)) > 1e-6 * max(1.0, steps):
        raise ConfigError("t_end", f"must be an integer number of time steps dt={values['dt']:g}, got t_end={values['t_end']:g}")
    try:
        problem.grid_shape(values["n"])
    except ValueError as e:
        raise ConfigError("n", str(e)) from None

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
    return RunConfig(**values, p=p)
