"""Running a sweep: Ray Tune (embedded single-node or an existing cluster) or serially in-process.

The driver validates everything first — the grid (every point resolved), the storage (a local folder,
or an ``s3://``/``gs://`` URI: bucket, credentials and a probe write), the MLflow URI — and only then
starts Ray. Results are written by the trials themselves to ``<storage>/<sweep>/`` (Parquet), and Ray
Tune keeps its experiment state on the same store (``<storage>/<sweep>/_ray``), so Parquet is complete even when MLflow is down, and ``rsng
mlflow-sync`` can fill MLflow in later. ``--resume`` skips trajectories that already have a row and
continues unfinished ones from their last saved state.

Scale (measured in benchmarks/scale.py, figures in benchmarks/README.md): a Tune trial is a *work
unit* of many trajectories run one after another in one worker (``--unit-size``; by default up to
32, at least 8 units per concurrent slot), so Tune's per-trial cost is paid per unit. Each finished
trajectory reaches the driver as a Tune result carrying its row and a thinned per-step series; the
driver hands it to one background thread (:class:`_MlflowLogger`) that logs the child run, so the
loop that schedules trials never waits for MLflow, and no file is read back. Tune writes no
checkpoints (the trials' state files are what a retry and ``--resume`` continue from), its
automatic CSV/TensorBoard loggers are off (its JSON logger is kept: a trial's pid and results), a
result's records are emptied once the driver has taken them (:func:`drop_records`: otherwise Tune's
trials, their ``result.json`` and the data frames ``Tuner.fit`` reads back from those at the end hold
every trajectory once more in the driver), and a trial's config names its work unit only (the units
reach the workers once, through Ray's object store).
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsng.service.spec import SweepSpec, SweepSpecError, TrialSpec
from rsng.service.work import Extensions, Member, WorkItem, WorkUnit

__all__ = [
    "SweepOptions",
    "SweepInterrupted",
    "run_sweep",
    "prepare",
    "init_ray",
    "git_sha",
    "summary_table",
    "peak_rss_mib",
    "member_ids",
]


class SweepInterrupted(KeyboardInterrupt):
    """The sweep stopped before every trajectory had its row (Ctrl+C / SIGINT: Ray Tune stops the
    experiment gracefully and returns instead of raising, so the driver checks the rows itself)."""


@dataclass
class SweepOptions:
    """How and where a sweep runs (the common options of the sweep scripts)."""

    storage: str = "results"  # a local folder or s3://BUCKET/PREFIX, gs://BUCKET/PREFIX
    mlflow_uri: str | None = None  # default: sqlite inside the sweep folder (a local mirror folder for URIs)
    resume: bool = False
    max_concurrent: int | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    report_steps: int = 200
    max_failures: int = 2
    confirm_large: bool = False
    serial: bool = False  # in-process, one after another (debugging, benchmarks)
    cache_dir: str | None = None
    ray_address: str | None = None  # None: attach to a running cluster if any, else embedded
    seeds_per_trial: int = 1  # sketch seeds of one configuration marched together (TrajectoryBatch)
    unit_size: int | None = None  # trajectories per Tune trial, run one after another (None: automatic)
    search: Any = None  # a rsng.service.search.SearchOptions: search the grid's lattice instead of running it all
    log: Callable[[str], None] = field(default=lambda m: print(m, flush=True))


def git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


@dataclass
class Prepared:
    spec: SweepSpec
    trials: list[TrialSpec]
    sweep_dir: Any  # Path, or rsng.results.ObjectPath on an object store
    mlflow_uri: str
    todo: list[TrialSpec]
    done_ids: set[str]
    search: dict[str, Any] | None = None  # a search's summary per problem (run_search)


def prepare(spec: SweepSpec, opts: SweepOptions) -> Prepared:
    """Validate the sweep and its options; nothing is started or written except the storage check."""
    from rsng.results import ObjectPath, ResultsError, check_writable, load, storage_path
    from rsng.tracking import default_tracking_uri, validate_tracking_uri

    trials = spec.expand(confirm_large=opts.confirm_large)
    if not (math.isfinite(opts.cpus_per_trial) and opts.cpus_per_trial > 0):
        raise SweepSpecError("--cpus-per-trial", f"must be a finite number > 0, got {opts.cpus_per_trial}")
    if not (math.isfinite(opts.gpus_per_trial) and opts.gpus_per_trial >= 0):
        raise SweepSpecError("--gpus-per-trial", f"must be a finite number ≥ 0, got {opts.gpus_per_trial}")
    if opts.gpus_per_trial > 1 and opts.gpus_per_trial != int(opts.gpus_per_trial):
        raise SweepSpecError("--gpus-per-trial", f"above 1 must be a whole number, got {opts.gpus_per_trial}")
    if opts.max_concurrent is not None and opts.max_concurrent < 1:
        raise SweepSpecError("--max-concurrent", f"must be ≥ 1, got {opts.max_concurrent}")
    if isinstance(opts.seeds_per_trial, bool) or not isinstance(opts.seeds_per_trial, int) or opts.seeds_per_trial < 1:
        raise SweepSpecError("--seeds-per-trial", f"must be an integer ≥ 1, got {opts.seeds_per_trial!r}")
    if opts.unit_size is not None and (
        isinstance(opts.unit_size, bool) or not isinstance(opts.unit_size, int) or opts.unit_size < 1
    ):
        raise SweepSpecError("--unit-size", f"must be an integer ≥ 1, got {opts.unit_size!r}")
    if opts.report_steps < 1:
        raise SweepSpecError("--report-steps", f"must be ≥ 1, got {opts.report_steps}")
    if opts.cache_dir is not None:
        bad = _not_a_folder(Path(opts.cache_dir))
        if bad is not None:
            raise SweepSpecError("--cache-dir", f"{bad} exists and is not a folder")
    if opts.search is not None:  # the search's options and lattice (docs/search.md)
        from rsng.service.search import plan_search

        if opts.serial:
            raise SweepSpecError("--serial", "cannot run a search (--search needs Ray Tune)")
        plan_search(spec, opts.search, confirm_large=True)
    if not opts.serial:
        _check_ray_address(opts.ray_address)
    if not str(opts.storage).strip():
        raise SweepSpecError("--storage", "is empty; give the results folder")
    try:
        storage = storage_path(str(opts.storage).strip())
    except ValueError as e:
        raise SweepSpecError("--storage", str(e)) from None
    remote = isinstance(storage, ObjectPath)
    sweep_dir = storage / spec.name if remote else storage.resolve() / spec.name
    try:
        uri = validate_tracking_uri(opts.mlflow_uri) if opts.mlflow_uri is not None else default_tracking_uri(sweep_dir)
    except ValueError as e:
        raise SweepSpecError("--mlflow-uri", str(e).split(": ", 1)[-1]) from None
    try:  # last: it creates the storage folder
        check_writable(storage)
    except ResultsError as e:
        raise SweepSpecError("--storage", str(e)) from None
    done: set[str] = set()
    if sweep_dir.exists():
        existing = load(sweep_dir, with_steps=False).trajectories
        done = set(existing["trial_id"].astype(str)) if len(existing) else set()
        if done and not opts.resume:
            raise SweepSpecError(
                "--name",
                f"sweep folder {sweep_dir} already holds {len(done)} trajectories; "
                "pass --resume to continue it or choose another --name",
            )
    todo = [t for t in trials if t.trial_id not in done]
    return Prepared(spec, trials, sweep_dir, uri, todo, done)


def _not_a_folder(path: Path) -> Path | None:
    """The first of ``path`` and its ancestors that exists and is not a folder (``None`` if there is none)."""
    for p in (path, *path.parents):
        if p.exists():
            return None if p.is_dir() else p
    return None


def _check_ray_address(address: str | None) -> None:
    """Refuse a malformed Ray address, or one where nothing listens (``ray.init`` would retry for minutes)."""
    import socket

    key = "--ray-address" if address else "RAY_ADDRESS"
    address = address or os.environ.get("RAY_ADDRESS")
    if not address or address in ("local", "auto"):
        return
    hostport = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = hostport.rstrip("/").rpartition(":")
    if (
        address.split("://", 1)[0] not in (address, "ray")
        or not sep
        or not host
        or not port.isdigit()
        or not 0 < int(port) < 65536
    ):
        raise SweepSpecError(key, f"expected 'local', 'auto', HOST:PORT or ray://HOST:PORT, got {address!r}")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5):
            pass
    except OSError as e:
        raise SweepSpecError(key, f"no Ray cluster answers at {address} ({e.strerror or e})") from None


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux/macOS ``getrusage``)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def init_ray(address: str | None, num_cpus: int | None = None, log=print) -> str:
    """Attach to a running Ray cluster (``ray submit`` / ``ray job submit`` / RAY_ADDRESS) or start an
    embedded single-node one with token authentication on (:func:`_embedded_token_auth`) and the CPUs
    this process may use.

    ``address="local"`` always starts the embedded one (tests, or a machine shared with other Ray users).
    """
    import ray

    if ray.is_initialized():
        return "already initialised"
    user_auth_mode = os.environ.get("RAY_AUTH_MODE")  # before ray.init("auto") may set it
    # "auto" finds a running cluster on this node by its processes (ray submit runs us on the head
    # node); if there is none we start an embedded one.
    address = address or os.environ.get("RAY_ADDRESS") or "auto"
    if address != "local":
        try:
            ray.init(address=address, log_to_driver=False)
            return f"attached to the Ray cluster at {address}"
        except (ConnectionError, RuntimeError):
            if address != "auto":
                raise
            log("no running Ray cluster on this node: starting an embedded single-node Ray")
    auth = _embedded_token_auth(user_auth_mode)
    from rsng.core.threads import available_cpus

    ray.init(num_cpus=num_cpus or available_cpus(), include_dashboard=False, log_to_driver=False)
    _private_token_file()
    return f"embedded single-node Ray with {int(ray.cluster_resources().get('CPU', 0))} CPUs, {auth}"


def _embedded_token_auth(user_auth_mode: str | None) -> str:
    """Turn Ray's token authentication on for the embedded Ray unless the user set ``RAY_AUTH_MODE``
    (``disabled`` is honoured). Ray's ports listen on every interface and cannot be bound to loopback
    (SECURITY.md), so the token is what keeps other hosts and users out. A user's own token
    (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``) is used; otherwise a fresh
    random one for this run, kept only in the environment of this process and the Ray processes it
    starts (``/proc/<pid>/environ`` is readable by its owner only), so nothing is written to disk.
    """
    if user_auth_mode is not None and user_auth_mode.lower() != "token":
        return f"token authentication off (RAY_AUTH_MODE={user_auth_mode})"
    os.environ["RAY_AUTH_MODE"] = "token"
    source = "a per-run token"
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        source = "your token"
    elif Path("~/.ray/auth_token").expanduser().is_file():
        source = "~/.ray/auth_token"
    else:
        import secrets

        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    try:  # Ray caches its configuration and token per process: make it read the environment again
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
    except (ImportError, AttributeError):  # pragma: no cover - another Ray version
        pass
    return f"token authentication on ({source})"


def _private_token_file() -> None:
    """Ray writes ``~/.ray/auth_token`` readable by everyone (0644) when it generates one: make it 0600."""
    token = Path("~/.ray/auth_token").expanduser()
    try:
        if token.is_file() and token.stat().st_uid == os.getuid() and token.stat().st_mode & 0o077:
            token.chmod(0o600)
    except OSError:  # pragma: no cover - not ours to change
        pass


def _versions() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    from rsng import __version__

    out: dict[str, Any] = {"rsng_version": __version__, "git_sha": git_sha()}
    for pkg in ("jax", "ray", "mlflow", "pyarrow"):
        try:
            out[f"{pkg}_version"] = version(pkg)
        except PackageNotFoundError:
            out[f"{pkg}_version"] = None
    return out


def _trial_payload(t: TrialSpec, prep: Prepared, opts: SweepOptions, versions: dict) -> WorkItem:
    return _work_item(t.trial_id, [t], prep, opts, versions)


def _work_item(trial_id: str, trials: list[TrialSpec], prep: Prepared, opts: SweepOptions, versions: dict) -> WorkItem:
    return WorkItem(
        trial_id=trial_id,
        members=tuple(Member(t.trial_id, t.config) for t in trials),
        sweep=prep.spec.name,
        sweep_dir=str(prep.sweep_dir),
        report_steps=opts.report_steps,
        cpus=opts.cpus_per_trial,
        gpus=opts.gpus_per_trial,
        cache_dir=opts.cache_dir,
        versions=versions,
    )


def _payloads(prep: Prepared, opts: SweepOptions, versions: dict) -> list[WorkItem]:
    """One work item per trajectory, or up to ``seeds_per_trial`` trajectories that differ only in their
    seed, marched together by :class:`rsng.core.integrate.TrajectoryBatch`."""
    import dataclasses

    k = opts.seeds_per_trial
    if k <= 1:
        return [_trial_payload(t, prep, opts, versions) for t in prep.todo]
    groups: dict[Any, list[TrialSpec]] = {}
    for t in prep.todo:  # grid order is kept within and across groups
        groups.setdefault(dataclasses.replace(t.config, seed=0), []).append(t)
    out = []
    for members in groups.values():
        for i in range(0, len(members), k):
            part = members[i : i + k]
            tid = f"{part[0].trial_id}-batch{len(part)}" if len(part) > 1 else part[0].trial_id
            out.append(_work_item(tid, part, prep, opts, versions))
    return out


def member_ids(payload: WorkUnit | WorkItem) -> list[str]:
    """The trajectory ids a work unit or item computes."""
    return payload.ids


#: Automatic work units: at most this many trajectories, and at least this many units per slot.
UNIT_MAX = 32
UNITS_PER_SLOT = 8


def _slots(opts: SweepOptions) -> int:
    """Trials that can run at once: --max-concurrent, else the cluster's CPUs (GPUs) per trial."""
    import ray

    res = ray.cluster_resources()
    if opts.gpus_per_trial > 0:
        n = res.get("GPU", 0) / opts.gpus_per_trial
    else:
        n = res.get("CPU", 1) / opts.cpus_per_trial
    n = max(1, int(n))
    return min(n, opts.max_concurrent) if opts.max_concurrent else n


