"""What the sweep driver hands a trial: typed, immutable work payloads, built once in the runner.

A :class:`WorkItem` is one trajectory, or several sketch seeds of one configuration marched together
(:class:`rsng.core.integrate.TrajectoryBatch`); each of its :class:`Member` s carries its validated
:class:`~rsng.core.config.RunConfig` (the run record's fields, :mod:`rsng.core.record`). A
:class:`WorkUnit` is one Ray Tune trial: items run one after another in the same worker. The units
reach the workers through Ray's object store (``tune.with_parameters``); Tune's own trial config
names a unit by its index only, so it stays a small JSON-able dict. :class:`Extensions` carries the
run fields and samplers registered at runtime in the driver to the workers, which may not import the
module that registered them.

Pure Python (no Ray, no JAX): the serial runner and the tests build the same objects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rsng.core import record, registry
from rsng.core.config import RunConfig

__all__ = ["Member", "WorkItem", "WorkUnit", "Extensions"]


@dataclass(frozen=True)
class Member:
    """One trajectory: its id and its validated configuration."""

    trial_id: str
    config: RunConfig


@dataclass(frozen=True)
class WorkItem:
    """Trajectories run (and marched) together: a single member, or several seeds of one configuration.

    ``trial_id`` is the item's own id (the member's for a single trajectory); ``sweep_dir`` a local
    folder or an object-store URI; ``report_steps`` the steps between chunk reports (rounded to the
    solver's chunk); ``cpus``/``gpus`` the trial's resources; ``cache_dir`` the compilation and
    reference cache (``None``: the default); ``versions`` the driver's package versions and git sha.
    A search (:mod:`rsng.service.search`) also sets ``chunk`` (steps per compiled call; ``None``: the
    solver's default), ``stoppable`` (each chunk's report carries what early stopping needs) and
    ``history_points`` (points of each per-step series in those reports)."""

    trial_id: str
    members: tuple[Member, ...]
    sweep: str
    sweep_dir: str
    report_steps: int
    cpus: float
    gpus: float
    cache_dir: str | None
    versions: Mapping[str, Any] = field(default_factory=dict, hash=False)
    chunk: int | None = None
    stoppable: bool = False
    history_points: int = 200

    @property
    def ids(self) -> list[str]:
        return [m.trial_id for m in self.members]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (each member's config as :meth:`RunConfig.to_dict`)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["members"] = [{"trial_id": m.trial_id, "config": m.config.to_dict()} for m in self.members]
        d["versions"] = dict(self.versions)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WorkItem:
        members = tuple(Member(m["trial_id"], RunConfig.from_dict(m["config"])) for m in d["members"])
        return cls(**{**d, "members": members, "versions": dict(d.get("versions") or {})})


@dataclass(frozen=True)
class WorkUnit:
    """One Ray Tune trial: work items run one after another in one worker process (so the compiled
    step is reused); ``history_points`` is how many points of each per-step series reach MLflow."""

    trial_id: str
    items: tuple[WorkItem, ...]
    history_points: int

    @property
    def ids(self) -> list[str]:
        return [tid for item in self.items for tid in item.ids]

    @property
    def cpus(self) -> float:
        return self.items[0].cpus


@dataclass(frozen=True)
class Extensions:
    """The run fields (:func:`rsng.core.record.register_field`) and samplers
    (:func:`rsng.core.registry.register_sampler`) registered in this process at runtime — in a
    notebook, a test or a user's module — as objects, so that a worker process installs the same
    registrations before it runs a trajectory (its rows then carry the fields, its steps find the
    samplers)."""

    fields: tuple[record.Field, ...] = ()
    samplers: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def current(cls) -> Extensions:
        return cls(record.extra_fields(), tuple(registry.registered_samplers().items()))

    def __bool__(self) -> bool:
        return bool(self.fields or self.samplers)

    def modules(self) -> set[str]:
        """The modules outside ``rsng`` that define the registered objects (a sampler class, a
        field's ``choices`` function): a worker may not be able to import them, so they are sent
        by value."""
        objs = [cls for _, cls in self.samplers if not isinstance(cls, str)]
        objs += [getattr(f, a) for f in self.fields for a in ("choices", "default") if callable(getattr(f, a))]
        mods = {getattr(o, "__module__", None) for o in objs}
        return {m for m in mods if m and m != "rsng" and not m.startswith("rsng.")}

    def install(self) -> None:
        """Make this process's registrations those of the driver: the registered fields exactly
        these, in this order (a reused worker may hold an earlier sweep's), the samplers added or
        replaced."""
        for f in record.extra_fields():
            record.unregister_field(f.name)
        for f in self.fields:
            record.register_field(f)
        for name, cls in self.samplers:
            registry.register_sampler(name, cls, replace=True)
