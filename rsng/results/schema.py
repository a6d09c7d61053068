"""Column specification of the Parquet results (pure Python; pyarrow is imported lazily).

Two tables are stored (see ``docs/results-schema.md`` for the full description):

* **trajectories** — one row per finished trajectory (:data:`TRAJECTORY_COLUMNS`), one file per
  trial: ``<sweep>/trajectories/<trial_id>.parquet``;
* **steps** — the per-time series of a trajectory (:data:`STEPS_COLUMNS`), in chunk files
  ``<sweep>/steps/<trial_id>-<chunk:06d>.parquet``.

:data:`SCHEMA_VERSION` is bumped on every incompatible change (a column removed, renamed, retyped
or given a new meaning). Readers refuse files written with a newer version than they know.

This module defines the columns as plain data so that importing :mod:`rsng.results` costs nothing;
:func:`trajectory_schema` and :func:`steps_schema` build the ``pyarrow`` schemas on first use.
"""

from __future__ import annotations

import functools
import hashlib
import math
import numbers
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rsng.core import record

__all__ = [
    "SCHEMA_VERSION",
    "Column",
    "TRAJECTORY_COLUMNS",
    "STEPS_COLUMNS",
    "STEPS_ADDED",
    "TRAJECTORY_ADDED",
    "STATUSES",
    "CATEGORICAL_COLUMNS",
    "trajectory_schema",
    "steps_schema",
    "validate_row",
    "safe_name",
    "ResultsError",
    "FutureSchemaError",
    "ResultsWarning",
    "trajectory_columns",
    "trajectory_names",
]

#: Version of the on-disk format. Bump on incompatible changes; readers refuse newer versions.
SCHEMA_VERSION = 2
#: Version 1 files lack ``solver`` and ``batch_size`` (added in 2); the loader fills them with
#: ``full-jacobian`` (the formulation that wrote them) and 1.
V1_SOLVER = "full-jacobian"

#: Accepted values of the ``status`` column.
STATUSES = ("ok", "diverged", "failed", "stopped")

#: Key-value metadata written into every Parquet file's footer.
META_VERSION_KEY = "rsng.schema_version"
META_KIND_KEY = "rsng.kind"


class ResultsError(Exception):
    """A results file or folder cannot be used (corrupt, foreign, newer format, not writable)."""


class FutureSchemaError(ResultsError):
    """A results file was written with a newer schema version than this rsng reads."""


class ResultsWarning(UserWarning):
    """A results file was skipped or data were repaired (duplicates dropped) while loading."""


@dataclass(frozen=True)
class Column:
    """One stored column: ``type`` is one of ``int32``, ``int64``, ``float64``, ``string``, ``timestamp``
    (microseconds, UTC)."""

    name: str
    type: str
    nullable: bool
    doc: str


def _record_columns(fields) -> tuple[Column, ...]:
    """The configuration columns: the stored fields of the run record (:mod:`rsng.core.record`).
    Built-in ones are never null; a registered field's column is nullable when the field is."""
    builtin = {f.name for f in record.FIELDS}
    return tuple(
        Column(f.name, f.column, f.name not in builtin and f.nullable, f.doc + (f" [{f.unit}]" if f.unit else ""))
        for f in fields
        if f.column is not None
    )


_C = Column
#: Columns of ``trajectories/<trial_id>.parquet``, in file order: the run record's stored fields
#: (:func:`rsng.core.record.stored_fields`) follow ``trial_id``; registered fields come after the
#: built-in ones (:func:`trajectory_columns`).
TRAJECTORY_COLUMNS: tuple[Column, ...] = (
    _C("schema_version", "int32", False, "format version of the row (SCHEMA_VERSION when written)"),
    _C("sweep", "string", False, "sweep name (the folder name under the storage root)"),
    _C("trial_id", "string", False, "trial id, unique within the sweep; also the file name"),
    *_record_columns(record.FIELDS),
    _C(
        "rel_l2",
        "float64",
        True,
        "space-time relative L2 error over all stored steps, t = 0 included; null unless status is ok",
    ),
    _C("rel_l2_t0", "float64", True, "relative L2 error at t = 0 (quality of the θ(0) fit)"),
    _C(
        "fit_rel_l2_t0",
        "float64",
        True,
        "t = 0 error the θ(0) fit reached (float64, on the grid); null if θ(0) was given",
    ),
    _C("j0_sigma_max", "float64", True, "σ_max of the full Jacobian J(θ(0)) on the run's grid"),
    _C("j0_rank", "int64", True, "singular values of the full J(θ(0)) above rcond·σ_max"),
    _C("rel_l2_final", "float64", True, "relative L2 error at the last stored step reached"),
    _C(
        "wall_s",
        "float64",
        False,
        "wall-clock seconds of the time marching (compilation excluded); a batched trajectory's share",
    ),
    _C(
        "batch_size",
        "int32",
        False,
        "trajectories marched together in one compiled call (--seeds-per-trial); wall_s is the batch's time / batch_size",
    ),
    _C("compile_s", "float64", True, "seconds spent compiling"),
    _C(
        "steps",
        "int64",
        False,
        "time steps taken (= t_end/dt unless diverged, failed or stopped: a stopped run's last step)",
    ),
    _C("status", "string", False, "ok, diverged, failed or stopped (stopped early by a search: docs/search.md)"),
    _C("diverged_step", "int64", True, "first step whose θ or u was not finite; null unless diverged"),
    _C("error_message", "string", True, "error of a failed trial; null or empty otherwise"),
    _C("reference", "string", True, "how the reference solution was obtained (method name)"),
    _C("rsng_version", "string", False, "rsng package version"),
    _C("git_sha", "string", True, "git commit of the code that ran the trial, if known"),
    _C("jax_version", "string", False, "JAX version"),
    _C(
        "device",
        "string",
        False,
        "device the trial ran on: cpu:<vendor>-<family>-<model>-<isa> (e.g. cpu:AuthenticAMD-25-17-avx512)"
        " or gpu:<kind> (e.g. gpu:NVIDIA H200)",
    ),
    _C("started_at", "timestamp", False, "trial start (UTC)"),
    _C("finished_at", "timestamp", False, "trial end (UTC)"),
)