def _units(items: list[WorkItem], opts: SweepOptions, slots: int, history_points: int) -> list[WorkUnit]:
    """Work items grouped into Tune trials of about ``unit_size`` trajectories each, in grid order."""
    n = sum(len(it.ids) for it in items)
    size = opts.unit_size or max(1, min(UNIT_MAX, math.ceil(n / (UNITS_PER_SLOT * slots))))
    units, current, count = [], [], 0
    for it in items:
        current.append(it)
        count += len(it.ids)
        if count >= size:
            units.append(current)
            current, count = [], 0
    if current:
        units.append(current)
    out = []
    for work in units:
        n_ids = sum(len(w.ids) for w in work)
        # a single trajectory keeps its own id as the trial's
        tid = work[0].trial_id if n_ids == 1 else f"{work[0].trial_id}-unit{n_ids}"
        out.append(WorkUnit(tid, tuple(work), history_points))
    return out


def run_sweep(spec: SweepSpec, opts: SweepOptions) -> Prepared:
    """Run every trajectory of ``spec`` not yet in Parquet; returns the prepared sweep."""
    from rsng.results import safe_name, write_sweep_meta
    from rsng.tracking import HISTORY_POINTS, Tracker

    log = opts.log
    prep = prepare(spec, opts)
    ahead = None
    if prep.todo and not opts.serial:
        # the reference solutions the trials need, computed here while Ray starts (≈ 3 s for a fast
        # allen_cahn one, otherwise paid by the first trials on every worker); a trial that gets there
        # first computes it and the others wait for its file (reference.py locks the cache entry)
        ahead = _Background(lambda: _references_ahead(prep, opts))
        try:
            log(init_ray(opts.ray_address, log=log))
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise SweepSpecError("--ray-address", f"cannot start or attach to Ray: {e}") from None
    versions = _versions()
    prep.sweep_dir.mkdir(parents=True, exist_ok=True)
    write_sweep_meta(
        prep.sweep_dir,
        {
            **spec.to_dict(),
            "versions": versions,
            "n_trajectories": len(prep.trials),
            "created_at": _dt.datetime.now(_dt.UTC).isoformat(),
        },
    )
    log(
        f"sweep {spec.name}: {len(prep.trials)} trajectories ({len(prep.done_ids)} already done, "
        f"{len(prep.todo)} to run) → {prep.sweep_dir}"
    )
    tracker = Tracker(
        prep.mlflow_uri,
        spec.name,
        str(prep.sweep_dir),
        grid=dict(spec.grid),
        params={"fixed": dict(spec.fixed)},
        tags={k: str(v) for k, v in versions.items() if v},
        warn=log,
        exclusive=True,
    )
    # MLflow's start (import, store schema, parent run: ≈ 3 s with a new sqlite store) and the
    # back-fill of a resumed sweep run in the logger's thread, overlapping the trials' start-up
    logger = _MlflowLogger(tracker, prep, log)

    status = "FINISHED"
    try:
        if not prep.todo:
            pass
        elif opts.serial:
            from rsng.service.trial import log_record, run_trajectory

            for payload in _payloads(prep, opts, versions):
                run_trajectory(
                    payload, on_row=lambda row, series: logger.put([log_record(row, series, HISTORY_POINTS)])
                )
        elif opts.search is not None:  # raises SweepInterrupted itself; not every trajectory is run
            from rsng.service.search import run_search

            prep.search = run_search(prep, opts, versions, logger.put, HISTORY_POINTS)
        else:
            _run_tune(prep, opts, versions, logger.put, HISTORY_POINTS)
        missing = []
        if opts.search is None:
            finished = _finished(prep.sweep_dir)
            missing = [t.trial_id for t in prep.todo if safe_name(t.trial_id) not in finished]
        if missing:  # Tune returns normally after a SIGINT
            raise SweepInterrupted(f"{len(missing)} of {len(prep.trials)} trajectories unfinished")
    except KeyboardInterrupt:
        status = "KILLED"
        finished = _finished(prep.sweep_dir)
        n_done = sum(safe_name(t.trial_id) in finished for t in prep.trials)
        log(
            f"interrupted: {n_done} of {len(prep.trials)} trajectories are finished and saved; unfinished ones "
            "continue from their last saved state when you rerun the same command with --resume"
        )
        raise
    finally:
        # every row on disk reaches MLflow before the parent run ends (also when interrupted)
        finished = _finished(prep.sweep_dir)
        logger.close([t.trial_id for t in prep.todo if safe_name(t.trial_id) in finished])
        tracker.finish(status)
        if tracker.logged:
            log(
                f"MLflow: {tracker.logged} child runs logged in {tracker.log_seconds:.1f} s "
                f"({1000 * tracker.log_seconds / tracker.logged:.0f} ms each, in the logger thread)"
            )
        if ahead is not None and status != "KILLED":  # (an interrupted driver does not wait for it)
            try:
                ahead.join()
            except Exception as e:  # the trials computed their own; nothing is lost
                log(f"warning: computing the reference solutions ahead of the trials failed: {e}")
    return prep


