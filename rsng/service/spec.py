"""Sweep definitions as data: a grid of run options, expanded and validated before Ray starts.

A :class:`SweepSpec` is a name, a grid (option → list of values; the Cartesian product is the set of
trajectories) and fixed options shared by every trajectory. :meth:`SweepSpec.expand` resolves every
point with :func:`rsng.core.config.resolve`, so a bad value is one :class:`SweepSpecError` naming
the grid key and the value, and nothing is scheduled. No JAX is started by expanding.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rsng.core import record
from rsng.core.config import ConfigError, RunConfig, resolve

__all__ = ["SweepSpec", "SweepSpecError", "TrialSpec", "MAX_TRIALS_WITHOUT_CONFIRMATION", "GRID_KEYS", "grid_keys"]

#: Grids larger than this need an explicit confirmation (``--yes``).
MAX_TRIALS_WITHOUT_CONFIRMATION = 5000
#: Keys a grid or the fixed options may use: ``preset`` and the run record's input fields
#: (:func:`grid_keys` includes fields registered later).
GRID_KEYS = ("preset",) + tuple(f.name for f in record.FIELDS if f.input)


def grid_keys() -> tuple[str, ...]:
    return ("preset",) + tuple(f.name for f in record.input_fields())


class SweepSpecError(ValueError):
    """Invalid sweep definition; ``key`` names the grid key or option."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key


@dataclass(frozen=True)
class TrialSpec:
    """One trajectory of a sweep: its stable id and its resolved configuration."""

    trial_id: str
    config: RunConfig

    def to_dict(self) -> dict[str, Any]:
        return {"trial_id": self.trial_id, "config": self.config.to_dict()}


@dataclass(frozen=True)
class SweepSpec:
    """A named grid of trajectories.

    Attributes:
      name: sweep name (folder under the storage root); letters, digits, ``-``, ``_``, ``.``.
      grid: option → non-empty list of values (see :data:`GRID_KEYS`; ``s`` may contain ``"dense"``).
      fixed: options shared by every point (a key may not be both in ``grid`` and ``fixed``).
      skip_invalid_s: drop points whose s exceeds that point's p (e.g. s=3200 at depth 3) instead of
        refusing the sweep; the dropped points are listed in :attr:`dropped`.
    """

    name: str
    grid: Mapping[str, Sequence[Any]]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    skip_invalid_s: bool = False

    def validate_shape(self) -> None:
        if not self.name or not all(c.isalnum() or c in "-_." for c in self.name) or self.name[0] in "._":
            raise SweepSpecError(
                "name", f"must be letters, digits, '-', '_' or '.', not starting with '.' or '_'; got {self.name!r}"
            )
        for key in list(self.grid) + list(self.fixed):
            if key not in grid_keys():
                raise SweepSpecError(key, f"unknown grid key; accepted: {', '.join(grid_keys())}")
        both = set(self.grid) & set(self.fixed)
        if both:
            raise SweepSpecError(sorted(both)[0], "is both a grid axis and a fixed option")
        for key, values in self.grid.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
                raise SweepSpecError(key, f"grid values must be a list, got {type(values).__name__}")
            if len(values) == 0:
                raise SweepSpecError(key, "empty list: the grid would have no trajectories")
            if len(set(map(_canon, values))) != len(values):
                raise SweepSpecError(key, f"duplicate values in {list(values)!r}")
        if "problem" not in self.grid and "problem" not in self.fixed:
            raise SweepSpecError("problem", "is required (as a grid axis or a fixed option)")

    @property
    def size(self) -> int:
        return math.prod(len(v) for v in self.grid.values())

    def expand(self, *, confirm_large: bool = False) -> list[TrialSpec]:
        """Every point of the grid, resolved and validated, in a deterministic order."""
        self.validate_shape()
        if self.size > MAX_TRIALS_WITHOUT_CONFIRMATION and not confirm_large:
            raise SweepSpecError(
                "grid",
                f"{self.size} trajectories exceed {MAX_TRIALS_WITHOUT_CONFIRMATION}; "
                "pass --yes to confirm a sweep this large",
            )
        keys = list(self.grid)
        trials, seen, dropped = [], set(), []
        for values in itertools.product(*(self.grid[k] for k in keys)):
            point = {**self.fixed, **dict(zip(keys, values))}
            preset = point.pop("preset", None)
            try:
                cfg = resolve(preset, **point)
            except ConfigError as e:
                key = "preset" if e.field == "preset" else e.field
                if self.skip_invalid_s and e.field == "s" and "≤ p=" in str(e):
                    dropped.append(point)
                    continue
                where = "grid" if key in self.grid else "fixed"
                raise SweepSpecError(
                    key, f"{str(e).split(': ', 1)[1]} ({where} value at point {_short(point, preset)})"
                ) from None
            tid = trial_id(cfg)
            if tid in seen:  # two grid points resolving to the same run (e.g. s=p and dense)
                continue
            seen.add(tid)
            trials.append(TrialSpec(tid, cfg))
        object.__setattr__(self, "dropped", dropped)
        if not trials:
            raise SweepSpecError("grid", "no valid trajectories")
        return trials

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "grid": {k: list(v) for k, v in self.grid.items()},
            "fixed": dict(self.fixed),
            "description": self.description,
        }


def _canon(v: Any) -> str:
    return json.dumps(v, sort_keys=True, default=str)


def _short(point: Mapping[str, Any], preset: str | None) -> str:
    d = dict(point, **({"preset": preset} if preset else {}))
    return ", ".join(f"{k}={v!r}" for k, v in d.items())


def trial_id(cfg: RunConfig) -> str:
    """Stable id of a configuration: readable prefix + hash of every field."""
    blob = json.dumps(cfg.to_dict(), sort_keys=True, default=str)
    h = hashlib.sha256(blob.encode()).hexdigest()[:10]
    return f"{cfg.problem}-{cfg.sampler}-s{cfg.s}-d{cfg.depth}w{cfg.width}-n{cfg.n}-seed{cfg.seed}-{h}"
