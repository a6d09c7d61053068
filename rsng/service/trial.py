"""Trajectories as a Ray Tune trial (or in-process, for the serial runner).

:func:`run_trajectory` runs one work item — a trajectory, or several seeds of one configuration
marched together: it sizes threads and picks the JAX platform *before* JAX loads, builds the
:class:`~rsng.core.integrate.Trajectory`, resumes from the newest state it can find (the sweep's own
state file, written after every chunk; on a Tune retry and on ``--resume`` alike), advances in
chunks — after each chunk it writes that chunk's per-step rows to Parquet and saves its state (the
last state holds the final θ) — and finally writes the trajectory row. An exception inside the solver is recorded as ``status =
failed``; a non-finite or blown-up state as ``diverged``; neither is retried.

A Tune trial (:func:`tune_trainable`) is a *work unit*: a list of work items run one after another in
the same worker process (so the compiled step is reused), skipping those that already have their
rows (a retried unit). After a chunk, at most once a second, and when it ends, it reports one result
carrying the rows finished since the last report and their downsampled per-step series
(:func:`log_record`), from which the driver logs MLflow without reading any file back. A unit of
several trajectories merges their files into part files when it ends (:func:`rsng.results.compact`). No Tune checkpoints are written: the state files are what
a retry resumes from.

State files (``<sweep>/_state/<trial_id>.npz``) are plain arrays (``allow_pickle=False``); the
chunk numbering is a function of the step, so a retried chunk overwrites its file. The sweep folder
may be on an object store (``s3://…``): then each state is one complete upload under its final name.
"""

from __future__ import annotations

import datetime as _dt
import os
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rsng.service.work import WorkItem, WorkUnit

__all__ = [
    "prepare_environment",
    "run_trajectory",
    "tune_trainable",
    "state_path",
    "work_ids",
    "log_record",
    "decode_records",
    "RESULT_KEY",
]

#: The Tune result key under which a work unit reports its finished trajectories (a JSON list).
RESULT_KEY = "rsng_finished"


_PREPARED: tuple | None = None


def prepare_environment(cpus: float, gpus: float, cache_dir: str | None = None) -> None:
    """Threads, platform, GPU memory share and compilation cache — must run before JAX is imported
    (in a reused worker the first trial's choice stays; a repeated call with the same arguments
    returns at once)."""
    global _PREPARED
    if _PREPARED == (cpus, gpus, cache_dir):
        return
    _PREPARED = (cpus, gpus, cache_dir)
    from rsng.core.threads import configure_threads

    configure_threads(max(1, int(cpus)), override=True)
    try:  # BLAS libraries that the worker process already loaded (Ray imports numpy) ignore the env
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)  # one BLAS thread, as configure_threads sets for libraries loaded later
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency of the service extra
        pass
    if gpus <= 0:
        # A CPU trial on a GPU node would otherwise see (and grab memory on) every GPU.
        os.environ["JAX_PLATFORMS"] = "cpu"
    else:
        os.environ.pop("JAX_PLATFORMS", None)
        os.environ.pop("XLA_PYTHON_CLIENT_MEM_FRACTION", None)  # deprecated twin; both set raises
        if gpus < 1:
            os.environ["XLA_CLIENT_MEM_FRACTION"] = f"{0.9 * gpus:.3f}"
        else:
            os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    from rsng.core.threads import enable_compilation_cache

    enable_compilation_cache(cache_dir)


def state_path(sweep_dir, trial_id: str):
    """``<sweep_dir>/_state/<trial_id>.npz``: a ``Path``, or an ``ObjectPath`` on an object store."""
    from rsng.results import safe_name, storage_path

    return storage_path(sweep_dir) / "_state" / f"{safe_name(trial_id)}.npz"


def _save_state(path, state: dict) -> None:
    import numpy as np

    from rsng.results import atomic_write

    # rewritten after every chunk and cheap to recompute (the previous chunk's state): not fsync-ed
    atomic_write(path, lambda f: np.savez(f, **state), durable=False)


