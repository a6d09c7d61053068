"""Writing and loading sweep results as Parquet files (pyarrow + pandas, imported lazily).

Layout under ``<storage>/<sweep name>/``::

    sweep.json                               sweep metadata (grid spec, versions, git sha, created_at)
    trajectories/<trial_id>.parquet          one row: the trajectory's summary (TRAJECTORY_COLUMNS)
    steps/<trial_id>-<chunk:06d>.parquet     a chunk of the trajectory's per-time series (STEPS_COLUMNS)
    trajectories/+<unit>.parquet             the rows of a work unit's trajectories, merged (:func:`compact`)
    steps/+<unit>.parquet                    their per-time series, merged

A trajectory's files are written as it runs; a work unit of several trajectories (a Tune trial of
the sweep service) merges them into its two part files when it ends, so that a sweep of 10,000
trajectories is a few hundred files rather than 30,000 (a file costs :func:`load` a few
milliseconds). Readers take both forms; a row or step present in both (an interrupted merge) is read
once.

``<storage>`` is a local folder or an object store URI (``s3://BUCKET/PREFIX``, ``gs://…``; see
:mod:`rsng.results.fs`). Every function here takes either, as a string or a path object.

Atomicity on local disk: every file is written to a hidden temporary name (``.<name>.<pid>-<random>.tmp``)
in the same folder, flushed and ``fsync``-ed, then renamed with ``os.replace`` (and the folder is
fsync-ed). A reader therefore sees either the old complete file or the new complete file, never a
partial one; a writer killed mid-write leaves only a hidden temporary file, which readers ignore
(every name starting with ``.`` or ``_`` is ignored). On an object store, which has no rename, the
file is serialised in memory and uploaded once under its final name; the object only becomes visible
when the upload completes, so a killed writer leaves nothing visible and a rewrite replaces the
object whole. Each call writes one file with one row group.

Which steps are recorded (steps chunking): the steps table holds every *stored* step of the
trajectory — the solver stores every ``save_every``-th step (``RunConfig.save_every``; by default
every step when a run has ≤ 1000 steps, else ``ceil(steps/1000)``), t = 0 included (step 0, with
``ls_residual`` NaN). A trial appends its series in chunks as it advances: chunk ``c`` holds the
stored steps recorded by its ``c``-th advance (e.g. ``chunk = first_step_of_the_advance //
steps_per_advance``). Chunk numbers must be derived from the trial's own progress only, so that a
retried or resumed trial rewrites the same files instead of adding new ones. Should chunks still
overlap (duplicate ``(trial_id, step)``), :func:`load` keeps the row of the last chunk and warns.

A trial id is turned into a file name by :func:`rsng.results.schema.safe_name`: ids made of
``[A-Za-z0-9._-]`` (not starting with ``.``/``_``) are used as they are; others are sanitised and
suffixed with a short hash. Writing the same trial id again overwrites its file (a retry never
duplicates a row).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsng.core import record
from rsng.core.files import atomic_write as _atomic_write_local
from rsng.core.registry import SOLVER_ALIASES
from rsng.core.threads import available_cpus
from rsng.results.fs import ObjectPath, storage_path
from rsng.results.schema import (
    CATEGORICAL_COLUMNS,
    META_KIND_KEY,
    META_VERSION_KEY,
    SCHEMA_VERSION,
    STATUSES,
    STEPS_ADDED,
    STEPS_COLUMNS,
    STEPS_NAMES,
    TRAJECTORY_ADDED,
    V1_SOLVER,
    Column,
    FutureSchemaError,
    ResultsError,
    ResultsWarning,
    check_names,
    safe_name,
    steps_schema,
    trajectory_columns,
    trajectory_schema,
    validate_row,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "Results",
    "write_sweep_meta",
    "read_sweep_meta",
    "write_trajectory",
    "write_steps",
    "load",
    "load_steps",
    "load_rows",
    "compact",
    "finished_names",
    "has_part",
    "check_writable",
    "atomic_write",
    "is_sweep_dir",
    "trajectory_path",
    "SWEEP_META",
    "TRAJECTORIES_DIR",
    "STEPS_DIR",
    "MIN_FREE_BYTES",
]

SWEEP_META = "sweep.json"
TRAJECTORIES_DIR = "trajectories"
STEPS_DIR = "steps"
#: :func:`check_writable` refuses storage with less free space than this.
MIN_FREE_BYTES = 50 * 1024 * 1024
_COMPRESSION = "zstd"
_CHUNK_RE = re.compile(r"^(?P<stem>.+)-(?P<chunk>\d{6,})$")
#: Part files (:func:`compact`: many trajectories' rows or steps in one file) start with this; a
#: trial id's own file never does (:func:`safe_name` keeps only ``[A-Za-z0-9._-]``).
PART_PREFIX = "+"


# ================================================================================================
# writing
# ================================================================================================
def atomic_write(path: Path | ObjectPath, write, *, durable: bool = True) -> Path | ObjectPath:
    """Call ``write(fileobj)`` and put the bytes at ``path`` all at once: a local file through
    :func:`rsng.core.files.atomic_write` (a temp file renamed over ``path``, ``fsync``-ed when
    ``durable``), an object-store path as one upload of the complete object."""
    if isinstance(path, ObjectPath):
        buf = io.BytesIO()
        write(buf)
        path.write_bytes(buf.getvalue())
        return path
    return _atomic_write_local(path, write, durable=durable)


def _atomic_write_table(table: pa.Table, path: Path | ObjectPath, durable: bool = True) -> Path | ObjectPath:
    import pyarrow.parquet as pq

    def write(f):
        pq.write_table(table, f, row_group_size=max(1, table.num_rows), compression=_COMPRESSION)

    return atomic_write(path, write, durable=durable)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, (Path, ObjectPath)):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return obj.tolist()
    raise TypeError(f"sweep metadata value of type {type(obj).__name__} is not JSON-serialisable: {obj!r}")


def write_sweep_meta(sweep_dir: str | os.PathLike | ObjectPath, meta: Mapping[str, Any]) -> Path | ObjectPath:
    """Write ``<sweep_dir>/sweep.json`` atomically and return its path.

    ``meta`` is any JSON-able mapping (grid spec, versions, git sha, ...); datetimes, paths and
    numpy values are converted. ``schema_version`` and ``created_at`` (UTC, ISO 8601) are added
    when absent. The folder is created if needed; an existing file is replaced.
    """
    if not isinstance(meta, Mapping):
        raise TypeError(f"sweep metadata must be a mapping, got {type(meta).__name__}")
    meta = dict(meta)
    meta.setdefault("schema_version", SCHEMA_VERSION)
    meta.setdefault("created_at", datetime.now(UTC).isoformat())
    text = json.dumps(meta, indent=2, sort_keys=True, default=_json_default, allow_nan=True) + "\n"
    data = text.encode("utf-8")
    return atomic_write(storage_path(sweep_dir) / SWEEP_META, lambda f: f.write(data))


def read_sweep_meta(sweep_dir: str | os.PathLike | ObjectPath) -> dict[str, Any]:
    """Read ``<sweep_dir>/sweep.json``.

    Raises ``FileNotFoundError`` if absent and :class:`ResultsError` if it is not a JSON object or
    was written by a newer schema version.
    """
    path = storage_path(sweep_dir) / SWEEP_META
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no sweep metadata: {path} does not exist") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultsError(f"{path}: not valid JSON sweep metadata ({e})") from None
    if not isinstance(meta, dict):
        raise ResultsError(f"{path}: sweep metadata must be a JSON object, got {type(meta).__name__}")
    _check_version(meta.get("schema_version", SCHEMA_VERSION), path)
    return meta


def write_trajectory(
    sweep_dir: str | os.PathLike | ObjectPath, row: Mapping[str, Any], *, durable: bool = True
) -> Path | ObjectPath:
    """Validate ``row`` and write it as ``<sweep_dir>/trajectories/<trial_id>.parquet``.

    ``row`` must have exactly the keys of :data:`TRAJECTORY_COLUMNS` (``schema_version`` may be
    omitted); missing or unknown keys, bad types and a ``status`` outside ok/diverged/failed raise
    ``ValueError`` naming them. Writing the same ``trial_id`` again replaces the file. Returns the
    path written. ``durable=False``: no fsync (for a file :func:`compact` will replace).
    """
    import pyarrow as pa

    clean = validate_row(row)
    table = pa.Table.from_pylist([clean], schema=trajectory_schema())
    return _atomic_write_table(table, trajectory_path(sweep_dir, clean["trial_id"]), durable)


def trajectory_path(sweep_dir: str | os.PathLike | ObjectPath, trial_id: str) -> Path | ObjectPath:
    """The trajectory's own row file, ``<sweep_dir>/trajectories/<trial_id>.parquet``, as written
    while its work unit runs (a finished unit's rows are in its part file: :func:`finished_names`
    tells which trajectories have a row in either form)."""
    return storage_path(sweep_dir) / TRAJECTORIES_DIR / f"{safe_name(trial_id)}.parquet"


def write_steps(
    sweep_dir: str | os.PathLike | ObjectPath,
    trial_id: str,
    chunk: int,
    columns: Mapping[str, Any],
    *,
    durable: bool = True,
) -> Path | ObjectPath:
    """Write one chunk of a trial's per-time series as ``steps/<trial_id>-<chunk:06d>.parquet``.

    ``columns`` maps ``step``, ``t``, ``rel_l2_t``, ``ls_residual``, ``wall_s_cumulative`` to
    equal-length array-likes (``trial_id`` is filled in; if given it must match). ``step`` must be
    integer-valued. ``chunk`` (≥ 0) must be derived from the trial's own progress so that a
    retried trial rewrites the same file. Returns the path written. ``durable=False``: no fsync (for
    a file :func:`compact` will replace).
    """
    import numpy as np
    import pyarrow as pa

    stem = safe_name(trial_id)
    if isinstance(chunk, bool):
        raise ValueError(f"chunk must be a non-negative integer, got {chunk!r}")
    try:
        chunk = int(chunk.__index__())
    except (AttributeError, TypeError):
        raise ValueError(f"chunk must be a non-negative integer, got {chunk!r}") from None
    if chunk < 0:
        raise ValueError(f"chunk must be a non-negative integer, got {chunk}")
    if not isinstance(columns, Mapping):
        raise TypeError(f"columns must be a mapping of column name to array, got {type(columns).__name__}")
    data = dict(columns)
    if "trial_id" in data:
        given = data.pop("trial_id")
        values = [given] if isinstance(given, str) else list(given)
        if any(v != trial_id for v in values):
            raise ValueError(f"column 'trial_id' does not match trial_id={trial_id!r}")
    wanted = [n for n in STEPS_NAMES if n != "trial_id"]
    for name in STEPS_ADDED:  # optional: NaN when not given
        if name not in data and "step" in data:
            data[name] = np.full(len(np.asarray(data["step"])), np.nan)
    check_names(data, wanted, "invalid steps chunk", "columns")

    arrays: dict[str, Any] = {}
    for name in wanted:
        a = np.asarray(data[name])
        if a.ndim != 1:
            raise ValueError(f"column {name!r} must be one-dimensional, got shape {a.shape}")
        if name == "step":
            if a.dtype.kind == "f" and a.size and not np.all(np.isfinite(a) & (a == np.round(a))):
                raise ValueError("column 'step' must hold integers")
            if a.size and a.dtype.kind not in "iuf":
                raise ValueError(f"column 'step' must hold integers, got dtype {a.dtype}")
            a = a.astype(np.int64)
        else:
            if a.size and a.dtype.kind not in "iuf":
                raise ValueError(f"column {name!r} must hold numbers, got dtype {a.dtype}")
            a = a.astype(np.float64)
        arrays[name] = a
    lengths = {n: len(a) for n, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"steps columns have different lengths: {lengths}")
    nrows = next(iter(lengths.values()))
    schema = steps_schema()
    table = pa.Table.from_arrays(
        [pa.array([trial_id] * nrows, pa.string())] + [pa.array(arrays[n]) for n in wanted],
        schema=schema,
    )
    path = storage_path(sweep_dir) / STEPS_DIR / f"{stem}-{chunk:06d}.parquet"
    return _atomic_write_table(table, path, durable)


def _part_path(folder: Path | ObjectPath, name: str) -> Path | ObjectPath:
    return folder / f"{PART_PREFIX}{safe_name(name)}.parquet"


def _is_part(p: Path | ObjectPath) -> bool:
    return p.name.startswith(PART_PREFIX)


def has_part(sweep_dir: str | os.PathLike | ObjectPath, name: str) -> bool:
    """Whether the rows of part ``name`` (:func:`compact`) are written."""
    return _part_path(storage_path(sweep_dir) / TRAJECTORIES_DIR, name).is_file()


def compact(sweep_dir: str | os.PathLike | ObjectPath, name: str, trial_ids: Iterable[str]) -> int:
    """Merge the row files and steps chunks of ``trial_ids`` into one part file each —
    ``trajectories/+<name>.parquet`` and ``steps/+<name>.parquet`` — then delete the merged files
    (the state files, ``_state/<trial_id>.npz``, with the final θ, stay). Returns the number of rows
    merged.

    A work unit of a sweep calls this when it ends, so that a sweep of 10,000 trajectories is a few
    hundred files, not 30,000 (:func:`load` reads a file in a few milliseconds). Order of writes:
    the steps part, then the rows part (durable, atomic), then the deletions — a compaction
    interrupted anywhere leaves every row and step readable; at worst some are in both a part and
    their own file, which :func:`load` reads once (identical copies are dropped silently). Trial
    ids without a row file are left out; an unreadable file stops the compaction with nothing
    deleted (raised as :class:`ResultsError`).
    """
    import pyarrow as pa

    sweep_dir = storage_path(sweep_dir)
    stems = sorted({safe_name(str(t)) for t in trial_ids})
    tdir, sdir = sweep_dir / TRAJECTORIES_DIR, sweep_dir / STEPS_DIR
    skip = _Skipper(strict=True)
    row_files = [p for p in (tdir / f"{stem}.parquet" for stem in stems) if p.is_file()]
    if not row_files:
        return 0
    have = {p.name[: -len(".parquet")] for p in row_files}
    step_files = [p for stem, _, p in _steps_files(sdir, skip, have) if stem]
    fetched = _fetch(row_files + step_files)
    rows = pa.concat_tables([_read_checked(p, trajectory_schema(), "trajectory", skip, fetched) for p in row_files])
    steps = [_read_checked(p, steps_schema(), "steps", skip, fetched) for p in step_files]
    if steps:
        table = pa.concat_tables(steps)
        df = table.to_pandas()  # a retried chunk may repeat steps: the last chunk's copy is kept
        keep = ~df.duplicated(["trial_id", "step"], keep="last").to_numpy()
        if not keep.all():
            table = table.filter(pa.array(keep))
        _atomic_write_table(table.cast(steps_schema()), _part_path(sdir, name))
    _atomic_write_table(rows.cast(trajectory_schema()), _part_path(tdir, name))
    for p in step_files + row_files:
        p.unlink(missing_ok=True)
    return rows.num_rows


def finished_names(sweep_dir: str | os.PathLike | ObjectPath) -> set[str]:
    """The file names (:func:`safe_name`) of the trajectories of a sweep folder that have a row — in
    a file of their own or in a part file (:func:`compact`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sweep_dir = storage_path(sweep_dir)
    out: set[str] = set()
    parts = []
    for p in _visible_files(sweep_dir / TRAJECTORIES_DIR):
        if _is_part(p):
            parts.append(p)
        elif p.suffix == ".parquet":
            out.add(p.name[: -len(".parquet")])
    fetched = _fetch(parts)
    for p in parts:
        try:
            source = pa.BufferReader(fetched[p]) if p in fetched else p
            ids = pq.read_table(source, columns=["trial_id"]).column("trial_id").to_pylist()
        except Exception:  # noqa: BLE001 - an unreadable part has no usable rows (load skips it too)
            continue
        out.update(safe_name(str(t)) for t in ids)
    return out


def load_rows(sweep_dir: str | os.PathLike | ObjectPath, trial_ids: Iterable[str]) -> pd.DataFrame:
    """The rows of some trajectories of one sweep folder (from their own files or part files), one
    per trial id found, with the columns and dtypes of ``load(path).trajectories``."""
    sweep_dir = storage_path(sweep_dir)
    wanted = {str(t) for t in trial_ids}
    stems = {safe_name(t) for t in wanted}
    skip = _Skipper(strict=False)
    files = [
        p
        for p in _visible_files(sweep_dir / TRAJECTORIES_DIR)
        if _is_part(p) or (p.suffix == ".parquet" and p.name[: -len(".parquet")] in stems)
    ]
    traj = _trajectories_frame(_read_tables(files, trajectory_schema(), "trajectory", skip))
    return traj[traj["trial_id"].astype(str).isin(wanted)].reset_index(drop=True)


def _read_tables(files: list, schema, kind: str, skip: _Skipper) -> list:
    dirs = [p for p in files if p.is_dir()]
    for p in dirs:
        skip(p, f"unexpected directory in {p.parent.name}/")
    files = [p for p in files if p not in dirs]
    fetched = _fetch([p for p in files if p.suffix == ".parquet"])  # the others are skipped unread
    return [t for t in _read_many(files, schema, kind, skip, fetched) if t is not None]


def _read_many(files: list, schema, kind: str, skip: _Skipper, fetched: dict) -> list:
    """:func:`_read_checked` of each of ``files`` (``None`` for a skipped one), several files at a time —
    pyarrow reads and decodes without holding the GIL, and a sweep of 10,000 trajectories is a few
    hundred small part files — with the skips reported (and, when strict, raised) and a newer
    schema raised in file order, exactly as a serial read would."""
    from concurrent.futures import ThreadPoolExecutor

    def one(p):
        calls: list = []
        try:
            return _read_checked(p, schema, kind, lambda path, reason: calls.append((path, reason)), fetched), calls
        except FutureSchemaError as e:
            return e, calls

    out = []
    threads = min(8, max(2, available_cpus()), max(1, len(files)))
    with ThreadPoolExecutor(threads, thread_name_prefix="rsng-results-read") as pool:
        for t, calls in pool.map(one, files):
            for path, reason in calls:
                skip(path, reason)
            if isinstance(t, FutureSchemaError):
                raise t
            out.append(t)
    return out


def _drop_duplicates(df: pd.DataFrame, key: list[str], what: str, stacklevel: int) -> pd.DataFrame:
    """Rows repeated under ``key``: exact copies (a row in a part file and in its own file, left by
    an interrupted :func:`compact`) are dropped silently; differing ones keep the last file's, with
    a warning."""
    dup = df.duplicated(key, keep="last")
    if not dup.any():
        return df
    same = df.duplicated(keep="last")
    df = df[~same]
    dup = df.duplicated(key, keep="last")
    if dup.any():
        warnings.warn(
            f"{what}: {int(dup.sum())} duplicate {tuple(key)} rows; kept the last file's",
            ResultsWarning,
            stacklevel=stacklevel,
        )
        df = df[~dup]
    return df


def check_writable(storage: str | os.PathLike | ObjectPath, *, min_free_bytes: int = MIN_FREE_BYTES) -> None:
    """Make sure results can be written under ``storage``; create the folder if missing.

    Raises :class:`ResultsError` with a clear message if ``storage`` exists and is not a folder,
    cannot be created, is not writable (a hidden temp file is created and removed to find out), or
    its filesystem has less than ``min_free_bytes`` (50 MB) free. The free space is checked on the
    nearest existing folder *before* anything is created, and folders this call created are removed
    again when a later check fails, so a refused storage is left as it was.

    An object-store URI is checked by :func:`rsng.results.fs.check_object_store` instead: the
    scheme, the bucket, the credentials and a probe object written and deleted.
    """
    try:
        storage = storage_path(storage)
    except ValueError as e:
        raise ResultsError(str(e)) from None
    if isinstance(storage, ObjectPath):
        from rsng.results.fs import check_object_store

        try:
            check_object_store(storage)
        except ValueError as e:
            raise ResultsError(
                f"results storage {e}" if str(e).startswith(str(storage)) else f"results storage {storage}: {e}"
            ) from None
        return
    if storage.exists() and not storage.is_dir():
        raise ResultsError(f"results storage {storage} exists and is not a directory")
    existing = next((p for p in (storage, *storage.absolute().parents) if p.exists()), None)
    if existing is not None and existing.is_dir():
        free = shutil.disk_usage(existing).free
        if free < min_free_bytes:
            raise ResultsError(
                f"results storage {storage} has only {free / 2**20:.1f} MiB free; "
                f"at least {min_free_bytes / 2**20:.0f} MiB are required"
            )
    created = [p for p in (storage, *storage.parents) if not p.exists()]
    try:
        storage.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ResultsError(f"results storage {storage} cannot be created: {e.strerror or e}") from e
    try:
        fd, probe = tempfile.mkstemp(prefix=".rsng-write-test-", dir=storage)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        for p in created:  # innermost first
            try:
                p.rmdir()
            except OSError:
                break
        raise ResultsError(f"results storage {storage} is not writable: {e.strerror or e}") from e


# ================================================================================================
# loading
# ================================================================================================
@dataclass
class Results:
    """What :func:`load` found.

    Attributes:
      trajectories: one row per trajectory (columns of TRAJECTORY_COLUMNS).
      steps: per-time series: ``sweep`` (the folder name) then the STEPS_COLUMNS, sorted by
        sweep, trial_id, step.
      meta: ``sweep.json`` of the sweep when ``path`` is a sweep folder (``None`` if absent or when
        ``path`` is a storage root; see ``sweeps``).
      skipped: ``(file, reason)`` for every file that was skipped (corrupt or foreign).
      sweeps: sweep folder name -> its metadata (or ``None``), for every sweep loaded.
    """

    trajectories: pd.DataFrame
    steps: pd.DataFrame
    meta: dict | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    sweeps: dict[str, dict | None] = field(default_factory=dict)


def _is_visible(p: Path | ObjectPath) -> bool:
    return not p.name.startswith((".", "_"))


def is_sweep_dir(path: str | os.PathLike | ObjectPath) -> bool:
    """Whether ``path`` (a local folder or an object-store path) is a sweep folder: it holds
    ``sweep.json``, ``trajectories/`` or ``steps/``. An object store that cannot be read raises
    ``OSError``."""
    p = storage_path(path)
    return (p / SWEEP_META).is_file() or (p / TRAJECTORIES_DIR).is_dir() or (p / STEPS_DIR).is_dir()


def _sweep_dirs(path: Path | ObjectPath) -> tuple[list, bool]:
    """The sweep folders under ``path`` and whether ``path`` itself is one."""
    if isinstance(path, ObjectPath):
        if not path.is_dir():
            raise FileNotFoundError(f"results path {path} does not exist (no objects under it)")
        if is_sweep_dir(path):
            return [path], True
        return sorted(p for p in path.iterdir() if _is_visible(p) and p.is_dir() and is_sweep_dir(p)), False
    if not path.exists():
        raise FileNotFoundError(f"results path {path} does not exist")
    if not path.is_dir():
        raise NotADirectoryError(f"results path {path} is not a directory (expected a sweep folder or a storage root)")
    path = path.resolve()  # so that "." still has a sweep name
    if is_sweep_dir(path):
        return [path], True
    subs = sorted(p for p in path.iterdir() if _is_visible(p) and p.is_dir() and is_sweep_dir(p))
    return subs, False


class _Skipper:
    def __init__(self, strict: bool):
        self.strict = strict
        self.skipped: list[tuple[str, str]] = []

    def __call__(self, path: Path, reason: str) -> None:
        if self.strict:
            raise ResultsError(f"{path}: {reason}")
        warnings.warn(f"skipping results file {path}: {reason}", ResultsWarning, stacklevel=2)
        self.skipped.append((str(path), reason))


def _check_version(version: Any, path: Path) -> None:
    try:
        v = int(version)
    except (TypeError, ValueError):
        return  # not ours to judge here; the schema check reports it
    if v > SCHEMA_VERSION:
        raise FutureSchemaError(
            f"{path} was written with results schema version {v}, but this rsng reads only versions "
            f"≤ {SCHEMA_VERSION}; upgrade rsng to read it"
        )


def _read_checked(
    path: Path | ObjectPath, schema: pa.Schema, kind: str, skip: _Skipper, fetched: dict | None = None
) -> pa.Table | None:
    """Read one Parquet file and cast it to ``schema``; ``None`` (after ``skip``) if unusable.

    Files written by a newer schema version raise :class:`ResultsError` whatever ``strict`` is.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.suffix != ".parquet":
        skip(path, "not a .parquet file")
        return None
    reason, table = None, None
    try:
        source = path
        if isinstance(path, ObjectPath):  # the bytes, fetched ahead (in parallel) or now
            data = (fetched or {}).get(path)
            if isinstance(data, BaseException):
                raise data
            source = pa.BufferReader(data if data is not None else path.read_bytes())
        with pq.ParquetFile(source) as pf:
            file_schema = pf.schema_arrow
            md = file_schema.metadata or {}
            version = md.get(META_VERSION_KEY.encode())
            if version is not None:
                _check_version(version.decode(errors="replace"), path)
            names, expected = list(file_schema.names), list(schema.names)
            upgrade_v1 = kind == "trajectory" and version == b"1" and "solver" not in names
            if upgrade_v1:
                names += ["solver", "batch_size"]
            # run fields added after the file was written: filled with the field's declared ``absent`` value
            fill = {
                f.name: f.absent
                for f in record.stored_fields()
                if kind == "trajectory" and f.name not in names and f.absent is not None
            }
            if kind == "steps":  # steps columns added later: NaN in older files
                fill.update({n: float("nan") for n in STEPS_ADDED if n not in names})
            if kind == "trajectory":  # summary columns added later: null in older files
                fill.update({n: None for n in TRAJECTORY_ADDED if n not in names})
            names += list(fill)
            if sorted(names) != sorted(expected):
                missing = [n for n in expected if n not in names]
                extra = [n for n in names if n not in expected]
                file_kind = md.get(META_KIND_KEY.encode())
                what = f"an rsng {file_kind.decode(errors='replace')} file" if file_kind else "foreign Parquet"
                detail = ([f"missing columns {missing}"] if missing else []) + (
                    [f"unexpected columns {extra}"] if extra else []
                )
                reason = f"{what}, not a {kind} file: " + "; ".join(detail or ["duplicate columns"])
            else:
                table = pf.read()
                if upgrade_v1:  # version 1 → 2: solver and batch_size were added
                    table = table.append_column("solver", pa.array([V1_SOLVER] * table.num_rows, pa.string()))
                    table = table.append_column("batch_size", pa.array([1] * table.num_rows, pa.int32()))
                for name, value in fill.items():
                    table = table.append_column(name, pa.array([value] * table.num_rows, schema.field(name).type))
    except FutureSchemaError:
        raise
    except Exception as e:  # noqa: BLE001 - anything pyarrow raises on a bad file
        reason = f"not a readable Parquet file ({type(e).__name__}: {e})"
    if reason is not None:
        skip(path, reason)
        return None
    try:
        table = table.select(schema.names).cast(schema.remove_metadata())
        if kind == "trajectory":  # deprecated solver names, as stored by older versions → current names
            import pyarrow.compute as pc

            solver = table.column("solver")
            for old, new in SOLVER_ALIASES.items():
                solver = pc.if_else(pc.equal(solver, old), new, solver)
            table = table.set_column(table.schema.get_field_index("solver"), "solver", solver)
    except Exception as e:  # noqa: BLE001 - any failed conversion means a foreign file
        skip(path, f"column types do not match the {kind} schema ({e})")
        return None
    for f in schema:
        if not f.nullable and table.column(f.name).null_count:
            skip(path, f"column {f.name!r} has nulls")
            return None
    if kind == "trajectory" and table.num_rows:
        import pyarrow.compute as pc

        vmax = pc.max(table.column("schema_version")).as_py()
        _check_version(vmax, path)
        vmin = pc.min(table.column("schema_version")).as_py()
        if vmin < 1:
            skip(path, f"invalid schema_version {vmin}")
            return None
    return table


def _visible_files(folder: Path | ObjectPath) -> list:
    if isinstance(folder, ObjectPath):  # one listing; nothing listed when the prefix is absent
        return sorted(p for p in folder.iterdir() if _is_visible(p))
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _is_visible(p))


def _steps_files(
    folder: Path | ObjectPath, skip: _Skipper, stems: set[str] | None = None
) -> list[tuple[str, int, Path]]:
    """``(stem, chunk, path)`` of the steps files in ``folder`` (only ``stems`` when given), in
    (stem, chunk) order."""
    out = []
    for p in _visible_files(folder):
        if p.is_dir():
            if stems is None:
                skip(p, "unexpected directory in steps/")
            continue
        if _is_part(p) and p.suffix == ".parquet":  # many trajectories: filtered by trial id when read
            out.append(("", -1, p))
            continue
        m = _CHUNK_RE.match(p.stem) if p.suffix == ".parquet" else None
        if m is None:
            if stems is None:
                skip(p, "not a steps chunk file name (<trial_id>-<chunk:06d>.parquet)")
            continue
        if stems is not None and m["stem"] not in stems:
            continue
        out.append((m["stem"], int(m["chunk"]), p))
    out.sort(key=lambda x: (x[0], x[1]))
    return out


def _to_pandas(table: pa.Table, columns) -> pd.DataFrame:
    import pandas as pd

    df = table.to_pandas()
    for c in columns:
        if c.type in ("int32", "int64") and c.nullable:
            df[c.name] = pd.array(table.column(c.name).to_pylist(), dtype="Int32" if c.type == "int32" else "Int64")
    for name in CATEGORICAL_COLUMNS:
        if name in df.columns:
            if name == "status":
                df[name] = df[name].astype(pd.CategoricalDtype(list(STATUSES)))
            else:
                df[name] = df[name].astype("category")
    return df


def _empty_trajectories():
    return trajectory_schema().remove_metadata().empty_table()


def _steps_table_schema():
    import pyarrow as pa

    return pa.schema([pa.field("sweep", pa.string(), nullable=False)] + list(steps_schema().remove_metadata()))


def _fetch(paths: list) -> dict:
    """The bytes of the object-store files among ``paths``, downloaded in parallel (an exception in
    place of the bytes of a file that could not be read); local files are left to the reader."""
    remote = [p for p in paths if isinstance(p, ObjectPath)]
    if not remote:
        return {}
    from concurrent.futures import ThreadPoolExecutor

    def get(p):
        try:
            return p.read_bytes()
        except Exception as e:  # noqa: BLE001 - reported as a skipped file
            return e

    with ThreadPoolExecutor(min(32, len(remote)), thread_name_prefix="rsng-results-read") as pool:
        return dict(zip(remote, pool.map(get, remote)))


def _read_steps(sweeps: list, skip: _Skipper, stems: set[str] | None, trial_ids: set[str] | None) -> pd.DataFrame:
    import pyarrow as pa

    schema = steps_schema()
    files, names = [], []
    for sweep_dir in sweeps:
        found = [p for _, _, p in _steps_files(sweep_dir / STEPS_DIR, skip, stems)]
        files += found
        names += [sweep_dir.name] * len(found)
    tables = []
    for name, t in zip(names, _read_many(files, schema, "steps", skip, _fetch(files))):
        if t is not None:
            tables.append(
                t.add_column(0, pa.field("sweep", pa.string(), nullable=False), pa.array([name] * t.num_rows))
            )
    table = pa.concat_tables(tables) if tables else _steps_table_schema().empty_table()
    if trial_ids is not None:
        import pyarrow.compute as pc

        table = table.filter(pc.is_in(table.column("trial_id"), pa.array(sorted(trial_ids), pa.string())))
    key = ["sweep", "trial_id", "step"]
    table = _sort_steps(table)
    cols = (Column("sweep", "string", False, ""),) + STEPS_COLUMNS
    df = _to_pandas(table, cols)
    if not _repeats_neighbour(table, key):  # the usual case: no key twice, nothing for pandas to check
        return df
    return _drop_duplicates(df, key, "steps", stacklevel=4).reset_index(drop=True)


def _sort_steps(table: pa.Table) -> pa.Table:
    """``table`` sorted by (sweep, trial_id, step), stably (so that repeated keys keep their file order
    for :func:`_drop_duplicates`). Sorted in Arrow on integer keys — each string replaced by its rank
    among the distinct values — rather than on the strings (2 million steps: 0.39 s against 0.60 s;
    benchmarks/README.md) or by pandas; rows already in order are not copied."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if table.num_rows < 2:
        return table
    keys = {}
    for name in ("sweep", "trial_id"):
        col = table.column(name)
        values = pc.unique(col)
        keys[name] = pc.index_in(col, value_set=values.take(pc.sort_indices(values)))
    keys["step"] = table.column("step")
    order = pc.sort_indices(pa.table(keys), sort_keys=[(k, "ascending") for k in keys]).to_numpy()
    if (np.diff(order) == 1).all():
        return table
    return table.take(order)


def _repeats_neighbour(table: pa.Table, key: list[str]) -> bool:
    """Whether some row of ``table``, sorted by ``key``, has the key of the row after it (compared
    in Arrow: 2 million rows in 0.03 s, where pandas' ``duplicated`` takes 0.26 s; benchmarks/README.md)."""
    import pyarrow.compute as pc

    if table.num_rows < 2:
        return False
    same = None
    for k in key:
        col = table.column(k)
        eq = pc.equal(col.slice(1), col.slice(0, table.num_rows - 1))
        same = eq if same is None else pc.and_(same, eq)
    return bool(pc.any(same).as_py())


def load(path: str | os.PathLike | ObjectPath, *, strict: bool = False, with_steps: bool = True) -> Results:
    """Load the results of one sweep folder or of every sweep under a storage root.

    Args:
      path: a sweep folder (holding ``sweep.json``, ``trajectories/`` or ``steps/``) or a storage
        root whose sub-folders are sweep folders (their results are concatenated); a local path or
        an object-store URI (``s3://BUCKET/PREFIX/SWEEP``, ``gs://…``), whose files are downloaded
        in parallel.
      strict: raise :class:`ResultsError` on the first corrupt or foreign file instead of
        skipping it with a :class:`ResultsWarning`.
      with_steps: also read the per-time series (set ``False`` to read only the summaries).

    Hidden files (names starting with ``.`` or ``_``, e.g. temp files of writes in progress) are
    ignored. A path that does not exist raises ``FileNotFoundError``; an empty folder gives empty
    DataFrames with the right columns and dtypes. Files written by a newer schema version raise
    :class:`ResultsError` (even when not strict).
    """

    path = storage_path(path)
    sweeps, single = _sweep_dirs(path)
    skip = _Skipper(strict)
    metas: dict[str, dict | None] = {}
    tables = []
    schema = trajectory_schema()
    for sweep_dir in sweeps:
        try:
            metas[sweep_dir.name] = read_sweep_meta(sweep_dir)
        except FileNotFoundError:
            metas[sweep_dir.name] = None
        except FutureSchemaError:
            raise
        except ResultsError as e:
            skip(sweep_dir / SWEEP_META, str(e).split(": ", 1)[-1])
            metas[sweep_dir.name] = None
        tables += _read_tables(_visible_files(sweep_dir / TRAJECTORIES_DIR), schema, "trajectory", skip)
    traj = _trajectories_frame(tables)
    steps = _read_steps(sweeps if with_steps else [], skip, None, None)
    return Results(
        trajectories=traj,
        steps=steps,
        meta=metas[sweeps[0].name] if single else None,
        skipped=skip.skipped,
        sweeps=metas,
    )


def _trajectories_frame(tables: list) -> pd.DataFrame:
    import pyarrow as pa

    table = pa.concat_tables(tables) if tables else _empty_trajectories()
    traj = _to_pandas(table, trajectory_columns())
    return _drop_duplicates(traj, ["sweep", "trial_id"], "trajectories", stacklevel=4).reset_index(drop=True)


def load_steps(
    path: str | os.PathLike | ObjectPath, trial_ids: Iterable[str] | str | None = None, *, strict: bool = False
) -> pd.DataFrame:
    """Read the per-time series of some trials (all when ``trial_ids`` is ``None``).

    Only the chunk files whose names belong to the requested trials (and the part files of
    :func:`compact`, filtered by trial id) are opened. ``path`` is a
    sweep folder or a storage root, as for :func:`load`; the frame has the same columns and dtypes
    as ``load(path).steps``.
    """
    path = storage_path(path)
    sweeps, _ = _sweep_dirs(path)
    skip = _Skipper(strict)
    if trial_ids is None:
        return _read_steps(sweeps, skip, None, None)
    ids = {trial_ids} if isinstance(trial_ids, str) else set(trial_ids)
    return _read_steps(sweeps, skip, {safe_name(t) for t in ids}, ids)
