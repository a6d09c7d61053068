"""Name registries of the pluggable parts of a step: samplers (sketches) and Galerkin strategies.

This module imports nothing heavy (no JAX): the run record (:mod:`rsng.core.record`), the CLI and the
sweep service read the accepted names from here before JAX is loaded. Built-in entries are
``"module:Class"`` strings imported on first use; :func:`register_sampler` also takes a class (a
sampler defined in a notebook or a test), which then reaches config validation, the CLI, the
Parquet row and MLflow with no other change.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "register_sampler",
    "unregister_sampler",
    "sampler_names",
    "sampler_class",
    "GALERKIN",
    "galerkin_class",
    "SOLVER_ALIASES",
]

_BUILTIN_SAMPLERS = {
    "uniform": "rsng.core.samplers:Uniform",
    "column_norm": "rsng.core.samplers:ColumnNorm",
    "leverage": "rsng.core.samplers:Leverage",
    "pivoted_qr": "rsng.core.samplers:PivotedQR",
    "gaussian": "rsng.core.samplers:Gaussian",
    "dense": "rsng.core.samplers:Dense",
}
_SAMPLERS: dict[str, Any] = dict(_BUILTIN_SAMPLERS)

#: Galerkin strategies (how the sketched Jacobian is formed), :mod:`rsng.core.stepping`.
GALERKIN = {
    "fast": "rsng.core.stepping:FactorGalerkin",
    "full-jacobian": "rsng.core.stepping:FullJacobianGalerkin",
}
#: Deprecated solver names → current names (accepted with a warning by :func:`rsng.core.config.resolve`).
SOLVER_ALIASES = {"reference": "full-jacobian"}


def _load(entry: Any) -> Any:
    if isinstance(entry, str):
        module, _, name = entry.partition(":")
        return getattr(importlib.import_module(module), name)
    return entry


def register_sampler(name: str, cls: Any, *, replace: bool = False) -> None:
    """Register sampler class ``cls`` (a :class:`rsng.core.samplers.Sampler` subclass, or its
    ``"module:Class"`` path) under ``name``."""
    if not name.isidentifier():
        raise ValueError(f"sampler name {name!r} must be an identifier")
    if name in _SAMPLERS and not replace:
        raise ValueError(f"sampler {name!r} is already registered")
    _SAMPLERS[name] = cls


def unregister_sampler(name: str) -> None:
    """Remove a sampler registered with :func:`register_sampler` (built-ins stay)."""
    if name in _BUILTIN_SAMPLERS:
        raise ValueError(f"sampler {name!r} is built in")
    _SAMPLERS.pop(name, None)


def sampler_names() -> tuple[str, ...]:
    return tuple(_SAMPLERS)


def sampler_class(name: str) -> Any:
    try:
        entry = _SAMPLERS[name]
    except KeyError:
        raise ValueError(f"sampler: unknown value {name!r}; accepted: {', '.join(_SAMPLERS)}") from None
    return _load(entry)


def galerkin_class(name: str) -> Any:
    name = SOLVER_ALIASES.get(name, name)
    try:
        return _load(GALERKIN[name])
    except KeyError:
        raise ValueError(f"solver: unknown value {name!r}; accepted: {', '.join(GALERKIN)}") from None