def _load_state(path) -> dict | None:
    import io

    import numpy as np

    try:
        source = path if isinstance(path, Path) else io.BytesIO(path.read_bytes())
        with np.load(source, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError):
        return None


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def _join_states(states: dict[str, dict]) -> dict:
    """One checkpoint for a trial: a single trajectory's state as is; a batch's states prefixed by member."""
    import numpy as np

    if len(states) == 1:
        return next(iter(states.values()))
    out: dict = {"members": np.array(list(states))}
    for i, st in enumerate(states.values()):
        out.update({f"m{i}__{k}": v for k, v in st.items()})
    return out


def _split_states(st: dict | None, ids: list[str]) -> dict[str, dict]:
    if st is None:
        return {}
    if "members" not in st:
        return {ids[0]: st} if len(ids) == 1 else {}
    out: dict[str, dict] = {}
    for i, tid in enumerate(str(t) for t in st["members"]):
        prefix = f"m{i}__"
        out[tid] = {k[len(prefix) :]: v for k, v in st.items() if k.startswith(prefix)}
    return out


def run_trajectory(
    item: WorkItem,
    *,
    report: Callable[[dict, dict | None], None] | None = None,
    checkpoint_state: dict | None = None,
    on_row: Callable[[dict, dict | None], None] | None = None,
    durable: bool = True,
) -> list[dict[str, Any]]:
    """Run (or resume) the trajectories of one trial and write their Parquet records; returns their rows.

    ``item``: one trajectory, or several seeds of one configuration marched together
    (:class:`TrajectoryBatch`), with where and how to run them (:class:`rsng.service.work.WorkItem`); a search's item (:mod:`rsng.service.search`) sets ``chunk``
    (steps per compiled call) and ``stoppable`` (each chunk's report then carries the running error,
    the progress and the rows if stopped).
    ``report(metrics, state)`` is called after every chunk (Tune: ``ray.tune.report`` with a
    checkpoint of ``state``; the sweep service passes none). ``on_row(row, series)`` is called after
    each row is written, with the trajectory's whole per-step series (``None`` for a failed run).
    Each trajectory keeps its own state file, steps files and row (``durable=False``: written
    without fsync, for a work unit that merges them into part files when it ends).
    """
    prepare_environment(item.cpus, item.gpus, item.cache_dir)
    import jax

    from rsng import __version__
    from rsng.core.integrate import Trajectory, TrajectoryBatch
    from rsng.core.threads import cpu_kind
    from rsng.results import storage_path, write_steps, write_trajectory
    from rsng.results.rows import base_row, finish_row

    sweep_dir = storage_path(item.sweep_dir)
    ids = item.ids
    cfgs = [m.config for m in item.members]
    started = _now()
    versions = item.versions
    device = jax.devices()[0]
    # a CPU is named by its kind (float32 bits differ between kinds: rsng.core.threads.cpu_kind)
    kind = cpu_kind() if device.platform == "cpu" else getattr(device, "device_kind", "")
    device_name = f"{device.platform}:{kind}".rstrip(":")
    rows = [
        base_row(
            item.sweep,
            tid,
            c.to_dict(),
            batch_size=len(ids),
            rsng_version=__version__,
            git_sha=versions.get("git_sha"),
            jax_version=jax.__version__,
            device=device_name,
            started_at=started,
        )
        for tid, c in zip(ids, cfgs)
    ]
    ckpt = _split_states(checkpoint_state, ids)
    trajs: list = []
    chunk_arg = {"chunk": int(item.chunk)} if item.chunk else {}
    try:
        if len(cfgs) == 1:
            trajs = [Trajectory(cfgs[0], cache_dir=item.cache_dir, **chunk_arg)]
            advance = lambda n: [trajs[0].advance(n)]
            done = lambda: trajs[0].done
        else:
            batch = TrajectoryBatch(cfgs, cache_dir=item.cache_dir, **chunk_arg)
            trajs, advance, done = batch.members, batch.advance, lambda: batch.done
        for tid, traj in zip(ids, trajs):
            # the newest of the Tune checkpoint (a retry) and the sweep's state file (a --resume)
            spath = state_path(sweep_dir, tid)
            candidates = [
                st for st in (ckpt.get(tid), _load_state(spath) if spath.exists() else None) if st is not None
            ]
            state = max(candidates, key=lambda st: int(st["k"]), default=None)
            if state is not None:
                traj.load_state(state)
        chunk = trajs[0].chunk
        every = chunk * max(1, round(item.report_steps / chunk))
        for tid, traj in zip(ids, trajs):
            if traj.k == 0:
                write_steps(sweep_dir, tid, 0, traj.series([0]) | {"trial_id": tid}, durable=durable)
        while not done():
            recorded = advance(every)
            states = {}
            for tid, traj, rec in zip(ids, trajs, recorded):
                if rec:  # chunk file j holds the stored steps in ((j-1)·every, j·every]
                    chunk_no = (rec[0] - 1) // every + 1
                    write_steps(sweep_dir, tid, chunk_no, traj.series(rec) | {"trial_id": tid}, durable=durable)
                states[tid] = traj.state()
                _save_state(state_path(sweep_dir, tid), states[tid])
            if report is not None:
                lead = min(trajs, key=lambda t: t.k)
                res = lead.result()
                metrics = {
                    "step": lead.k,
                    "t": lead.k * lead.cfg.dt,
                    "rel_l2_t": float(res.rel_l2_t[-1]),
                    "ls_residual": float(res.ls_residual[-1]) if lead.k else float("nan"),
                    "wall_s": sum(t.wall_s for t in trajs),
                    "done": False,
                }
                if item.stoppable and not done():
                    metrics.update(_stoppable_metrics(rows, trajs, item.history_points))
                report(metrics, _join_states(states))
        results = [traj.result() for traj in trajs]
        rows = [finish_row(row, result=res) for row, res in zip(rows, results)]
    except Exception as e:  # recorded, not retried: a deterministic error would only repeat
        message = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"
        rows = [finish_row(row, error=message) for row in rows]
    for i, row in enumerate(rows):
        write_trajectory(sweep_dir, row, durable=durable)
        if on_row is not None:
            series = None
            if row["status"] != "failed" and i < len(trajs):
                series = trajs[i].result().series
            on_row(row, series)
    if report is not None:
        ok = [r for r in rows if r["rel_l2"] is not None]
        report(
            {
                "step": min(r["steps"] for r in rows),
                "rel_l2": sum(r["rel_l2"] for r in ok) / len(ok) if ok else float("nan"),
                "wall_s": sum(r["wall_s"] for r in rows),
                "status": ",".join(sorted({r["status"] for r in rows})),
                "done": True,
            },
            None,
        )
    return rows


