"""One trajectory as a Ray Tune trial (or in-process, for the serial runner).

:func:`run_trajectory` is the whole trial: it sizes threads and picks the JAX platform *before* JAX
loads, builds the :class:`~rsng.core.integrate.Trajectory`, resumes from the newest state it can find
(a ``ray.tune.Checkpoint`` on a Tune retry, else the sweep's own state file on ``--resume``),
advances in chunks — after each chunk it writes that chunk's per-step rows to Parquet, saves its
state, and reports progress — and finally writes the trajectory row. An exception inside the solver
is recorded as ``status = failed``; a non-finite or blown-up state as ``diverged``; neither is retried.

State files (``<sweep>/_state/<trial_id>.npz``) are plain arrays (``allow_pickle=False``); the
chunk numbering is a function of the step, so a retried chunk overwrites its file.
"""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["prepare_environment", "run_trajectory", "tune_trainable", "state_path"]

def prepare_environment(cpus: float, gpus: float, cache_dir: str | None = None) -> None:
    """Threads, platform, GPU memory share and compilation cache — must run before JAX is imported
    (in a reused worker the first trial's choice stays)."""
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


def state_path(sweep_dir: str | Path, trial_id: str) -> Path:
    from rsng.results import safe_name

    return Path(sweep_dir) / "_state" / f"{safe_name(trial_id)}.npz"


def _save_state(path: Path, state: dict) -> None:
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
    os.close(fd)
    np.savez(tmp, **state)
    os.replace(tmp, path)


def _load_state(path: Path) -> dict | None:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError):
        return None


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


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
        out[tid] = {k[len(prefix):]: v for k, v in st.items() if k.startswith(prefix)}
    return out


def run_trajectory(trial: dict[str, Any], *, report: Callable[[dict, dict | None], None] | None = None,
                   checkpoint_state: dict | None = None) -> list[dict[str, Any]]:
    """Run (or resume) the trajectories of one trial and write their Parquet records; returns their rows.

    ``trial``: ``{"trial_id", "config": RunConfig dict, "sweep", "sweep_dir", "report_steps",
    "cpus", "gpus", "cache_dir", "versions": {...}}``, plus ``"members": [{"trial_id", "config"}, …]``
    for several seeds of one configuration marched together (:class:`TrajectoryBatch`).
    ``report(metrics, state)`` is called after every chunk (Tune: ``ray.tune.report`` with a
    checkpoint of ``state``). Each trajectory keeps its own state file, steps files and row.
    """
    prepare_environment(trial.get("cpus", 1), trial.get("gpus", 0), trial.get("cache_dir"))
    import jax

    from rsng import __version__
    from rsng.core.config import RunConfig
    from rsng.core.integrate import Trajectory, TrajectoryBatch
    from rsng.results import write_steps, write_trajectory
    from rsng.results.rows import base_row, finish_row

    sweep_dir = Path(trial["sweep_dir"])
    members = trial.get("members") or [{"trial_id": trial["trial_id"], "config": trial["config"]}]
    ids = [m["trial_id"] for m in members]
    cfg_dicts = [dict(m["config"]) for m in members]
    cfgs = [RunConfig.from_dict(c) for c in cfg_dicts]
    started = _now()
    versions = trial.get("versions", {})
    device = jax.devices()[0]
    rows = [base_row(trial["sweep"], tid, c, batch_size=len(members), rsng_version=__version__,
                     git_sha=versions.get("git_sha"), jax_version=jax.__version__,
                     device=f"{device.platform}:{getattr(device, 'device_kind', '')}".rstrip(":"), started_at=started)
            for tid, c in zip(ids, cfg_dicts)]
    ckpt = _split_states(checkpoint_state, ids)
    try:
        if len(members) == 1:
            trajs = [Trajectory(cfgs[0], cache_dir=trial.get("cache_dir"))]
            advance = lambda n: [trajs[0].advance(n)]
            done = lambda: trajs[0].done
        else:
            batch = TrajectoryBatch(cfgs, cache_dir=trial.get("cache_dir"))
            trajs, advance, done = batch.members, batch.advance, lambda: batch.done
        for tid, traj in zip(ids, trajs):
            # the newest of the Tune checkpoint (a retry) and the sweep's state file (a --resume)
            spath = state_path(sweep_dir, tid)
            candidates = [st for st in (ckpt.get(tid), _load_state(spath) if spath.exists() else None) if st is not None]
            state = max(candidates, key=lambda st: int(st["k"]), default=None)
            if state is not None:
                traj.load_state(state)
        chunk = trajs[0].chunk
        every = chunk * max(1, round(trial.get("report_steps", 200) / chunk))
        for tid, traj in zip(ids, trajs):
            if traj.k == 0:
                write_steps(sweep_dir, tid, 0, traj.series([0]) | {"trial_id": tid})
        while not done():
            recorded = advance(every)
            states = {}
            for tid, traj, rec in zip(ids, trajs, recorded):
                if rec:  # chunk file j holds the stored steps in ((j-1)·every, j·every]
                    write_steps(sweep_dir, tid, (rec[0] - 1) // every + 1, traj.series(rec) | {"trial_id": tid})
                states[tid] = traj.state()
                _save_state(state_path(sweep_dir, tid), states[tid])
            if report is not None:
                lead = min(trajs, key=lambda t: t.k)
                res = lead.result()
                report({"step": lead.k, "t": lead.k * lead.cfg.dt, "rel_l2_t": float(res.rel_l2_t[-1]),
                        "ls_residual": float(res.ls_residual[-1]) if lead.k else float("nan"),
                        "wall_s": sum(t.wall_s for t in trajs), "done": False}, _join_states(states))
        results = [traj.result() for traj in trajs]
        rows = [finish_row(row, result=res) for row, res in zip(rows, results)]
    except Exception as e:  # recorded, not retried: a deterministic error would only repeat
        message = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"
        rows = [finish_row(row, error=message) for row in rows]
    for row in rows:
        write_trajectory(sweep_dir, row)
    if report is not None:
        ok = [r for r in rows if r["rel_l2"] is not None]
        report({"step": min(r["steps"] for r in rows),
                "rel_l2": sum(r["rel_l2"] for r in ok) / len(ok) if ok else float("nan"),
                "wall_s": sum(r["wall_s"] for r in rows), "status": ",".join(sorted({r["status"] for r in rows})),
                "done": True}, None)
    return rows


def tune_trainable(config: dict[str, Any]) -> None:
    """The Ray Tune function trainable: ``config = {"trial": <trial dict>}``."""
    from ray import tune

    trial = config["trial"]
    cpus = float(trial.get("cpus", 1))
    if cpus >= 1 and cpus.is_integer() and os.environ.get("RSNG_PIN_CPUS", "1") != "0":
        # before JAX starts its thread pool, which is sized to the process's CPU affinity
        from rsng.core.threads import claim_cpus

        claim_cpus(int(cpus))
    state = None
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            state = _load_state(Path(d) / "state.npz")

    def report(metrics: dict, st: dict | None) -> None:
        metrics = {k: v for k, v in metrics.items() if v is not None}
        if st is None:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as d:
            import numpy as np

            np.savez(Path(d) / "state.npz", **st)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))

    run_trajectory(trial, report=report, checkpoint_state=state)
