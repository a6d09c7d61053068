"""Name registries of the pluggable parts of a step: samplers (sketches) and Galerkin strategies.

This module imports nothing heavy (no JAX): the run record (:mod:`rsng.core.record`), the CLI and the
sweep service read the accepted names from here before JAX is loaded. The built-in samplers are the
classes of :mod:`rsng.core.samplers` that declare a ``name = "..."``: their names are read from that
module's source (its syntax tree, without importing it, so without JAX), and each class is imported
on first use as a ``"module:Class"`` entry. A new built-in sampler is therefore its class only.
:func:`register_sampler` also takes a class (a sampler defined in a notebook or a test), which then
reaches config validation, the CLI, the Parquet row and MLflow with no other change.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from typing import Any

__all__ = [
    "register_sampler",
    "unregister_sampler",
    "sampler_names",
    "registered_samplers",
    "declared_samplers",
    "sampler_class",
    "GALERKIN",
    "galerkin_class",
    "SOLVER_ALIASES",
]

_SAMPLERS_MODULE = "rsng.core.samplers"


def declared_samplers(module: str = _SAMPLERS_MODULE) -> dict[str, str]:
    """``{name: "module:Class"}`` of the classes in ``module``'s source whose body assigns a non-empty
    string to ``name`` (in source order), read from the syntax tree: the module is not imported."""
    spec = importlib.util.find_spec(module)
    source = spec.loader.get_source(module) if spec is not None and spec.loader is not None else None
    if source is None:  # pragma: no cover - an installation without sources: import it after all
        from rsng.core import samplers

        return {
            c.name: f"{module}:{c.__name__}"
            for c in vars(samplers).values()
            if isinstance(getattr(c, "name", None), str)
        }
    out: dict[str, str] = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef):
            continue
        for stmt in node.body:
            target, value = None, None
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                target, value = stmt.targets[0], stmt.value
            elif isinstance(stmt, ast.AnnAssign):
                target, value = stmt.target, stmt.value
            if isinstance(target, ast.Name) and target.id == "name":
                if isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value:
                    out[value.value] = f"{module}:{node.name}"
                break
    return out


_BUILTIN_SAMPLERS = declared_samplers()
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


def registered_samplers() -> dict[str, Any]:
    """The samplers added with :func:`register_sampler` (not the built-ins): name → class or path."""
    return {k: v for k, v in _SAMPLERS.items() if k not in _BUILTIN_SAMPLERS}


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