def _stoppable_metrics(rows: list[dict], trajs: list, points: int) -> dict[str, Any]:
    """What a search's early stopping needs after a chunk (:mod:`rsng.service.search`): the members'
    mean running space-time error, the progress k/K, and the log records of the rows they would get
    if stopped now (status ``stopped``), which the driver writes when it stops the trial."""
    import json

    from rsng.results.rows import stopped_row

    records = []
    for row, traj in zip(rows, trajs):
        res = traj.result()
        out = stopped_row(row, res, "its running error was above the front at equal or lower cost")
        series = {k: getattr(res, k) for k in ("step", "t", "rel_l2_t", "ls_residual", "wall_s_cumulative")}
        records.append(log_record(out, series, points))
    return {
        "running_rel_l2": sum(t.running_rel_l2() for t in trajs) / len(trajs),
        "progress": min(t.k / t.cfg.steps for t in trajs),
        "if_stopped": json.dumps(records),
    }


def work_ids(payload: WorkUnit | WorkItem) -> list[str]:
    """The trajectory ids a work unit or item computes."""
    return payload.ids


def log_record(row: dict[str, Any], series: dict[str, Any] | None, points: int) -> dict[str, Any]:
    """A finished trajectory as the driver logs it: its row (JSON-safe: datetimes as ISO strings, numpy
    scalars as Python numbers) and its per-step series thinned to at most ``points`` stored steps
    (:func:`rsng.tracking.history_index`; Parquet keeps every step)."""
    import numpy as np

    from rsng.tracking import history_index

    out_row = {}
    for k, v in row.items():
        if isinstance(v, _dt.datetime):
            v = v.isoformat()
        elif isinstance(v, np.generic):
            v = v.item()
        out_row[k] = v
    rec: dict[str, Any] = {"row": out_row}
    if series is not None and len(series["step"]):
        idx = history_index(len(series["step"]), points)
        rec["series"] = {k: np.asarray(v)[idx].tolist() for k, v in series.items()}
    return rec


