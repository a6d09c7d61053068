"""Work units of several trajectories through the real embedded Ray: each unit merges its trajectories'
row files and steps chunks into one part file each when it ends (``rsng.results.compact``) — on local
disk and on an S3-compatible server (moto, slow suite) — and every trajectory is still once in Parquet
(rows and every stored step) and once in MLflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from rsng.service.trial import RESULT_KEY

ROOT = Path(__file__).resolve().parents[2]
LOAD = ROOT / "sweeps" / "load.py"
N, UNIT = 8, 4  # two work units of four heat-smoke trajectories (10 steps each)
NAME = f"load-heat-smoke-{N}"


def _run(storage: str, tmp: Path, env: dict) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        str(LOAD),
        "--trajectories",
        str(N),
        "--t-end",
        "0.1",
        "--unit-size",
        str(UNIT),
        "--ray-address",
        "local",
        "--storage",
        storage,
        "--cache-dir",
        str(tmp / "cache"),
    ]
    r = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def _check_results(sweep_dir) -> None:
    import warnings

    from rsng.results import ResultsWarning, finished_names, load, safe_name

    with warnings.catch_warnings():
        warnings.simplefilter("error", ResultsWarning)
        res = load(sweep_dir)
    df = res.trajectories
    assert len(df) == N and df["trial_id"].is_unique and (df["status"] == "ok").all()
    assert set(df["seed"]) == set(range(N))
    assert len(res.steps) == N * 11 and not res.steps.duplicated(["trial_id", "step"]).any()
    assert finished_names(sweep_dir) == {safe_name(t) for t in df["trial_id"]}


def test_work_units_merge_their_files_and_log_each_trajectory_once(tmp_path):
    from mlflow import MlflowClient

    storage = tmp_path / "results"
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true")
    _run(str(storage), tmp_path, env)
    sweep_dir = storage / NAME
    # two units: one part file each for rows and steps, no trajectory's own file left
    for sub in ("trajectories", "steps"):
        names = sorted(p.name for p in (sweep_dir / sub).iterdir())
        assert len(names) == 2 and all(n.startswith("+") and n.endswith("-unit4.parquet") for n in names), names
    assert len(list((sweep_dir / "_state").glob("*.npz"))) == N  # the final states (θ) stay
    _check_results(sweep_dir)
    client = MlflowClient(tracking_uri=f"sqlite:///{sweep_dir}/mlflow.db")
    exp = client.get_experiment_by_name(f"rsng/{NAME}")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    children = [r.data.tags["rsng.trial_id"] for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert len(children) == N and len(set(children)) == N
    assert all(r.info.status == "FINISHED" for r in runs)
    # Tune's own record of the trials (result.json: its pid and results) holds no copy of the trajectories'
    # rows and series once the driver has them: Tuner.fit reads every result.json back when it ends
    results = [
        json.loads(line) for f in (sweep_dir / "_ray").rglob("result.json") for line in f.read_text().splitlines()
    ]
    assert len({r["trial_id"] for r in results}) == 2 and all(r["pid"] != os.getpid() for r in results)
    assert sum(r["trajectories"] for r in results) == N and all(r[RESULT_KEY] == "" for r in results)

    # rerun with --resume: nothing to do, nothing rewritten
    before = {p: p.stat().st_mtime_ns for p in sweep_dir.rglob("*.parquet")}
    r = subprocess.run(
        [sys.executable, str(LOAD), "--trajectories", str(N), "--t-end", "0.1", "--unit-size", str(UNIT)]
        + ["--ray-address", "local", "--storage", str(storage), "--cache-dir", str(tmp_path / "cache"), "--resume"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"{N} trajectories ({N} already done, 0 to run)" in r.stdout
    assert {p: p.stat().st_mtime_ns for p in sweep_dir.rglob("*.parquet")} == before


@pytest.mark.slow
def test_work_units_merge_their_files_on_an_object_store(s3_env, tmp_path):
    from rsng.results import storage_path

    prefix = f"units-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, RAY_AUTH_MODE="disabled", MLFLOW_DISABLE_TELEMETRY="true", RSNG_CACHE_DIR=str(tmp_path))
    _run(f"s3://{s3_env.bucket}/{prefix}", tmp_path, env)
    keys = s3_env.keys(f"{prefix}/{NAME}/")
    for sub in ("trajectories", "steps"):
        # (a key ending in "/" is a folder marker, not a file)
        names = sorted(k.rsplit("/", 1)[1] for k in keys if f"/{sub}/" in k and not k.endswith("/"))
        assert len(names) == 2 and all(n.startswith("+") for n in names), names
    _check_results(storage_path(f"s3://{s3_env.bucket}/{prefix}/{NAME}"))
