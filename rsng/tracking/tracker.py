"""Driver-side MLflow sink of a sweep, and ``sync`` of Parquet results into MLflow.

The Parquet files (:mod:`rsng.results`) are the source of truth; MLflow is a view of them. A
sweep's runs are laid out as

* one experiment per sweep, ``rsng/<sweep name>`` (artifacts under ``<sweep_dir>/mlflow-artifacts``
  with a sqlite store; the server decides with an HTTP store);
* one **parent run** per sweep (tags ``rsng.kind=parent``, ``rsng.sweep=<name>``; params: the grid,
  flattened), reused when a sweep is resumed or synced again;
* one nested **child run** per trajectory (tags ``mlflow.parentRunId``, ``rsng.trial_id``,
  ``rsng.status``): config params, summary metrics, the per-step series ``rel_l2_t``,
  ``ls_residual`` and the sketched Jacobian's conditioning ``ls_rank``, ``ls_sigma_max``,
  ``ls_sigma_min_kept`` (``step`` = solver step; at most :data:`HISTORY_POINTS` stored steps each, evenly
  thinned with the first and the last kept — Parquet keeps every step) and, when logged by
  :func:`sync` (or ``log_trajectory(..., plot=True)``), an ``error_over_time.png`` artifact; ended
  FINISHED when the trajectory's status is ``ok``, KILLED when a search stopped it early, else FAILED (tag ``rsng.error_message``).

A child costs three requests (create, one ``log_batch`` with the params, summary metrics and the
thinned series — within MLflow's limits of 1000 metrics and 100 params/tags per batch — and the end);
a sweep driver logs its children from a background thread (:mod:`rsng.service.runner`), off the
path that schedules trials.

Logging is idempotent per trial id, so :func:`sync` can be re-run at any time and only adds what
is missing (and replaces a child left RUNNING by an interrupted sync, or one recorded for an
older attempt of a retried trial).

Failure policy: the tracker never raises because of MLflow (store unreachable, server down
mid-sweep, sqlite locked, a request rejected). Each failure is reported through ``warn`` — once per
call site until a call succeeds again — with the hint to run ``rsng mlflow-sync`` later; after a
failure ``available`` is ``False`` and the next attempt is made at most every
``retry_interval_s`` seconds, so a dead server costs the sweep nothing. A trajectory that could not
be logged is simply picked up by the next sync.

HTTP timeouts: :class:`Tracker` sets (``os.environ.setdefault``, so values already set win)
``MLFLOW_HTTP_REQUEST_TIMEOUT=5``, ``MLFLOW_HTTP_REQUEST_MAX_RETRIES=1`` and
``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR=1`` (MLflow's defaults are 120 s, 7 retries, factor 2: minutes
of hanging on a dead server). A refused connection then fails in milliseconds, a hung server in
about 10 s. These are process-wide MLflow settings.

MLflow (and pandas / matplotlib) are imported inside the functions, so ``import rsng.tracking``
stays cheap; this module never imports JAX or Ray.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsng.core import record
from rsng.tracking.uri import default_tracking_uri, validate_tracking_uri

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "Tracker",
    "SyncReport",
    "sync",
    "experiment_name",
    "HTTP_ENV_DEFAULTS",
    "CONFIG_PARAMS",
    "SUMMARY_METRICS",
    "STEP_METRICS",
    "ARTIFACT_NAME",
    "HISTORY_POINTS",
    "history_index",
]

#: Environment defaults set by the tracker so that a dead server fails fast (see module doc).
HTTP_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}
#: Trajectory columns logged as params of a child run besides the run record's fields.
RUN_PARAMS = ("batch_size", "reference", "rsng_version", "jax_version")
#: The built-in params of a child run (:func:`config_params` adds registered run fields).
CONFIG_PARAMS = record.record_columns() + RUN_PARAMS


def config_params() -> tuple[str, ...]:
    """Trajectory columns logged as params of a child run: the run record's stored fields
    (:mod:`rsng.core.record`, registered ones included) and :data:`RUN_PARAMS`."""
    return record.record_columns() + RUN_PARAMS


#: Trajectory columns logged as metrics of a child run (skipped when null/NaN; ±inf is kept).
SUMMARY_METRICS = ("rel_l2", "rel_l2_t0", "rel_l2_final", "wall_s", "compile_s", "steps")
#: Steps columns logged as per-step metric series (``step`` = solver step; non-finite points skipped).
STEP_METRICS = ("rel_l2_t", "ls_residual", "ls_rank", "ls_sigma_max", "ls_sigma_min_kept")
#: The plot attached to a child run with a per-step series (by :func:`sync`).
ARTIFACT_NAME = "error_over_time.png"
#: At most this many stored steps of each per-step series go to MLflow (Parquet keeps them all).
HISTORY_POINTS = 64

TAG_SWEEP = "rsng.sweep"
TAG_KIND = "rsng.kind"
TAG_TRIAL = "rsng.trial_id"
TAG_STATUS = "rsng.status"
TAG_FINISHED = "rsng.finished_at"
TAG_ERROR = "rsng.error_message"
TAG_PARENT = "mlflow.parentRunId"

_MAX_PARAM_VAL = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH
_MAX_TAG_VAL = 8000  # MAX_TAG_VAL_LENGTH
_MAX_KEY = 250  # MAX_ENTITY_KEY_LENGTH
_MAX_METRICS_PER_BATCH = 1000
_MAX_PARAMS_TAGS_PER_BATCH = 100
_TERMINAL = ("FINISHED", "FAILED", "KILLED")
#: ``sync`` reads the steps of this many trajectories at a time.
_SYNC_BATCH = 500
#: MLflow error codes that mean "this request was refused", not "the store is down".
_REJECTED_CODES = frozenset(
    {
        "INVALID_PARAMETER_VALUE",
        "BAD_REQUEST",
        "RESOURCE_ALREADY_EXISTS",
        "RESOURCE_DOES_NOT_EXIST",
        "INVALID_STATE",
        "MALFORMED_REQUEST",
    }
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BAD_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")
_FILTER_SAFE = re.compile(r"^[^'\"`\\]*$")


def history_index(n: int, points: int = HISTORY_POINTS):
    """Indices of at most ``points`` of ``n`` stored steps, evenly spread, the first and the last kept
    (all of them when ``n <= points``)."""
    import numpy as np

    if n <= points:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max(points, 2))).astype(np.int64))


def experiment_name(sweep_name: str) -> str:
    """MLflow experiment of a sweep: ``rsng/<sweep_name>``."""
    return f"rsng/{sweep_name}"


# -- small helpers ------------------------------------------------------------------------------------
def _is_null(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(v != v)  # NaN, NaT
    except (TypeError, ValueError):  # pandas.NA
        return True


def _to_datetime(v: Any) -> datetime | None:
    if _is_null(v):
        return None
    if hasattr(v, "to_pydatetime"):
        v = v.to_pydatetime()
    if not isinstance(v, datetime):
        return None
    if v.tzinfo is None:
        v = v.replace(tzinfo=UTC)
    return v.astimezone(UTC)


def _ms(v: Any) -> int | None:
    d = _to_datetime(v)
    return None if d is None else (d - _EPOCH) // timedelta(milliseconds=1)


def _iso(v: Any) -> str:
    d = _to_datetime(v)
    return "" if d is None else d.isoformat(timespec="microseconds")


def _scalar(v: Any) -> Any:
    """numpy / pandas scalars → plain Python (datetimes, incl. pandas.Timestamp, are kept)."""
    if v is None or isinstance(v, (str, bytes, datetime)):
        return v
    item = getattr(v, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            return v
    return v


def _param_str(v: Any) -> str:
    v = _scalar(v)
    if _is_null(v):
        return ""
    s = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    return s[:_MAX_PARAM_VAL]


def _key(k: Any) -> str:
    k = _BAD_KEY.sub("_", str(k)).strip("/ ") or "_"
    return k.replace("..", "_.")[:_MAX_KEY]


def _flatten(d: Mapping, prefix: str) -> Iterable[tuple[str, Any]]:
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v:
            yield from _flatten(v, key)
        else:
            yield key, v


def _short(e: BaseException, limit: int = 400) -> str:
    msg = " ".join(str(e).split()) or type(e).__name__
    if len(msg) > limit:
        msg = msg[: limit - 1] + "…"
    return f"{type(e).__name__}: {msg}"


def _store_down(e: BaseException) -> bool:
    """Whether an error means the store cannot be used now (unreachable, locked, 5xx) rather than
    that it refused this particular data."""
    if isinstance(e, OSError):  # requests' connection errors and timeouts are OSErrors
        return True
    code = getattr(e, "error_code", None)
    if code is None:  # not an MLflow error: a bad row or a bug here, not the store
        return False
    return code not in _REJECTED_CODES


def _up_to_date(status: str, recorded: str | None, finished: str) -> bool:
    """Whether a child run in ``status`` with tag ``rsng.finished_at=recorded`` already holds the
    attempt that finished at ``finished`` (a run without the tag is taken as current)."""
    return status in _TERMINAL and (not recorded or not finished or recorded == finished)


def _quote_ok(value: str) -> bool:
    return bool(_FILTER_SAFE.match(value))


@dataclass(frozen=True)
class SyncReport:
    """Outcome of :func:`sync`: child runs ``created``, trajectories already present (``skipped``),
    and trajectories that could not be logged (``failed``; the next sync retries them)."""

    created: int = 0
    skipped: int = 0
    failed: int = 0

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def __str__(self) -> str:
        return f"{self.created} created, {self.skipped} already present, {self.failed} failed"


class Tracker:
    """MLflow sink of one sweep, used on the driver (never in trial workers).

    ``Tracker(uri, sweep_name, sweep_dir, grid=..., tags=..., warn=print)`` then :meth:`start`, one
    :meth:`log_trajectory` per finished trajectory, and :meth:`finish`. Also a context manager
    (``start`` on enter; ``finish`` on exit, FAILED on an exception, KILLED on KeyboardInterrupt).

    Args:
      uri: ``sqlite:///PATH`` or ``http(s)://…`` (checked by :func:`validate_tracking_uri`).
      sweep_name: the experiment is ``rsng/<sweep_name>``, the parent run is named after it.
      sweep_dir: the sweep folder (artifact root ``<sweep_dir>/mlflow-artifacts`` with sqlite; named
        in the warnings' ``rsng mlflow-sync`` hint).
      grid: logged as parent params ``grid.<key>[.<sub key>…]``: nested mappings are flattened,
        values JSON-encoded (strings as they are) and cut to MLflow's 6000 characters.
      params: more parent params, flattened the same way with dotted keys (e.g. ``{"fixed": {...}}``
        → ``fixed.<key>``). Params are immutable in MLflow: on resume only new keys are added.
      tags: parent tags (stringified; ``git_sha`` also sets ``mlflow.source.git.commit``,
        ``mlflow.note.content`` is the run's description in the UI).
      warn: called with each warning message (default ``print``).
      retry_interval_s: after a failure, wait this long before the next automatic retry (doubled on
        each consecutive failure, at most 10 min); explicit :meth:`start` calls always try.
      exclusive: this tracker is the only writer of the sweep's child runs while it lives (a sweep
        driver): once it knows every child (it created the parent, or :meth:`existing_trials` read
        them), a trajectory it has not logged is logged without first searching for its children.

    Only invalid arguments raise (``ValueError``: a bad ``uri`` or ``sweep_name`` at construction, a
    bad ``finish`` status); everything MLflow does fails soft (see the module doc): the method warns
    through ``warn`` and returns ``False``.

    Attributes:
      available: whether the store answered the last time it was used (``False`` before start()).
      experiment_id, parent_run_id: set by a successful :meth:`start`.
      last_error: the last MLflow error seen (``None`` after a success).
      logged, log_seconds: child runs created by this tracker, and the wall seconds spent in
        :meth:`log_trajectory` calls (all outcomes).
    """

    def __init__(
        self,
        uri: str,
        sweep_name: str,
        sweep_dir: str | os.PathLike,
        *,
        grid: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        warn: Callable[[str], Any] = print,
        retry_interval_s: float = 30.0,
        exclusive: bool = False,
    ):
        self.uri = validate_tracking_uri(uri)
        if not isinstance(sweep_name, str) or not sweep_name:
            raise ValueError(f"sweep_name must be a non-empty string, got {sweep_name!r}")
        self.sweep_name = sweep_name
        from rsng.results.fs import storage_path

        self.sweep_dir = storage_path(sweep_dir)  # a Path, or an ObjectPath (s3://…) with the same interface
        self.grid = dict(grid) if grid else {}
        self.tags = dict(tags) if tags else {}
        self.params = dict(params) if params else {}
        self.warn = warn
        self.retry_interval_s = float(retry_interval_s)
        self.available = False
        self.experiment_id: str | None = None
        self.parent_run_id: str | None = None
        self.last_error: BaseException | None = None
        self._client = None
        self._last_failure = -math.inf
        self._failures = 0
        self._warned: set[str] = set()
        self._lock = threading.RLock()
        self.logged = 0
        self.log_seconds = 0.0
        # trial ids with a child run, when this tracker knows all of them (a parent it created, or
        # existing_trials() read): then a new trajectory is logged without a search for its children
        self._known: set[str] | None = None
        self.exclusive = bool(exclusive)

    # -- public API ---------------------------------------------------------------------------------
    @property
    def retry_delay_s(self) -> float:
        """Seconds to wait after a failure before trying the store again: ``retry_interval_s``,
        doubled on every consecutive failure up to 10 minutes (reset by a success)."""
        if self._failures <= 1:
            return self.retry_interval_s
        return min(self.retry_interval_s * 2.0 ** (self._failures - 1), max(600.0, self.retry_interval_s))

    @property
    def is_sqlite(self) -> bool:
        return self.uri.startswith("sqlite:")

    def start(self) -> bool:
        """Connect, get or create the experiment and the sweep's parent run (set RUNNING).

        Returns ``True`` on success; on failure warns once and returns ``False``.
        """
        with self._lock:
            return self._attempt("start", self._start, default=False)

    def log_trajectory(
        self, row: Mapping[str, Any], steps: pd.DataFrame | Mapping[str, Any] | None = None, *, plot: bool = True
    ) -> bool:
        """Log one trajectory as a child run; ``True`` if a run was created.

        ``row`` is a trajectory row (the dict given to ``write_trajectory`` or a row of
        ``load(...).trajectories``); ``steps`` its per-time series (``load_steps`` frame, a mapping
        of column → array with ``step`` and the :data:`STEP_METRICS`, or ``None``); ``plot``: attach
        the error plot. Returns ``False`` when the trial is already logged (a FINISHED/FAILED/KILLED
        child for the same attempt exists), or when MLflow is unavailable (warned).
        """
        return self._log(row, steps, plot=plot) == "created"

    def finish(self, status: str = "FINISHED") -> bool:
        """End the parent run with ``status`` (FINISHED, FAILED or KILLED); ``True`` on success.

        Tried whenever a parent run is known, even after failures (it is the last chance).
        """
        status = str(status).upper()
        if status not in _TERMINAL:
            raise ValueError(f"status must be one of {', '.join(_TERMINAL)}; got {status!r}")
        with self._lock:
            if self.parent_run_id is None:
                return False

            def end():
                self._get_client().set_terminated(self.parent_run_id, status=status)
                return True

            return self._attempt("finish", end, default=False)

    def existing_trials(self) -> dict[str, list[tuple[str, str]]]:
        """``trial_id -> [(run status, rsng.finished_at tag), ...]`` of the parent's child runs,
        oldest first (``{}`` if unavailable)."""
        with self._lock:
            if not self._ready("existing_trials"):
                return {}

            def collect():
                out: dict[str, list[tuple[str, str]]] = {}
                for run in self._children():
                    tid = run.data.tags.get(TAG_TRIAL)
                    if tid is not None:
                        out.setdefault(tid, []).append((run.info.status, run.data.tags.get(TAG_FINISHED, "")))
                self._known = set(out)
                return out

            return self._attempt("existing_trials", collect, default={})

    def __enter__(self) -> Tracker:
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish("FINISHED")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.finish("KILLED")
        else:
            self.finish("FAILED")

    # -- failure handling -----------------------------------------------------------------------------
    def _attempt(self, site: str, fn: Callable[[], Any], default: Any, *, what: str | None = None) -> Any:
        """Run ``fn``; on an exception warn (once per site) and return ``default``.

        With ``what`` (a trajectory), an error that is about the data rather than the store (MLflow
        rejected a value, or a bad row) leaves ``available`` as it is; every other error marks the
        store unavailable until the next retry.
        """
        try:
            out = fn()
        except Exception as e:  # noqa: BLE001 - the policy: MLflow never breaks a sweep
            if what is not None and not _store_down(e):
                self._fail(f"{site} (rejected)", e, down=False, what=what)
            else:
                self._fail(site, e)
            return default
        self.last_error = None
        self._warned.clear()
        self._failures = 0
        return out

    def _fail(self, site: str, e: BaseException, *, down: bool = True, what: str | None = None) -> None:
        self.last_error = e
        if down:
            self.available = False
            self._last_failure = time.monotonic()
            self._failures += 1
        if site not in self._warned:
            self._warned.add(site)
            head = f"MLflow unavailable ({self.uri})" if down else f"MLflow could not log {what} ({self.uri})"
            self.warn(
                f"{head}: {_short(e)}; Parquet results are complete — run `rsng mlflow-sync {self.sweep_dir}` later"
            )

    def _ready(self, site: str) -> bool:
        """Whether the store can be used now; retries start() at most every retry_interval_s."""
        if self.available:
            return True
        if time.monotonic() - self._last_failure < self.retry_delay_s:
            return False
        return self._attempt(site, self._start, default=False)

    # -- MLflow plumbing --------------------------------------------------------------------------------
    def _get_client(self):
        if self._client is None:
            for k, v in HTTP_ENV_DEFAULTS.items():
                os.environ.setdefault(k, v)
            if self.is_sqlite:
                db = Path(self.uri[len("sqlite:///") :])
                db.parent.mkdir(parents=True, exist_ok=True)
            import mlflow

            self._client = mlflow.MlflowClient(tracking_uri=self.uri)
        return self._client

    def _start(self) -> bool:
        client = self._get_client()
        self.experiment_id = self._get_or_create_experiment(client)
        self.parent_run_id = self._get_or_create_parent(client)
        self.available = True
        return True

    def _get_or_create_experiment(self, client) -> str:
        name = experiment_name(self.sweep_name)
        exp = client.get_experiment_by_name(name)
        if exp is None:
            artifacts = None
            if self.is_sqlite:  # next to the results; for a sweep on an object store, next to the local db
                folder = (
                    self.sweep_dir.resolve()
                    if isinstance(self.sweep_dir, Path)
                    else Path(self.uri[len("sqlite:///") :]).parent
                )
                artifacts = str(folder / "mlflow-artifacts")
            try:
                return client.create_experiment(name, artifact_location=artifacts)
            except Exception:
                exp = client.get_experiment_by_name(name)  # created concurrently by someone else
                if exp is None:
                    raise
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        return exp.experiment_id

    def _search(self, tags: Mapping[str, str]) -> list:
        """Active runs of the experiment whose tags equal ``tags``, oldest first."""
        from mlflow.entities import ViewType

        clauses = [f"tags.`{k}` = '{v}'" for k, v in tags.items() if _quote_ok(v)]
        client = self._get_client()
        runs, token = [], None
        while True:
            page = client.search_runs(
                [self.experiment_id],
                filter_string=" AND ".join(clauses),
                run_view_type=ViewType.ACTIVE_ONLY,
                max_results=1000,
                order_by=["attributes.start_time ASC"],
                page_token=token,
            )
            runs.extend(r for r in page if all(r.data.tags.get(k) == v for k, v in tags.items()))
            token = page.token
            if not token:
                break
        runs.sort(key=lambda r: (r.info.start_time or 0, r.info.run_id))
        return runs

    def _children(self, trial_id: str | None = None) -> list:
        want = {TAG_PARENT: self.parent_run_id}
        if trial_id is not None:
            want[TAG_TRIAL] = trial_id
        return self._search(want)

    def _parent_tags(self) -> dict[str, str]:
        import rsng

        tags = {
            TAG_SWEEP: self.sweep_name,
            TAG_KIND: "parent",
            "rsng.sweep_dir": str(self.sweep_dir.resolve()),
            "rsng.rsng_version": rsng.__version__,
        }
        try:
            from importlib.metadata import version

            tags["rsng.mlflow_version"] = version("mlflow")
        except Exception:  # noqa: BLE001 - only informative
            pass
        for k, v in self.tags.items():
            if not _is_null(v):
                tags[_key(k)] = str(_scalar(v))[:_MAX_TAG_VAL]
        sha = self.tags.get("git_sha") or self.tags.get("rsng.git_sha")
        if sha and "mlflow.source.git.commit" not in tags:
            tags["mlflow.source.git.commit"] = str(sha)
        return tags

    def _get_or_create_parent(self, client) -> str:
        from mlflow.entities import Param, RunTag

        want = {TAG_SWEEP: self.sweep_name, TAG_KIND: "parent"}
        found = self._search(want)
        params = {_key(k): _param_str(v) for k, v in _flatten(self.grid, "grid")}
        params.update({_key(k): _param_str(v) for k, v in _flatten(self.params, "")})
        tags = self._parent_tags()
        if found:
            self._known = None  # a parent of an earlier run may have children: existing_trials() reads them
            run = found[0]
            run_id = run.info.run_id
            if run.info.status != "RUNNING":
                client.update_run(run_id, status="RUNNING")
            params = {k: v for k, v in params.items() if k not in run.data.params}  # params are immutable
        else:
            run = client.create_run(self.experiment_id, run_name=self.sweep_name, tags=tags)
            run_id = run.info.run_id
            self._known = set()
            # two creators racing: keep the oldest parent, drop ours
            found = self._search(want)
            if found and found[0].info.run_id != run_id:
                self._known = None
                client.delete_run(run_id)
                run_id = found[0].info.run_id
                params = {k: v for k, v in params.items() if k not in found[0].data.params}
                if found[0].info.status != "RUNNING":
                    client.update_run(run_id, status="RUNNING")
        tag_items = [RunTag(k, v) for k, v in tags.items()]
        param_items = [Param(k, v) for k, v in params.items()]
        for i in range(0, max(len(tag_items), len(param_items)), _MAX_PARAMS_TAGS_PER_BATCH):
            sl = slice(i, i + _MAX_PARAMS_TAGS_PER_BATCH)
            if tag_items[sl] or param_items[sl]:
                client.log_batch(run_id, params=param_items[sl], tags=tag_items[sl])
        return run_id

    # -- trajectories ------------------------------------------------------------------------------------
    def _log(self, row: Mapping[str, Any], steps, *, plot: bool = True) -> str:
        """``"created"``, ``"skipped"`` (already logged) or ``"failed"``."""
        t0 = time.perf_counter()
        with self._lock:
            try:
                if not self._ready("log_trajectory"):
                    return "failed"
                what = f"trial {row.get('trial_id')!r}" if isinstance(row, Mapping) else "a trajectory"
                out = self._attempt(
                    "log_trajectory", lambda: self._log_unguarded(row, steps, plot), default="failed", what=what
                )
                self.logged += out == "created"
                return out
            finally:
                self.log_seconds += time.perf_counter() - t0

    def _log_unguarded(self, row: Mapping[str, Any], steps, plot: bool = True) -> str:
        row = {k: _scalar(v) for k, v in dict(row).items()}
        trial_id = str(row["trial_id"])
        finished = _iso(row.get("finished_at"))
        client = self._get_client()
        keep = None
        # a trajectory this tracker knows has no child needs no search
        known_new = self.exclusive and self._known is not None and trial_id not in self._known
        for run in [] if known_new else self._children(trial_id):
            if keep is None and _up_to_date(run.info.status, run.data.tags.get(TAG_FINISHED), finished):
                keep = run
                continue
            # RUNNING/SCHEDULED (an interrupted sync), a run of an older attempt of a retried
            # trial, or a duplicate left by a concurrent writer
            client.delete_run(run.info.run_id)
        if keep is not None:
            return "skipped"
        run_id = self._create_child(client, row, trial_id, finished)
        if self._known is not None:
            self._known.add(trial_id)
        try:
            self._fill_child(client, run_id, row, steps, plot)
        except BaseException:
            try:  # leave no half-logged RUNNING child behind; the next sync recreates it
                client.delete_run(run_id)
            except Exception:  # noqa: BLE001
                pass
            raise
        return "created"

    def _create_child(self, client, row: dict, trial_id: str, finished: str) -> str:
        status = str(row.get("status", ""))
        tags = {
            TAG_PARENT: self.parent_run_id,
            TAG_TRIAL: trial_id,
            TAG_STATUS: status,
            TAG_KIND: "trajectory",
            TAG_SWEEP: self.sweep_name,
            TAG_FINISHED: finished,
        }
        for col in ("device", "git_sha", "diverged_step"):
            v = row.get(col)
            if not _is_null(v) and v != "":
                tags[f"rsng.{col}"] = str(v)[:_MAX_TAG_VAL]
        if tags.get("rsng.git_sha"):
            tags["mlflow.source.git.commit"] = tags["rsng.git_sha"]
        if status != "ok":
            msg = row.get("error_message")
            if _is_null(msg) or not str(msg).strip():
                msg = f"diverged at step {row.get('diverged_step')}" if status == "diverged" else f"status {status}"
            tags[TAG_ERROR] = str(msg)[:_MAX_TAG_VAL]
        name = f"{row.get('problem')}-{row.get('sampler')}-s{row.get('s')}-seed{row.get('seed')}"
        run = client.create_run(self.experiment_id, start_time=_ms(row.get("started_at")), tags=tags, run_name=name)
        return run.info.run_id

    def _fill_child(self, client, run_id: str, row: dict, steps, plot: bool = True) -> None:
        from mlflow.entities import Metric, Param

        params = [Param(k, _param_str(row.get(k))) for k in config_params() if k in row]
        t_end = _ms(row.get("finished_at")) or int(time.time() * 1000)
        t0 = _ms(row.get("started_at")) or t_end
        metrics = []
        for k in SUMMARY_METRICS:
            v = row.get(k)
            if _is_null(v):
                continue
            metrics.append(Metric(k, float(v), t_end, 0))

        full = self._series(row["trial_id"], steps)
        batch = []
        if full is not None and len(full):
            import numpy as np

            series = full.iloc[history_index(len(full))]
            step = series["step"].to_numpy(dtype=np.int64)
            wall = (
                series["wall_s_cumulative"].to_numpy(dtype=float)
                if "wall_s_cumulative" in series
                else np.zeros(len(series))
            )
            stamp = np.where(np.isfinite(wall), t0 + wall * 1000.0, t0).astype(np.int64)
            for name in STEP_METRICS:
                if name not in series:
                    continue
                vals = series[name].to_numpy(dtype=float)
                batch.extend(
                    Metric(name, float(v), int(ts), int(k)) for k, v, ts in zip(step, vals, stamp) if math.isfinite(v)
                )
        # params, summary metrics and the series in as few requests as MLflow's limits allow
        metrics += batch
        first = _MAX_METRICS_PER_BATCH
        client.log_batch(run_id, metrics=metrics[:first], params=params)
        for i in range(first, len(metrics), _MAX_METRICS_PER_BATCH):
            client.log_batch(run_id, metrics=metrics[i : i + _MAX_METRICS_PER_BATCH])
        if plot and full is not None and len(full):
            self._log_plot(client, run_id, row, full)
        run_status = {"ok": "FINISHED", "stopped": "KILLED"}.get(str(row.get("status")), "FAILED")
        client.set_terminated(run_id, status=run_status, end_time=t_end)

    @staticmethod
    def _series(trial_id: str, steps):
        if isinstance(steps, Mapping):
            import pandas as pd

            steps = pd.DataFrame(dict(steps))
        if steps is None or not len(steps) or "step" not in steps:
            return None
        if "trial_id" in steps:
            steps = steps[steps["trial_id"].astype(str) == trial_id]
        return steps.sort_values("step", kind="stable").drop_duplicates("step", keep="last")

    def _log_plot(self, client, run_id: str, row: dict, series) -> None:
        import numpy as np
        import pandas as pd

        from rsng.analysis.plots import plot_error_over_time

        columns = [c for c in ("rel_l2_t", "ls_residual") if c in series]
        if "t" not in series or not any(
            (np.isfinite(y) & (y > 0)).any() for y in (series[c].to_numpy(dtype=float) for c in columns)
        ):
            return
        tid = str(row.get("trial_id"))
        fig = plot_error_over_time(
            series.assign(trial_id=tid), [tid], trajectories=pd.DataFrame([{**row, "trial_id": tid}]), columns=columns
        )
        with tempfile.TemporaryDirectory(prefix="rsng-mlflow-") as tmp:
            path = Path(tmp) / ARTIFACT_NAME
            fig.savefig(path, format="png")
            client.log_artifact(run_id, str(path))


# ================================================================================================
# sync
# ================================================================================================
def _meta_tags(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Parent tags from ``sweep.json``: versions (top-level ``git_sha``/``*_version`` keys or a
    ``versions`` mapping, under their own names, as the sweep runner passes them), ``created_at``,
    and ``description`` as the run's description (``mlflow.note.content``)."""
    tags: dict[str, Any] = {}
    versions = meta.get("versions") if isinstance(meta.get("versions"), Mapping) else {}
    for k, v in [*meta.items(), *versions.items()]:
        if _is_null(v) or not isinstance(v, (str, int, float)) or isinstance(v, bool):
            continue
        if k == "description" and isinstance(v, str) and v.strip():
            tags["mlflow.note.content"] = v
        elif k == "git_sha" or k.endswith("_version"):
            tags[k] = v
        elif k == "created_at":
            tags["rsng.created_at"] = v
    return tags


def sync(
    sweep_dir: str | os.PathLike,
    uri: str | None = None,
    *,
    warn: Callable[[str], Any] = print,
    retry_interval_s: float = 30.0,
) -> SyncReport:
    """Log every trajectory of a sweep folder that MLflow lacks; end the parent run FINISHED.

    ``uri`` defaults to :func:`default_tracking_uri` (``sqlite:///<sweep_dir>/mlflow.db``). The
    parent run's name and params come from ``sweep.json`` (``name``, ``grid``) when present, else
    the folder name (``fixed`` → params ``fixed.*``; versions, ``created_at`` and ``description`` →
    tags). Idempotent: a second sync creates nothing. MLflow failures are warned about
    and counted in ``failed`` (never raised); a path that is not a sweep folder raises
    ``FileNotFoundError``/``ValueError``.
    """
    import rsng.results as results
    from rsng.results.fs import storage_path

    sweep_dir = storage_path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep folder {sweep_dir} does not exist")
    if not results.is_sweep_dir(sweep_dir):
        raise ValueError(
            f"{sweep_dir} is not a sweep folder (no sweep.json, trajectories/ or steps/); "
            "pass the folder of one sweep, not the storage root"
        )
    uri = validate_tracking_uri(uri) if uri is not None else default_tracking_uri(sweep_dir)
    res = results.load(sweep_dir, with_steps=False)
    meta = res.meta or {}
    name = meta.get("name") if isinstance(meta.get("name"), str) and meta.get("name") else sweep_dir.resolve().name
    grid = meta.get("grid") if isinstance(meta.get("grid"), Mapping) else None
    fixed = {"fixed": meta["fixed"]} if isinstance(meta.get("fixed"), Mapping) and meta["fixed"] else None
    tracker = Tracker(
        uri,
        name,
        sweep_dir,
        grid=grid,
        params=fixed,
        tags=_meta_tags(meta),
        warn=warn,
        retry_interval_s=retry_interval_s,
    )
    rows = res.trajectories.sort_values(["started_at", "trial_id"], kind="stable").to_dict("records")
    if not tracker.start():
        return SyncReport(failed=len(rows))
    known = tracker.existing_trials()
    created = skipped = failed = 0
    todo = []
    for row in rows:
        have = known.get(str(row["trial_id"]), [])
        if len(have) == 1 and _up_to_date(*have[0], _iso(row["finished_at"])):
            skipped += 1
        else:
            todo.append(row)
    for i in range(0, len(todo), _SYNC_BATCH):
        batch = todo[i : i + _SYNC_BATCH]
        by_trial = {}
        if tracker.available:  # one read of the steps per batch (a part file holds a work unit's trajectories)
            steps = results.load_steps(sweep_dir, trial_ids=[str(r["trial_id"]) for r in batch])
            by_trial = dict(iter(steps.groupby("trial_id", observed=True, sort=False))) if len(steps) else {}
        for row in batch:
            outcome = tracker._log(row, by_trial.get(str(row["trial_id"])))
            if outcome == "created":
                created += 1
            elif outcome == "skipped":
                skipped += 1
            else:
                failed += 1
    tracker.finish("FINISHED")
    return SyncReport(created=created, skipped=skipped, failed=failed)
