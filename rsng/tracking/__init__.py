"""MLflow view of sweep results: a driver-side :class:`Tracker`, :func:`sync` of Parquet results,
and :func:`start_server` for a local tracking server.

The Parquet files (:mod:`rsng.results`) are the source of truth; everything here fails soft — an
unreachable MLflow store is warned about and never breaks a sweep (``rsng mlflow-sync`` catches up).
Importing this package is cheap: MLflow, pandas and matplotlib are imported on first use, JAX and
Ray never.

Stores: ``sqlite:///PATH`` locally (the default, :func:`default_tracking_uri`:
``<sweep_dir>/mlflow.db``) or an HTTP tracking server (``http://HOST:PORT``) for clusters. Plain
``file:``/``./mlruns`` stores are refused (MLflow 3 disables them by default).
"""

from rsng.tracking.server import ServerHandle, free_port, start_server
from rsng.tracking.tracker import (
    ARTIFACT_NAME,
    CONFIG_PARAMS,
    HISTORY_POINTS,
    HTTP_ENV_DEFAULTS,
    STEP_METRICS,
    SUMMARY_METRICS,
    SyncReport,
    Tracker,
    experiment_name,
    history_index,
    sync,
)
from rsng.tracking.uri import ACCEPTED_URIS, default_tracking_uri, validate_tracking_uri

__all__ = [
    "Tracker",
    "SyncReport",
    "sync",
    "default_tracking_uri",
    "validate_tracking_uri",
    "ACCEPTED_URIS",
    "start_server",
    "ServerHandle",
    "free_port",
    "experiment_name",
    "HTTP_ENV_DEFAULTS",
    "CONFIG_PARAMS",
    "SUMMARY_METRICS",
    "STEP_METRICS",
    "ARTIFACT_NAME",
    "HISTORY_POINTS",
    "history_index",
]