class _MlflowLogger:
    """The driver's MLflow sink: one background thread that starts the tracker, back-fills a resumed
    sweep, then, for each finished trajectory handed over by :meth:`put`, prints its progress line and
    logs it (from its record, or from Parquet when the record has no row) — once per trial id. The
    Tune loop only queues (a JSON text or a list of records), so it never waits for MLflow or for the
    decoding. :meth:`close` logs what is left and stops the thread."""

    def __init__(self, tracker, prep: Prepared, log: Callable[[str], None]):
        import queue
        import threading

        self.tracker, self.prep, self.log = tracker, prep, log
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._seen: set[str] = set()
        self._n = len(prep.done_ids)
        self._thread = threading.Thread(target=self._loop, name="rsng-mlflow", daemon=True)
        self._thread.start()

    def put(self, records: str | list[dict[str, Any]]) -> None:
        """Queue finished trajectories: a unit's result text (:data:`rsng.service.trial.RESULT_KEY`) or
        records (``{"row", "series"}``, or ``{"trial_id"}`` for a row to read from Parquet)."""
        self._queue.put(records)

    def close(self, have_rows: list[str]) -> None:
        """Queue the trajectories with a row that were never handed over (a result lost with a worker
        or an interrupted trial), wait until everything queued is logged, stop the thread."""
        self._queue.put(("rows on disk", have_rows))
        self._queue.put(None)
        self._thread.join()

    def _loop(self) -> None:
        from rsng.service.trial import decode_records

        tracker, prep = self.tracker, self.prep
        tracker.start()
        if prep.done_ids and tracker.available:  # rows written before an interruption may not have reached MLflow
            terminal = {
                tid
                for tid, runs in tracker.existing_trials().items()
                if any(status in ("FINISHED", "FAILED", "KILLED") for status, _ in runs)
            }
            missing = prep.done_ids - terminal  # incl. a child left RUNNING by a driver killed mid-log
            if missing:
                _log_finished(tracker, prep.sweep_dir, missing)
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, tuple):  # close(): rows on disk never reported
                records = [{"trial_id": tid} for tid in item[1] if tid not in self._seen]
            else:
                records = decode_records(item) if isinstance(item, str) else item
            from_files: set[str] = set()
            for rec in records:
                self._one(rec, from_files)
            if from_files:  # one read of the sweep's files for all of them
                try:
                    _log_finished(self.tracker, self.prep.sweep_dir, from_files, log=self.log)
                except Exception as e:  # noqa: BLE001 - the tracker fails soft; this guards the thread itself
                    self.log(
                        f"could not log {len(from_files)} trajectories to MLflow: {e}; "
                        f"run `rsng mlflow-sync {self.prep.sweep_dir}` later"
                    )

    def _one(self, rec: dict[str, Any], from_files: set[str]) -> None:
        """Log one record, or add its trial id to ``from_files`` (a record without a row: read from Parquet)."""
        row = rec.get("row")
        tid = row["trial_id"] if row is not None else rec["trial_id"]
        if tid in self._seen:  # reported twice (Tune repeats a trial's last result when it ends)
            return
        self._seen.add(tid)
        self._n += 1
        total = len(self.prep.trials)
        if row is None:
            self.log(f"[{self._n}/{total}] {tid}: row read from Parquet")
            from_files.add(tid)
            return
        try:
            err = row.get("rel_l2")
            err_s = "n/a" if err is None or err != err else f"{err:.2e}"
            self.log(
                f"[{self._n}/{total}] {row['problem']} {row['sampler']} s={row['s']} seed={row['seed']}: "
                f"{row['status']}, rel_l2={err_s}, {row['wall_s']:.1f} s"
            )
            self.tracker.log_trajectory(row, rec.get("series"), plot=False)
        except Exception as e:  # noqa: BLE001 - the tracker fails soft; this guards the thread itself
            self.log(f"could not log {tid} to MLflow: {e}; run `rsng mlflow-sync {self.prep.sweep_dir}` later")


