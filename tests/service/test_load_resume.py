"""Load with a fault: 1,000 trajectories of `sweeps/load.py` through one embedded single-node Ray, the driver
SIGKILLed at about half-way, then ``--resume`` (slow suite: ``pytest -m slow``; measured 17 min on the
shared 2-core machine at a load average of 15–40 — 8 min to the kill, 7.5 min of resume, 24 s of reference
runs; see the printed timings).

Checks: every trajectory exactly once in Parquet and once in MLflow (no child left RUNNING, one parent,
FINISHED), every stored step once, and the rows, per-step series and final θ of the trajectories the kill
cut short — and of a sample of the others — bit-identical to an uninterrupted run of the same
configurations (the serial runner, in a process of its own).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
LOAD = ROOT / "sweeps" / "load.py"
N = 1000
T_END = "0.5"  # heat smoke: 50 steps, ≈ 0.1 s of solver each
REPORT = "25"  # two chunks per trajectory: a kill can land mid-trajectory
NAME = f"load-heat-smoke-{N}"

REFERENCE = """
import sys
from rsng.service.runner import SweepOptions, run_sweep
from rsng.service.spec import SweepSpec

seeds = [int(s) for s in sys.argv[3].split(",")]
fixed = {"problem": "heat", "preset": "smoke", "t_end": float(sys.argv[4])}
spec = SweepSpec("reference", grid={"seed": seeds}, fixed=fixed)
run_sweep(spec, SweepOptions(storage=sys.argv[1], cache_dir=sys.argv[2], serial=True, report_steps=int(sys.argv[5]),
                             log=lambda m: None))
