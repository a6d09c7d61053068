"""The smoke sparsity sweep on a real single-node Ray cluster with a real sqlite MLflow store."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "sweeps" / "sparsity.py"


def mlflow_runs(sweep_dir):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{sweep_dir}/mlflow.db")
    exp = client.get_experiment_by_name("rsng/sparsity-smoke")
    return client, client.search_runs([exp.experiment_id], max_results=1000)


def test_smoke_sweep_writes_one_row_per_trajectory(smoke_sweep, smoke_n):
    from rsng.results import load

    sweep_dir, r, wall = smoke_sweep
    res = load(sweep_dir)
    df = res.trajectories
    assert len(df) == smoke_n == 12 and df["trial_id"].is_unique
    assert set(df["problem"]) == {"allen_cahn"} and set(df["sampler"]) == {"uniform", "column_norm"}
    assert set(df["s"]) == {25, 50, 100} and set(df["seed"]) == {0, 1}
    assert (df["status"] == "ok").all(), df[["trial_id", "status", "error_message"]]
    # smoke preset (depth 3, s=50, short T): measured 6.5e-4 … 5.1e-2. This checks the plumbing
    # carries real errors; accuracy is the solver tests' business.
    assert df["rel_l2"].notna().all() and (df["rel_l2"] < 0.1).all() and (df["rel_l2_t0"] < 1e-4).all()
    from rsng.core.threads import cpu_kind

    assert (df["wall_s"] > 0).all() and (df["device"] == f"cpu:{cpu_kind()}").all(), set(df["device"])
    # per-step series: t = 0 and every stored step, once each
    for row in df.itertuples():
        steps = res.steps[res.steps["trial_id"] == row.trial_id]
        assert steps["step"].is_unique
        assert steps["step"].min() == 0 and steps["step"].max() == row.steps
    assert "Parquet results" in r.stdout and "mlflow ui --backend-store-uri sqlite:///" in r.stdout
    assert "rel_l2_mean" in r.stdout  # the accuracy-vs-cost table
    assert f"{sweep_dir / 'front.png'}" in r.stdout  # and the front, as a PNG in the sweep folder
    assert (sweep_dir / "front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "WARNING" not in r.stdout + r.stderr and "Warning" not in r.stdout + r.stderr
    print(f"smoke sweep wall time: {wall:.0f} s")


def test_smoke_sweep_mlflow_parent_and_children(smoke_sweep, smoke_n):
    sweep_dir, _, _ = smoke_sweep
    client, runs = mlflow_runs(sweep_dir)
    parents = [r for r in runs if r.data.tags.get("rsng.kind") == "parent"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert len(parents) == 1 and len(children) == smoke_n
    assert all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in children)
    assert all(r.info.status == "FINISHED" for r in runs)
    hist = client.get_metric_history(children[0].info.run_id, "rel_l2_t")
    assert len(hist) > 10 and sorted(m.step for m in hist)[0] == 0


def test_resume_after_interrupted_driver_matches_uninterrupted(
    smoke_sweep, smoke_n, sparsity_script, sweep_cache, tmp_path
):
    from rsng.results import load

    sweep_dir_ref, _, _ = smoke_sweep
    storage = tmp_path / "results"
    env = dict(os.environ)
    args = [
        sys.executable,
        str(SCRIPT),
        "--smoke",
        "--ray-address",
        "local",
        "--storage",
        str(storage),
        "--cache-dir",
        str(sweep_cache),
        "--max-concurrent",
        "1",
        "--report-steps",
        "20",
    ]
    proc = subprocess.Popen(
        args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    from rsng.results import finished_names

    sweep = storage / "sparsity-smoke"

    def done() -> int:  # trajectories with a row: in files of their own, or merged into a unit's part file
        try:
            return len(finished_names(sweep))
        except (FileNotFoundError, OSError):  # not created yet, or a part file being written
            return 0

    deadline = time.time() + 300
    while time.time() < deadline and done() < 2:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its Ray processes, mid-sweep
    proc.wait()
    n_before = done()
    assert 2 <= n_before < smoke_n

    r = sparsity_script(["--smoke", "--storage", str(storage), "--cache-dir", str(sweep_cache), "--resume"], tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    got = load(storage / "sparsity-smoke").trajectories.set_index("trial_id").sort_index()
    ref = load(sweep_dir_ref).trajectories.set_index("trial_id").sort_index()
    assert list(got.index) == list(ref.index)  # every trajectory exactly once
    assert (got["rel_l2"] == ref["rel_l2"]).all()  # bit-identical to the uninterrupted sweep
    client, runs = mlflow_runs(storage / "sparsity-smoke")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert sorted(r.data.tags["rsng.trial_id"] for r in children) == sorted(got.index)
    assert not [r for r in runs if r.info.status == "RUNNING"]


@pytest.mark.slow  # ≈ 50 s; the default suite keeps test_faults.py's MLflow-server-stopped case
def test_mlflow_down_sweep_completes_then_sync_fills_it(sparsity_script, smoke_n, sweep_cache, tmp_path):
    """Tracking server unreachable for the whole sweep: Parquet complete, a clear warning, and
    `rsng mlflow-sync` afterwards creates every run exactly once (serial runner: same driver path)."""
    import socket

    from rsng.results import load

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    storage = tmp_path / "results"
    r = sparsity_script(
        [
            "--smoke",
            "--serial",
            "--storage",
            str(storage),
            "--cache-dir",
            str(sweep_cache),
            "--mlflow-uri",
            f"http://127.0.0.1:{port}",
        ],
        tmp_path,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "MLflow unavailable" in r.stdout + r.stderr and "rsng mlflow-sync" in r.stdout + r.stderr
    sweep_dir = storage / "sparsity-smoke"
    assert len(load(sweep_dir).trajectories) == smoke_n
    for _ in range(2):  # the second sync must create nothing
        out = subprocess.run(
            [sys.executable, "-m", "rsng.cli", "mlflow-sync", str(sweep_dir)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr
    assert f"created 0, already present {smoke_n}, failed 0" in out.stdout
    client, runs = mlflow_runs(sweep_dir)
    assert len([r for r in runs if r.data.tags.get("mlflow.parentRunId")]) == smoke_n
    assert all(r.info.status != "RUNNING" for r in runs)


def test_seeds_per_trial_batches_seeds_into_one_trial(smoke_sweep, smoke_n, sparsity_script, sweep_cache, tmp_path):
    """--seeds-per-trial 2: the 12 smoke trajectories run as 6 Tune trials (seeds 0 and 1 of each
    configuration vmapped together); every trajectory still has its own row, steps and MLflow run."""
    import numpy as np

    from rsng.results import load

    r = sparsity_script(
        [
            "--smoke",
            "--seeds-per-trial",
            "2",
            "--storage",
            str(tmp_path / "results"),
            "--cache-dir",
            str(sweep_cache),
        ],
        tmp_path,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    sweep_dir = tmp_path / "results" / "sparsity-smoke"
    res = load(sweep_dir)
    df = res.trajectories.set_index("trial_id").sort_index()
    single = load(smoke_sweep[0], with_steps=False).trajectories.set_index("trial_id").sort_index()
    assert list(df.index) == list(single.index)  # the same trajectories, ids unchanged
    assert (df["status"] == "ok").all() and (df["batch_size"] == 2).all() and (single["batch_size"] == 1).all()
    assert (df["rel_l2"] < 0.1).all()
    # Batched and single runs round differently and the smoke runs amplify rounding to the 1e-2 level
    # and beyond (tests/core/test_fast_path.py), so compare with the same batch run in this process:
    from rsng.core.config import resolve
    from rsng.core.integrate import TrajectoryBatch
    from rsng.core.record import record_columns

    group = df[(df["problem"] == "allen_cahn") & (df["sampler"] == "uniform") & (df["s"] == 50)].sort_values("seed")
    cfgs = [
        resolve(
            None, **{k: (row[k].item() if hasattr(row[k], "item") else row[k]) for k in record_columns() if k != "p"}
        )
        for _, row in group.iterrows()
    ]
    assert len(cfgs) == 2
    here = TrajectoryBatch(cfgs, cache_dir=str(sweep_cache)).run()
    np.testing.assert_array_equal([h.rel_l2 for h in here], group["rel_l2"].to_numpy())
    for tid, row in df.iterrows():
        steps = res.steps[res.steps["trial_id"] == tid]
        assert steps["step"].is_unique and steps["step"].max() == row["steps"]
    trials = list((sweep_dir / "_ray").glob("*/tune_trainable_*"))
    assert len(trials) == smoke_n // 2, trials
    client, runs = mlflow_runs(sweep_dir)
    assert sum(1 for x in runs if x.data.tags.get("mlflow.parentRunId")) == smoke_n