def _references_ahead(prep: Prepared, opts: SweepOptions) -> None:
    """Cache the reference of every distinct (problem, grid, stored times) among the trials to run."""
    from rsng.core.reference import run_reference

    seen = set()
    for t in prep.todo:
        c = t.config
        key = (c.problem, c.n, c.steps, c.save_every, c.dt)
        if key not in seen:
            seen.add(key)
            run_reference(c, opts.cache_dir)


class _Background:
    """Run ``fn`` in a thread now; :meth:`join` waits for it and re-raises its exception (once)."""

    def __init__(self, fn: Callable[[], Any]):
        import threading

        self._error: BaseException | None = None

        def target() -> None:
            try:
                fn()
            except BaseException as e:  # handed to the caller of join()
                self._error = e

        self._thread = threading.Thread(target=target, name="rsng-background", daemon=True)
        self._thread.start()

    def join(self) -> None:
        self._thread.join()
        if self._error is not None:
            err, self._error = self._error, None
            raise err


def _finished(sweep_dir) -> set[str]:
    """The file names (``safe_name``) of the trajectories with a row, own file or part file."""
    from rsng.results import finished_names

    return finished_names(sweep_dir)


def _log_finished(tracker, sweep_dir, ids: set[str], log=None) -> None:
    """Log the given trajectories to MLflow from their Parquet rows and steps (a back-fill: a resumed
    sweep, or a row whose record did not reach the driver), reading the sweep's files once."""
    from rsng.results import load_rows, load_steps

    rows = load_rows(sweep_dir, ids)
    found = set(rows["trial_id"].astype(str))
    for trial_id in sorted(set(ids) - found):
        if log:
            log(f"could not read the row of {trial_id}: no readable row file")
    if rows.empty:
        return
    steps = load_steps(sweep_dir, found)
    by_trial = dict(iter(steps.groupby("trial_id", observed=True, sort=False))) if len(steps) else {}
    for row in rows.to_dict("records"):
        tracker.log_trajectory(row, by_trial.get(row["trial_id"]), plot=False)