"""


def env() -> dict:
    return dict(os.environ, RAY_AUTH_MODE="disabled", MLFLOW_DISABLE_TELEMETRY="true")


def n_rows(sweep_dir: Path) -> int:
    from rsng.results import finished_names

    return len(finished_names(sweep_dir)) if (sweep_dir / "trajectories").is_dir() else 0


@pytest.mark.slow
def test_a_thousand_trajectories_survive_a_driver_kill_and_resume(tmp_path):
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    from rsng.results import load, safe_name

    storage, cache = tmp_path / "results", tmp_path / "cache"
    sweep_dir = storage / NAME
    cmd = [
        sys.executable,
        str(LOAD),
        "--trajectories",
        str(N),
        "--t-end",
        T_END,
        "--report-steps",
        REPORT,
        "--ray-address",
        "local",
        "--storage",
        str(storage),
        "--cache-dir",
        str(cache),
    ]
    t0 = time.monotonic()
    log = tmp_path / "first.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, env=env(), stdout=f, stderr=subprocess.STDOUT, start_new_session=True
        )

    def cut_short() -> bool:  # a trajectory has a saved state but no row yet: the kill lands inside it
        from rsng.results import finished_names

        states = {p.stem for p in (sweep_dir / "_state").glob("*.npz")}
        return bool(states - finished_names(sweep_dir))

    try:
        deadline = time.monotonic() + 1800
        # rows arrive a unit (32) at a time and the two running units end together, so half-way alone
        # can land between units, with nothing cut short: wait for a trajectory in progress too
        # a unit can end (and write its rows) between a look and the kill: freeze the driver and its Ray
        # processes first, look again at the frozen files, and kill only if a trajectory is still cut short
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            if n_rows(sweep_dir) >= N // 2 and cut_short():
                os.killpg(proc.pid, signal.SIGSTOP)
                time.sleep(0.2)  # the signal is delivered asynchronously: let every process stop
                if cut_short():
                    break
                os.killpg(proc.pid, signal.SIGCONT)
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its Ray processes, mid-sweep
        proc.wait()
    t_kill = time.monotonic() - t0
    time.sleep(2)
    from rsng.results import finished_names

    done = finished_names(sweep_dir)  # own row files and the part files of the units that ended
    cut = {p.stem for p in (sweep_dir / "_state").glob("*.npz")} - done  # started, no row: cut short
    assert N // 2 <= len(done) < N and cut, (len(done), len(cut))

    t1 = time.monotonic()
    r = subprocess.run([*cmd, "--resume"], cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=3600)
    t_resume = time.monotonic() - t1
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"{N} trajectories ({len(done)} already done, {N - len(done)} to run)" in r.stdout
    tune_warnings = [
        line
        for line in (r.stdout + r.stderr).splitlines()
        if "WARNING" in line and any(k in line for k in ("tune", "experiment_state", "trial"))
    ]
    assert not tune_warnings, tune_warnings

    # Parquet: every trajectory once, every stored step once
    res = load(sweep_dir)
    df = res.trajectories
    assert len(df) == N and df["trial_id"].is_unique and (df["status"] == "ok").all()
    assert set(df["seed"]) == set(range(N))
    steps = res.steps
    assert not steps.duplicated(["trial_id", "step"]).any()
    # the work units merged their files: a few hundred files, not one per trajectory
    assert len(list((sweep_dir / "trajectories").iterdir())) < N // 4
    counts = steps.groupby("trial_id")["step"].count().sort_index()
    expected = (df.set_index("trial_id")["steps"] + 1).sort_index()  # rows come in file order: parts first
    assert counts.index.equals(expected.index) and (counts.to_numpy() == expected.to_numpy()).all()

    # MLflow: one parent, FINISHED; one child per trajectory, none left RUNNING
    client = MlflowClient(tracking_uri=f"sqlite:///{sweep_dir}/mlflow.db")
    exp = client.get_experiment_by_name(f"rsng/{NAME}")
    runs, token = [], None
    while True:
        page = client.search_runs(
            [exp.experiment_id], run_view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token
        )
        runs += page
        token = page.token
        if not token:
            break
    parents = [x for x in runs if x.data.tags.get("rsng.kind") == "parent"]
    children = [x.data.tags["rsng.trial_id"] for x in runs if x.data.tags.get("mlflow.parentRunId")]
    assert [p.info.status for p in parents] == ["FINISHED"]
    assert len(children) == N and set(children) == set(df["trial_id"])
    assert not [x for x in runs if x.info.status == "RUNNING"]

    # bit-identical to an uninterrupted run: the trajectories cut short and 20 others
    by_stem = {safe_name(t): t for t in df["trial_id"]}
    ids = sorted({by_stem[s] for s in cut} | set(random.Random(0).sample(sorted(df["trial_id"]), 20)))
    seeds = df.set_index("trial_id").loc[ids, "seed"].astype(int).tolist()
    ref_storage = tmp_path / "reference"
    t2 = time.monotonic()
    ref = subprocess.run(
        [sys.executable, "-c", REFERENCE, str(ref_storage), str(cache), ",".join(map(str, seeds)), T_END, REPORT],
        cwd=tmp_path,
        env=env(),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert ref.returncode == 0, ref.stderr[-3000:]
    ref_res = load(ref_storage / "reference")
    got = df.set_index("trial_id").loc[ids]
    want = ref_res.trajectories.set_index("trial_id").loc[ids]
    for col in ("status", "steps", "rel_l2", "rel_l2_t0", "rel_l2_final"):
        assert got[col].tolist() == want[col].tolist(), col
    for tid in ids:
        g = steps[steps.trial_id == tid]
        w = ref_res.steps[ref_res.steps.trial_id == tid]
        assert g["step"].tolist() == w["step"].tolist()
        assert np.array_equal(g["rel_l2_t"].to_numpy(), w["rel_l2_t"].to_numpy(), equal_nan=True)
        with (
            np.load(sweep_dir / "_state" / f"{safe_name(tid)}.npz") as a,
            np.load(ref_storage / "reference" / "_state" / f"{safe_name(tid)}.npz") as b,
        ):
            assert int(a["k"]) == int(b["k"]) and np.array_equal(a["theta"], b["theta"])
    print(
        f"\n{N} trajectories: killed after {t_kill:.0f} s at {len(done)} rows ({len(cut)} cut short), resumed in "
        f"{t_resume:.0f} s; {len(ids)} compared with an uninterrupted run ({time.monotonic() - t2:.0f} s)"
    )
