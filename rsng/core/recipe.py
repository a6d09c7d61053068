"""The θ(0) fit recipe: its starting point and its optimiser stages with their budgets, as one run field.

A recipe is written as a string (the ``fit_recipe`` run field, ``--fit-recipe``): a named recipe of
:data:`RECIPES`, optionally followed by overrides, or overrides alone (on top of ``lbfgs-lm-adam``)::

    rich                         a named recipe
    rich,lm=50                   the same with 50 Levenberg–Marquardt steps
    lbfgs=1000,lm=0,adam=0       L-BFGS only, from the plain initialisation

Keys (:data:`KEYS`): ``lbfgs``, ``lm``, ``adam``, ``polish`` (steps of each stage, ≥ 0: L-BFGS, then
Levenberg–Marquardt, then Adam, then Levenberg–Marquardt again), ``lr`` (Adam's initial step, > 0),
``embed``, ``weight`` (scales of the initialisation's embedding and hidden dense weights, > 0),
``beta0`` (the rational activations' initial β0, > 0), ``wd`` (weight decay: the fit also minimises
``wd`` × the RMS of the hidden dense weights, ≥ 0; 0 = off) and ``points`` (the grid the L-BFGS and Adam
stages fit on: that many equispaced points of the box, ≥ 0; 0 = the run's grid, every k-th point of it
above 2000 points; the Levenberg–Marquardt stages stay on the run's grid). The stages and the starting point are described in
docs/method.md ("The initial condition θ(0)") and the choice of the defaults in docs/initial-fit.md. Each
problem names its default recipe (``Problem.fit_recipe``, and per cut-off ``Problem.fit_recipe_at``); the run
field's value ``default`` stands for it (:func:`rsng.core.config.resolve` replaces it before this module sees it).
The fit cache keys on the resolved :class:`FitSettings`, so two spellings of one recipe share their fit.
This module imports nothing heavy (no JAX).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

__all__ = ["FitSettings", "RECIPES", "KEYS", "DEFAULT_RECIPE", "LEGACY_RECIPE", "RecipeError", "parse", "canonical"]


@dataclass(frozen=True)
class FitSettings:
    """The θ(0) recipe: the starting point and the optimiser stages with their budgets.

    ``embed_scale`` and ``weight_scale`` multiply the network initialisation's embedding amplitudes and
    offsets and its hidden dense weights; ``beta0`` replaces the constant β0 of every rational
    activation's denominator (poles at ±i·√(β0/β2): smaller is sharper). A richer starting point keeps
    more of J's directions above the cut-off through the fit (docs/initial-fit.md). ``weight_decay``
    adds ``weight_decay · rms(W)`` (W: the hidden dense weights) to every stage's objective — a third
    residual block beside those of u and ∇u —, to keep J's hidden-weight columns small.
    ``polish_steps`` Levenberg–Marquardt steps follow Adam (after a long Adam run at a large step they lower
    the t = 0 error and leave J's spectrum as Adam shaped it). ``fit_points`` > 0 makes the L-BFGS and Adam
    stages fit u0 on a grid of that many equispaced points instead of the run's (e.g. twice as dense:
    the network is then held to u0 between the run's collocation points too); 0 keeps the run's grid.
    """

    lbfgs_steps: int = 1000
    lm_steps: int = 300
    adam_steps: int = 300
    adam_lr: float = 1e-6
    embed_scale: float = 1.0
    weight_scale: float = 1.0
    beta0: float = 1.0
    weight_decay: float = 0.0
    polish_steps: int = 0
    fit_points: int = 0


#: Short key of the recipe syntax → FitSettings attribute.
KEYS: dict[str, str] = {
    "lbfgs": "lbfgs_steps",
    "lm": "lm_steps",
    "adam": "adam_steps",
    "lr": "adam_lr",
    "embed": "embed_scale",
    "weight": "weight_scale",
    "beta0": "beta0",
    "wd": "weight_decay",
    "polish": "polish_steps",
    "points": "fit_points",
}

#: The named recipes.
RECIPES: dict[str, FitSettings] = {
    # the fit of the first releases: L-BFGS, LM, Adam from the plain initialisation (t = 0 error ≈ 2e-6)
    "lbfgs-lm-adam": FitSettings(),
    # a richer starting point (embedding ×3, hidden weights ×2), shorter LM, no Adam (docs/initial-fit.md)
    "rich": FitSettings(embed_scale=3.0, weight_scale=2.0, lm_steps=100, adam_steps=0),
    # a long Adam run at a large step from the plain initialisation, then a short Levenberg–Marquardt
    # polish: the Jacobian keeps a flat spectrum (σ_max ≈ 50, ~110 singular values above 1e-4·σ_max on
    # allen_cahn fast against 57 for lbfgs-lm-adam), so the paper's cut-off keeps most sketched
    # directions (docs/initial-fit.md)
    "adam-lm": FitSettings(lbfgs_steps=0, lm_steps=0, adam_steps=30_000, adam_lr=3e-3, polish_steps=30),
}

#: The recipe of rows written before the field existed.
LEGACY_RECIPE = "lbfgs-lm-adam"
#: The default recipe of a problem that names none (allen_cahn and burgers name variants of ``adam-lm``:
#: rsng/core/problems.py; docs/initial-fit.md says why).
DEFAULT_RECIPE = "lbfgs-lm-adam"


#: Float fields that may be 0 (the others must be > 0).
_NONNEGATIVE = frozenset({"weight_decay"})


class RecipeError(ValueError):
    """A recipe string that does not parse; the message says what is accepted."""


def _accepted() -> str:
    return f"a recipe name ({', '.join(RECIPES)}) and/or key=value overrides with keys {', '.join(KEYS)}"


def parse(text: str) -> FitSettings:
    """The :class:`FitSettings` of a recipe string (see the module docstring); :class:`RecipeError` if invalid."""
    if not isinstance(text, str) or not text.strip():
        raise RecipeError(f"must be {_accepted()}, got {text!r}")
    parts = [p.strip() for p in text.split(",")]
    settings = RECIPES[LEGACY_RECIPE]
    if "=" not in parts[0]:
        if parts[0] not in RECIPES:
            raise RecipeError(f"unknown recipe {parts[0]!r}; accepted: {_accepted()}")
        settings = RECIPES[parts[0]]
        parts = parts[1:]
    types = {f.name: f.type for f in fields(FitSettings)}
    seen = set()
    for part in parts:
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or key not in KEYS:
            raise RecipeError(f"bad item {part!r}; accepted: {_accepted()}")
        if key in seen:
            raise RecipeError(f"{key!r} given twice")
        seen.add(key)
        name = KEYS[key]
        try:
            v: Any = float(value)
        except ValueError:
            raise RecipeError(f"{key}: must be a number, got {value!r}") from None
        if types[name] in ("int", int):
            if not v.is_integer() or v < 0:
                raise RecipeError(f"{key}: must be an integer ≥ 0, got {value!r}")
            v = int(v)
        elif name in _NONNEGATIVE:
            if not (v >= 0 and v < float("inf")):
                raise RecipeError(f"{key}: must be a finite number ≥ 0, got {value!r}")
        elif not (v > 0 and v < float("inf")):
            raise RecipeError(f"{key}: must be a finite number > 0, got {value!r}")
        settings = replace(settings, **{name: v})
    return settings


def canonical(text: str) -> str:
    """``text`` checked, written as its recipe name alone where it equals one, else as given (stripped)."""
    settings = parse(text)
    for name, s in RECIPES.items():
        if s == settings:
            return name
    return ",".join(p.strip() for p in text.split(","))


def describe(settings: FitSettings) -> str:
    """The recipe's fields as ``key=value`` items (all of them)."""
    d = asdict(settings)
    return ",".join(f"{k}={d[v]:g}" for k, v in KEYS.items())