#: Ray Tune settings for sweeps of many trials (``os.environ.setdefault``: a value already set wins):
#: no automatic CSV/TensorBoard logger callbacks (the JSON one is added explicitly: Tune's own record
#: of each trial), and the classic console output, which ``verbose=0`` silences.
TUNE_ENV_DEFAULTS = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "RAY_AIR_NEW_OUTPUT": "0"}


def _run_tune(
    prep: Prepared,
    opts: SweepOptions,
    versions: dict,
    on_records: Callable[[str | list[dict[str, Any]]], None],
    history_points: int,
) -> None:
    for k, v in TUNE_ENV_DEFAULTS.items():
        os.environ.setdefault(k, v)
    from ray import tune

    from rsng.service.trial import tune_trainable

    init_ray(opts.ray_address, log=opts.log)

    from ray.tune.logger import JsonLoggerCallback

    units = _units(_payloads(prep, opts, versions), opts, _slots(opts), history_points)
    sink = _make_sink(on_records, opts.max_failures, units)
    resources = {"cpu": opts.cpus_per_trial, "gpu": opts.gpus_per_trial}
    # the units travel once through Ray's object store; a trial's config (kept by Tune in its
    # experiment state and in every result) names its unit only
    extensions = _put_extensions()  # held here until the trials are done
    trainable = tune.with_resources(tune.with_parameters(tune_trainable, units=units, extensions=extensions), resources)
    if isinstance(prep.sweep_dir, Path):
        storage = {"storage_path": str(prep.sweep_dir / "_ray")}
    else:  # Tune's experiment state on the same object store
        storage = {"storage_path": (prep.sweep_dir / "_ray").path, "storage_filesystem": prep.sweep_dir.fs}
    # reuse_actors: a trial's process keeps JAX's compiled chunks (integrate.py, _COMPILED) for the next
    # trial. Tune then also gives a trial whose new actor is still starting a finished trial's actor,
    # so trials much shorter than a process start may all run on the nodes that started first
    # (tests/cluster/test_multinode.py).
    tuner = tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search([{"trial_id": u.trial_id, "unit": i} for i, u in enumerate(units)])},
        tune_config=tune.TuneConfig(
            max_concurrent_trials=opts.max_concurrent, reuse_actors=True, trial_dirname_creator=_trial_dirname
        ),
        run_config=tune.RunConfig(
            name=f"{prep.spec.name}-{int(time.time())}",
            **storage,
            failure_config=tune.FailureConfig(max_failures=opts.max_failures),
            callbacks=[sink, JsonLoggerCallback()],  # result.json per trial: its pid and results (records emptied)
            verbose=0,
            # no Tune checkpoints: a retried unit resumes from the trajectories' own state files
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=0, checkpoint_at_end=False),
        ),
    )
    tuner.fit()