#: Columns of ``steps/<trial_id>-<chunk>.parquet``, in file order.
STEPS_COLUMNS: tuple[Column, ...] = (
    _C("trial_id", "string", False, "trial id (as in trajectories)"),
    _C("step", "int64", False, "time-step index k of the stored time (0 = initial condition)"),
    _C("t", "float64", False, "time t = k·δt"),
    _C("rel_l2_t", "float64", False, "relative L2 error on the grid at time t"),
    _C(
        "ls_residual",
        "float64",
        False,
        "relative least-squares residual of the first RK stage of the step that produced t (NaN at t = 0)",
    ),
    _C("wall_s_cumulative", "float64", False, "marching wall-clock seconds up to this step"),
    _C(
        "ls_rank",
        "float64",
        True,
        "singular values of the first RK stage's sketched Jacobian kept by the cut-off rcond·σ_max (NaN at t = 0)",
    ),
    _C("ls_sigma_max", "float64", True, "σ_max of the first RK stage's sketched Jacobian (NaN at t = 0)"),
    _C("ls_sigma_min_kept", "float64", True, "the smallest singular value kept by the cut-off (NaN at t = 0)"),
)
del _C

#: Trajectory columns added after the first version: null in files written before them.
TRAJECTORY_ADDED = ("fit_rel_l2_t0", "j0_sigma_max", "j0_rank")
#: Steps columns added after the first version: optional when writing, NaN in files written before them.
STEPS_ADDED = ("ls_rank", "ls_sigma_max", "ls_sigma_min_kept")

#: Columns given a pandas ``category`` dtype by the loader (the run record's string fields among them).
CATEGORICAL_COLUMNS = ("sweep", *(f.name for f in record.FIELDS if f.column == "string"), "status")

TRAJECTORY_NAMES = tuple(c.name for c in TRAJECTORY_COLUMNS)


def trajectory_columns() -> tuple[Column, ...]:
    """:data:`TRAJECTORY_COLUMNS` plus the columns of fields registered with
    :func:`rsng.core.record.register_field` (after the built-in configuration columns)."""
    extra = _record_columns(record.extra_fields())
    if not extra:
        return TRAJECTORY_COLUMNS
    i = TRAJECTORY_NAMES.index("rel_l2")
    return TRAJECTORY_COLUMNS[:i] + extra + TRAJECTORY_COLUMNS[i:]


def trajectory_names() -> tuple[str, ...]:
    return tuple(c.name for c in trajectory_columns())


STEPS_NAMES = tuple(c.name for c in STEPS_COLUMNS)

_INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def _arrow_type(kind: str):
    import pyarrow as pa

    return {
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "string": pa.string(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }[kind]


def _schema(columns: tuple[Column, ...], kind: str):
    import pyarrow as pa

    fields = [pa.field(c.name, _arrow_type(c.type), nullable=c.nullable) for c in columns]
    return pa.schema(fields, metadata={META_VERSION_KEY: str(SCHEMA_VERSION), META_KIND_KEY: kind})


def trajectory_schema():
    """The ``pyarrow.Schema`` of a trajectories file (with the footer metadata)."""
    return _trajectory_schema(trajectory_columns())


@functools.cache
def _trajectory_schema(columns: tuple[Column, ...]):
    return _schema(columns, "trajectory")


@functools.cache
def steps_schema():
    """The ``pyarrow.Schema`` of a steps chunk file (with the footer metadata)."""
    return _schema(STEPS_COLUMNS, "steps")


# -- validation -------------------------------------------------------------------------------------
def _coerce(col: Column, value: Any) -> Any:
    """Check one value against its column and return it in the stored Python type."""
    if value is None:
        if col.nullable:
            return None
        raise ValueError(f"column {col.name!r} must not be null")
    if col.type in _INT_RANGE:
        if isinstance(value, bool):
            raise ValueError(f"column {col.name!r} must be an integer, got {value!r}")
        try:
            v = operator.index(value)
        except TypeError:
            raise ValueError(f"column {col.name!r} must be an integer, got {value!r}") from None
        lo, hi = _INT_RANGE[col.type]
        if not lo <= v <= hi:
            raise ValueError(f"column {col.name!r} is out of {col.type} range: {v}")
        return v
    if col.type == "float64":
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"column {col.name!r} must be a number, got {value!r}")
        return float(value)
    if col.type == "string":
        if not isinstance(value, str):
            raise ValueError(f"column {col.name!r} must be a string, got {value!r}")
        return str(value)
    if col.type == "timestamp":
        if not isinstance(value, datetime):
            raise ValueError(f"column {col.name!r} must be a datetime, got {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"column {col.name!r} must be timezone-aware (UTC), got naive {value!r}")
        v = value.astimezone(UTC)
        if hasattr(v, "to_pydatetime"):  # pandas.Timestamp: drop nanoseconds
            v = v.to_pydatetime(warn=False)
        return v
    raise AssertionError(col.type)  # pragma: no cover


def check_names(given, expected, what: str, noun: str) -> None:
    """Raise ``ValueError("<what>: missing <noun>: …; unknown <noun>: …")`` unless ``given`` has
    exactly the names in ``expected``."""
    missing = [n for n in expected if n not in given]
    unknown = sorted(str(k) for k in given if k not in expected)
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing {noun}: {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown {noun}: {', '.join(unknown)}")
        raise ValueError(f"{what}: " + "; ".join(parts))


def validate_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one trajectory row and return it normalised, in column order.

    ``schema_version`` may be omitted (it is filled in), so may the :data:`TRAJECTORY_ADDED` columns
    (null) and the run fields that declare an ``absent`` value (that value). Every other column is required, unknown
    keys are refused, values are type- and range-checked, ``status`` must be one of
    :data:`STATUSES`, and ``rel_l2`` is stored as null unless the status is ``ok`` (where it is
    required). Raises ``ValueError`` naming the offending keys.
    """
    if not isinstance(row, Mapping):
        raise TypeError(f"a trajectory row must be a mapping, got {type(row).__name__}")
    row = dict(row)
    row.setdefault("schema_version", SCHEMA_VERSION)
    for name in TRAJECTORY_ADDED:  # optional: null when not given
        row.setdefault(name, None)
    for f in record.stored_fields():  # run fields added later: their declared value for older writers
        if f.absent is not None:
            row.setdefault(f.name, f.absent)
    columns = trajectory_columns()
    check_names(row, [c.name for c in columns], "invalid trajectory row", "keys")
    out = {c.name: _coerce(c, row[c.name]) for c in columns}
    if out["schema_version"] != SCHEMA_VERSION:
        raise ValueError(f"column 'schema_version' must be {SCHEMA_VERSION}, got {out['schema_version']}")
    if out["status"] not in STATUSES:
        raise ValueError(f"column 'status' must be one of {', '.join(STATUSES)}; got {out['status']!r}")
    if not out["trial_id"]:
        raise ValueError("column 'trial_id' must not be empty")
    if out["status"] == "ok":
        if out["rel_l2"] is None or math.isnan(out["rel_l2"]):
            raise ValueError("column 'rel_l2' is required (not null/NaN) when status is 'ok'")
    else:
        out["rel_l2"] = None
    return out


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_name(trial_id: str) -> str:
    """File-name stem for a trial id.

    Ids made only of ``[A-Za-z0-9._-]`` that do not start with ``.`` or ``_`` (hidden/ignored
    names) and are at most 120 characters are used as they are. Any other id is sanitised and a
    short hash of the original is appended, so different ids never share a file and the same id
    always maps to the same file (a retry overwrites).
    """
    if not isinstance(trial_id, str) or not trial_id:
        raise ValueError(f"trial_id must be a non-empty string, got {trial_id!r}")
    if not _UNSAFE.search(trial_id) and trial_id[0] not in "._" and len(trial_id) <= 120:
        return trial_id
    digest = hashlib.sha1(trial_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    stem = _UNSAFE.sub("_", trial_id).lstrip("._")[:100]
    return f"{stem}-{digest}" if stem else f"t-{digest}"
