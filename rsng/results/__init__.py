"""Parquet results of sweeps: one file per trajectory, chunked per-time series, sweep metadata.

Importing this package is cheap: it loads neither pyarrow nor pandas (they are imported on first
use), and never JAX, Ray or MLflow. Results live in a local folder or an object store
(``s3://``, ``gs://``; :mod:`rsng.results.fs`). See :mod:`rsng.results.store` for the layout and atomicity
guarantees and ``docs/results-schema.md`` for every column.
"""

from rsng.results.fs import ObjectPath, is_remote, storage_path
from rsng.results.schema import (
    CATEGORICAL_COLUMNS,
    SCHEMA_VERSION,
    STATUSES,
    STEPS_COLUMNS,
    TRAJECTORY_COLUMNS,
    Column,
    FutureSchemaError,
    ResultsError,
    ResultsWarning,
    safe_name,
    steps_schema,
    trajectory_schema,
    validate_row,
)
from rsng.results.store import (
    MIN_FREE_BYTES,
    Results,
    atomic_write,
    check_writable,
    compact,
    finished_names,
    has_part,
    is_sweep_dir,
    load,
    load_rows,
    load_steps,
    read_sweep_meta,
    trajectory_path,
    write_steps,
    write_sweep_meta,
    write_trajectory,
)

__all__ = [
    "SCHEMA_VERSION",
    "STATUSES",
    "CATEGORICAL_COLUMNS",
    "TRAJECTORY_COLUMNS",
    "STEPS_COLUMNS",
    "Column",
    "ResultsError",
    "FutureSchemaError",
    "ResultsWarning",
    "Results",
    "MIN_FREE_BYTES",
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
    "validate_row",
    "safe_name",
    "trajectory_schema",
    "steps_schema",
    "ObjectPath",
    "storage_path",
    "is_remote",
]