def _put_extensions() -> list | None:
    """The runtime registrations (:class:`rsng.service.work.Extensions`) in Ray's object store, as
    ``[ObjectRef]`` (a trial fetches them after sizing its threads: a sampler class imports JAX), or
    ``None`` when there are none. Objects defined outside ``rsng`` are pickled by value: the workers
    need not be able to import the test, notebook or module that registered them."""
    import sys

    import ray
    from ray import cloudpickle

    ext = Extensions.current()
    if not ext:
        return None
    modules = [sys.modules[m] for m in sorted(ext.modules()) if m in sys.modules and m != "__main__"]
    for m in modules:
        cloudpickle.register_pickle_by_value(m)
    try:
        return [ray.put(ext)]
    finally:
        for m in modules:
            cloudpickle.unregister_pickle_by_value(m)


def _trial_dirname(trial) -> str:
    """Tune's trial folder, ``<trainable>_<trial id>`` (the default name also spells out the config)."""
    return f"{trial.trainable_name}_{trial.trial_id}"


def _make_sink(on_records: Callable[[str | list[dict[str, Any]]], None], max_failures: int, units: list[WorkUnit]):
    from ray import tune

    from rsng.service.trial import RESULT_KEY

    class _Sink(tune.Callback):
        """Driver-side hooks: hand each finished trajectory to the driver (MLflow is logged in a
        thread of its own); record trials that died for good.

        Tune pickles its callbacks with the experiment state; the hooks hold live objects (the
        MLflow tracker), so the pickled copy is an inert one."""

        def __init__(self):
            self.on_records, self.max_failures = on_records, max_failures

        def __reduce__(self):
            return (_inert_callback, ())

        def on_trial_result(self, iteration, trials, trial, result, **info):
            text = result.get(RESULT_KEY)
            if text:
                self.on_records(text)  # decoded in the logger's thread
            drop_records(result, (RESULT_KEY,))

        def on_trial_error(self, iteration, trials, trial, **info):
            payload = units[trial.config["trial"]["unit"]]
            _record_lost_trial(payload, f"trial process failed {self.max_failures + 1} times: {trial.error_file or ''}")
            self.on_records([{"trial_id": tid} for tid in member_ids(payload)])

    return _Sink()