def decode_records(text: str) -> list[dict[str, Any]]:
    """The records of one unit result (:data:`RESULT_KEY`): ``[{"row": …, "series": {…}?}, …]`` with the
    row's timestamps back as datetimes, or ``[{"trial_id": …}]`` for a trajectory whose row was written
    by an earlier attempt (the driver reads it from Parquet if it has not logged it)."""
    import json

    out = json.loads(text)
    for rec in out:
        row = rec.get("row")
        if row is not None:
            for k in ("started_at", "finished_at"):
                if isinstance(row.get(k), str):
                    row[k] = _dt.datetime.fromisoformat(row[k])
    return out


def _has_row(sweep_dir, trial_id: str) -> bool:
    from rsng.results import trajectory_path

    return trajectory_path(sweep_dir, trial_id).is_file()


#: A work unit reports to Tune at most this often (and when it ends): each report is a round trip to
#: the driver, which short trajectories would otherwise pay twice each (benchmarks/README.md).
REPORT_INTERVAL_S = 1.0


def tune_trainable(config: dict[str, Any], units: list[WorkUnit], extensions: list | None = None) -> None:
    """The Ray Tune function trainable: ``config = {"trial": {"trial_id", "unit": i}}`` names one of
    the work units given through ``tune.with_parameters``; ``extensions``, ``[ObjectRef]`` of the
    driver's runtime registrations (:class:`rsng.service.work.Extensions`), installed once the
    process has sized its threads.

    Runs the unit's items one after another; a ``tune.report`` after a chunk, at most every
    :data:`REPORT_INTERVAL_S` seconds and once at the end (no checkpoint), carries the log records
    (:data:`RESULT_KEY`) of the trajectories finished since the last one. Items whose rows exist
    (written before this worker died and Tune retried the unit) are skipped and their ids reported
    without a row. A unit of several trajectories writes their files without fsync and, when it
    ends, merges them into one part file each for rows and steps (:func:`rsng.results.compact`)."""
    import json
    import sys
    import time

    from ray import tune

    from rsng.results import compact, has_part

    unit = units[config["trial"]["unit"]]
    cpus = float(unit.cpus)
    if cpus >= 1 and cpus.is_integer() and os.environ.get("RSNG_PIN_CPUS", "1") != "0":
        # before JAX starts its thread pool, which is sized to the process's CPU affinity
        from rsng.core.threads import claim_cpus

        claim_cpus(int(cpus))
    if extensions:
        import ray

        first = unit.items[0]
        prepare_environment(first.cpus, first.gpus, first.cache_dir)  # before a sampler class imports JAX
        ray.get(extensions[0]).install()
    points = unit.history_points
    records: list[dict] = []
    all_ids = unit.ids
    sweep_dir = unit.items[0].sweep_dir
    part = unit.trial_id if len(all_ids) > 1 else None
    last = [time.monotonic()]

    def flush(metrics: dict | None = None, state: dict | None = None, *, force: bool = False) -> None:
        # a report waits for the driver's answer, and is where Tune stops a trial (Ctrl+C): at most one
        # per REPORT_INTERVAL_S, carrying the trajectories finished since the last one; no checkpoint
        if not force and time.monotonic() - last[0] < REPORT_INTERVAL_S:
            return
        tune.report(
            {
                RESULT_KEY: json.dumps(records) if records else "",
                "trajectories": len(records),
                "step": int((metrics or {}).get("step", 0)),
            }
        )
        records.clear()
        last[0] = time.monotonic()

    if part is not None and has_part(sweep_dir, part):  # an earlier attempt finished and merged the unit
        records.extend({"trial_id": tid} for tid in all_ids)
        flush(force=True)
        return
    for item in unit.items:
        ids = item.ids
        if all(_has_row(item.sweep_dir, tid) for tid in ids):
            records.extend({"trial_id": tid} for tid in ids)
            continue
        run_trajectory(
            item,
            report=flush,
            on_row=lambda row, series: records.append(log_record(row, series, points)),
            durable=part is None,
        )
    if part is not None:
        try:
            compact(sweep_dir, part, all_ids)
        except Exception as e:  # noqa: BLE001 - the trajectories' own files stay, and load reads them
            print(f"rsng: could not merge the files of work unit {part}: {e}", file=sys.stderr)
    flush(force=True)