def drop_records(result: dict[str, Any], keys: tuple[str, ...]) -> None:
    """Empty a Tune result's record texts once the driver has taken them (a callback runs before Tune
    stores the result, and may change it in place). Otherwise each trial's last result keeps them in
    the driver's memory, Tune's JSON logger writes every one to the trial's ``result.json``, and
    ``Tuner.fit`` reads all those files back into data frames when the sweep ends: the rows and
    series of every trajectory once more in the driver (≈ 9 kB each; Parquet and MLflow have them)."""
    for k in keys:
        if result.get(k):
            result[k] = ""


def _inert_callback():
    from ray import tune

    return tune.Callback()


def _record_lost_trial(payload: WorkUnit | WorkItem, message: str) -> None:
    """A trial that never wrote its rows (its process died every time) is recorded as failed."""
    from rsng.results import finished_names, safe_name

    if isinstance(payload, WorkUnit):
        for item in payload.items:
            _record_lost_trial(item, message)
        return
    finished = finished_names(payload.sweep_dir)
    for m in payload.members:
        if safe_name(m.trial_id) in finished:
            continue
        _write_failed_row(payload, m, message)


def _write_failed_row(item: WorkItem, member: Member, message: str) -> None:
    from rsng.results import write_trajectory
    from rsng.results.rows import base_row, finish_row, now

    versions = item.versions
    row = base_row(
        item.sweep,
        member.trial_id,
        member.config.to_dict(),
        batch_size=len(item.members),
        rsng_version=versions.get("rsng_version", ""),
        git_sha=versions.get("git_sha"),
        jax_version=versions.get("jax_version") or "",
        device="unknown",
        started_at=now(),
    )
    write_trajectory(item.sweep_dir, finish_row(row, error=message, finished_at=row["started_at"]))


def summary_table(sweep_dir) -> str:
    """Accuracy-versus-cost table: mean error and time per (problem, sampler, s) over seeds."""
    from rsng.results import load

    df = load(sweep_dir, with_steps=False).trajectories
    if df.empty:
        return "(no trajectories)"
    g = df.groupby(["problem", "sampler", "s"], observed=True)
    out = g.agg(
        runs=("trial_id", "count"),
        ok=("status", lambda s: int((s == "ok").sum())),
        rel_l2_mean=("rel_l2", "mean"),
        rel_l2_min=("rel_l2", "min"),
        wall_s_mean=("wall_s", "mean"),
    )
    return out.to_string(float_format=lambda v: f"{v:.3g}")
