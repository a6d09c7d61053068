"""Results on an object store: real sweeps writing to ``s3://BUCKET/PREFIX`` on a real S3-compatible
server (moto's server mode on 127.0.0.1, the ``s3_server`` fixture of tests/conftest.py), a real
single-node Ray and real sqlite MLflow stores; the faults are real signals to real processes.
Nothing of rsng is mocked: the sweep subprocesses find the server the way the AWS SDKs do
(``AWS_ENDPOINT_URL`` and keys in their environment).
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

HERE = Path(__file__).resolve().parent
FAULT_SWEEP = HERE / "fault_sweep.py"
ROOT = HERE.parents[1]
REPORT = 100
GRID = ["--seeds", "3", "--t-end", "10", "--report-steps", str(REPORT)]  # 3 trajectories of 1000 steps


def _prefix(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}"


def sweep_cmd(storage: str, cache: Path, *args: str, script: Path = FAULT_SWEEP) -> list[str]:
    return [
        sys.executable,
        str(script),
        "--ray-address",
        "local",
        "--storage",
        storage,
        "--cache-dir",
        str(cache),
        *args,
    ]


def sweep_env(server, home: Path) -> dict:
    """The sweep's environment: the S3 server, and RSNG_CACHE_DIR in the test's folder (the default MLflow
    store of an s3:// sweep lives there)."""
    return server.env(
        dict(os.environ, RAY_AUTH_MODE="disabled", MLFLOW_DISABLE_TELEMETRY="true", RSNG_CACHE_DIR=str(home))
    )


def local_mlflow_db(home: Path, bucket: str, prefix: str, sweep: str = "faults") -> Path:
    return home / "mlflow" / "s3" / bucket / prefix / sweep / "mlflow.db"


def mlflow_children(db: Path, sweep: str = "faults", status: str | None = None) -> list[str]:
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    exp = client.get_experiment_by_name(f"rsng/{sweep}")
    runs = (
        []
        if exp is None
        else client.search_runs([exp.experiment_id], run_view_type=ViewType.ACTIVE_ONLY, max_results=1000)
    )
    return sorted(
        r.data.tags["rsng.trial_id"]
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") and status in (None, r.info.status)
    )


def _rows(server, prefix: str) -> set[str]:
    keys = server.keys(f"{prefix}/faults/trajectories/")
    return {k.rsplit("/", 1)[1][: -len(".parquet")] for k in keys if k.endswith(".parquet")}


def _state_k(server, key: str) -> int | None:
    try:
        body = server.client().get_object(Bucket=server.bucket, Key=key)["Body"].read()
        with np.load(io.BytesIO(body), allow_pickle=False) as z:
            return int(z["k"])
    except Exception:  # noqa: BLE001 - absent or unreadable
        return None


def _mid_trajectory(server, prefix: str, steps: int = 1000):
    done = _rows(server, prefix)
    for key in server.keys(f"{prefix}/faults/_state/"):
        stem = key.rsplit("/", 1)[1][: -len(".npz")]
        k = _state_k(server, key)
        if k is not None and REPORT <= k <= steps - 5 * REPORT and stem not in done:
            return stem, k
    return None


def _wait_for(cond, timeout, what, proc, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what} (driver rc={proc.poll()})\n{log.read_text()[-3000:]}")


def assert_same_rows(got_dir, ref_dir, trial_ids=None) -> None:
    """Rows, per-step series and the final saved θ equal the reference's, bit for bit; each trajectory once."""
    from rsng.results import load, storage_path
    from rsng.service.trial import _load_state, state_path

    got_res, ref_res = load(got_dir), load(ref_dir)
    got = got_res.trajectories.set_index("trial_id").sort_index()
    ref = ref_res.trajectories.set_index("trial_id").sort_index()
    if trial_ids is not None:
        ref = ref.loc[sorted(trial_ids)]
    assert list(got.index) == list(ref.index)
    for col in ("status", "steps", "diverged_step", "rel_l2", "rel_l2_t0", "rel_l2_final"):
        a, b = ([None if pd.isna(v) else v for v in df[col].astype(object)] for df in (got, ref))
        assert a == b, col
    gs, rs = got_res.steps, ref_res.steps
    assert not gs.duplicated(["trial_id", "step"]).any()
    for tid in got.index:
        g, r = gs[gs.trial_id == tid], rs[rs.trial_id == tid]
        assert g["step"].tolist() == r["step"].tolist()
        assert np.array_equal(g["rel_l2_t"].to_numpy(), r["rel_l2_t"].to_numpy(), equal_nan=True)
        a = _load_state(state_path(storage_path(str(got_dir)), tid))
        b = _load_state(state_path(storage_path(str(ref_dir)), tid))
        assert int(a["k"]) == int(b["k"]) and np.array_equal(a["theta"], b["theta"])


# -- no server needed -----------------------------------------------------------------------------------------
def test_storage_path_parses_uris_and_refuses_malformed_ones():
    from rsng.results import ObjectPath, storage_path

    p = storage_path("s3://bkt/a/b")
    assert isinstance(p, ObjectPath) and str(p) == "s3://bkt/a/b" and p.path == "bkt/a/b" and p.bucket == "bkt"
    q = p / "trajectories" / "x-000001.parquet"
    assert str(q) == "s3://bkt/a/b/trajectories/x-000001.parquet"
    assert (q.name, q.stem, q.suffix, str(q.parent.parent)) == (
        "x-000001.parquet",
        "x-000001",
        ".parquet",
        "s3://bkt/a/b",
    )
    assert str(storage_path("gcs://bkt//x/")) == "gs://bkt/x"
    assert storage_path("results/run") == Path("results/run") and storage_path("file:///tmp/x") == Path("/tmp/x")
    for bad, words in [
        ("ftp://h/x", "unsupported scheme 'ftp'"),
        ("s3:/bkt/x", "malformed URI"),
        ("s3://", "no bucket"),
        ("gs:///x", "no bucket"),
        ("s3://bkt/x?endpoint_override=h", "query"),
        ("s3://Bkt_/x", "not a valid bucket name"),
    ]:
        with pytest.raises(ValueError, match=words):
            storage_path(bad)


# -- bad --storage values: exit 2 naming --storage, before Ray starts ---------------------------------------------
def test_bad_storage_uris_exit_2_naming_storage_before_ray_starts(s3_env, tmp_path, monkeypatch, capsys, script_module):
    script = script_module(FAULT_SWEEP)
    from rsng.service.cli import sweep_main

    monkeypatch.chdir(tmp_path)
    cases = [
        ("ftp://host/results", {}, "unsupported scheme 'ftp'"),
        ("s3:/rsng-test/x", {}, "malformed URI"),
        ("s3://", {}, "no bucket"),
        ("s3://no-such-bucket/x", {}, "bucket 'no-such-bucket' does not exist"),
        (
            "s3://rsng-test/x",
            {
                "AWS_ACCESS_KEY_ID": None,
                "AWS_SECRET_ACCESS_KEY": None,
                "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                "AWS_CONFIG_FILE": str(tmp_path / "none"),
            },
            "no AWS credentials found",
        ),
        (
            "s3://rsng-test/x",
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"},
            "cannot be written (endpoint http://127.0.0.1:9)",
        ),
    ]
    for storage, env, words in cases:
        from rsng.results import fs

        with monkeypatch.context() as m:
            m.setattr(fs, "_FILESYSTEMS", {})
            for k, v in env.items():
                m.delenv(k, raising=False) if v is None else m.setenv(k, v)
            rc = sweep_main(
                "faults",
                "",
                script.build,
                script.extra,
                argv=["--ray-address", "local", "--storage", storage, "--cache-dir", str(tmp_path / "c")],
            )
        err = capsys.readouterr().err.strip()
        assert rc == 2, (storage, err)
        assert len(err.splitlines()) == 1 and "error: --storage: " in err and words in err, (storage, err)
    assert not (tmp_path / "s3:").exists() and not list(tmp_path.glob("s3*")) and not (tmp_path / "ftp:").exists()
    if "ray" in sys.modules:
        import ray

        assert not ray.is_initialized()


# -- a whole sweep on S3 ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def s3_sweep(s3_server, tmp_path_factory, sweep_cache):
    """The fault sweep (heat smoke, 2 seeds × 200 steps) written to s3://rsng-test/<prefix>."""
    tmp = tmp_path_factory.mktemp("s3-sweep")
    prefix = _prefix("sweep")
    storage = f"s3://{s3_server.bucket}/{prefix}"
    t0 = time.perf_counter()
    r = subprocess.run(
        sweep_cmd(storage, sweep_cache, "--seeds", "2", "--t-end", "2", "--report-steps", "100"),
        cwd=tmp,
        env=sweep_env(s3_server, tmp / "home"),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return storage, prefix, tmp, r, time.perf_counter() - t0


def test_sweep_to_s3_writes_rows_steps_states_and_mlflow_children(s3_sweep, s3_server, s3_env, capsys):
    from rsng.cli import main
    from rsng.results import load

    storage, prefix, tmp, r, wall = s3_sweep
    print(f"fault sweep (2 trajectories) to S3: {wall:.0f} s")
    assert not [p for p in tmp.rglob("*") if p.name.startswith("s3:")]  # nothing written to a local "s3:" folder
    keys = s3_server.keys(f"{prefix}/faults/")
    rows = _rows(s3_server, prefix)
    assert len(rows) == 2
    assert f"{prefix}/faults/sweep.json" in keys
    for tid in rows:
        assert f"{prefix}/faults/_state/{tid}.npz" in keys
        assert _state_k(s3_server, f"{prefix}/faults/_state/{tid}.npz") == 200
        assert {f"{prefix}/faults/steps/{tid}-{c:06d}.parquet" for c in (0, 1, 2)} <= set(keys)
    assert any(k.startswith(f"{prefix}/faults/_ray/") for k in keys)  # Tune's experiment state on the same store
    png = s3_server.client().get_object(Bucket=s3_server.bucket, Key=f"{prefix}/faults/front.png")["Body"].read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and f"{storage}/faults/front.png" in r.stdout  # the front, in the bucket
    assert not [k for k in keys if k.rsplit("/", 1)[1].startswith(".") and "/_ray/" not in k]  # no probe objects left

    res = load(f"{storage}/faults")
    assert len(res.trajectories) == 2 and (res.trajectories["status"] == "ok").all() and not res.skipped
    assert sorted(res.trajectories["trial_id"]) == sorted(rows)
    assert len(res.steps) == 2 * 201 and not res.steps.duplicated(["trial_id", "step"]).any()
    assert res.meta["name"] == "faults"
    assert len(load(storage).trajectories) == 2  # the storage root too
    # MLflow: the default sqlite store of an s3:// sweep is local (RSNG_CACHE_DIR/mlflow/s3/<bucket>/<prefix>/<sweep>)
    db = local_mlflow_db(tmp / "home", s3_server.bucket, prefix)
    assert f"sqlite:///{db}" in r.stdout
    assert mlflow_children(db, status="FINISHED") == sorted(rows)
    # rsng pareto and mlflow-sync read the sweep from the bucket
    assert main(["pareto", f"{storage}/faults", "--by", "none"]) == 0
    assert "of 2 eligible runs" in capsys.readouterr().out
    assert main(["report", f"{storage}/faults", "--out", str(tmp / "report"), "--no-reference"]) == 0
    assert f"{storage}/faults" in (tmp / "report" / "index.html").read_text()
    out = subprocess.run(
        [sys.executable, "-m", "rsng.cli", "mlflow-sync", f"{storage}/faults"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env=sweep_env(s3_server, tmp / "home"),
    )
    assert out.returncode == 0 and "created 0, already present 2, failed 0" in out.stdout, out.stdout + out.stderr


def test_corrupt_object_is_skipped_and_named(s3_sweep, s3_server, s3_env, capsys):
    from rsng.cli import main
    from rsng.results import ResultsError, ResultsWarning, load, write_trajectory

    storage, *_ = s3_sweep
    rows = load(f"{storage}/faults", with_steps=False).trajectories.to_dict("records")
    target = f"s3://{s3_server.bucket}/{_prefix('corrupt')}/faults"
    for row in rows:
        write_trajectory(target, {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()})
    key = target.split("/", 3)[3] + "/trajectories/broken.parquet"
    s3_server.client().put_object(Bucket=s3_server.bucket, Key=key, Body=b"PAR1 not really parquet")
    with pytest.warns(ResultsWarning, match="broken.parquet"):
        res = load(target)
    assert len(res.trajectories) == 2
    assert [p for p, _ in res.skipped] == [f"{target}/trajectories/broken.parquet"]
    with pytest.raises(ResultsError, match="broken.parquet"):
        load(target, strict=True)
    with pytest.warns(ResultsWarning, match="broken.parquet"):
        assert main(["pareto", target, "--by", "none"]) == 0
    assert "of 2 eligible runs" in capsys.readouterr().out


# -- faults on S3 (slow) ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_reference(tmp_path_factory, sweep_cache):
    """The uninterrupted sweep of GRID on local disk."""
    tmp = tmp_path_factory.mktemp("s3-local-ref")
    env = dict(os.environ, RAY_AUTH_MODE="disabled", MLFLOW_DISABLE_TELEMETRY="true")
    r = subprocess.run(
        sweep_cmd(str(tmp / "results"), sweep_cache, *GRID),
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return tmp / "results" / "faults"


@pytest.mark.slow
def test_driver_sigkill_then_resume_on_s3_is_bit_identical_to_local_disk(
    local_reference, s3_server, s3_env, sweep_cache, tmp_path
):
    prefix = _prefix("resume")
    storage = f"s3://{s3_server.bucket}/{prefix}"
    env = sweep_env(s3_server, tmp_path / "home")
    log = tmp_path / "driver.log"
    proc = subprocess.Popen(
        sweep_cmd(storage, sweep_cache, *GRID, "--max-concurrent", "1"),
        cwd=tmp_path,
        env=env,
        stdout=open(log, "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_for(
            lambda: len(_rows(s3_server, prefix)) >= 1 and _mid_trajectory(s3_server, prefix),
            600,
            "a row and a trajectory in progress",
            proc,
            log,
        )
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its Ray processes, at once
        proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    done = _rows(s3_server, prefix)
    assert 1 <= len(done) < 3
    before = {k: v for k, v in s3_server.keys(f"{prefix}/faults/trajectories/").items()}
    etags = {k: s3_server.client().head_object(Bucket=s3_server.bucket, Key=k)["ETag"] for k in before}
    r = subprocess.run(
        sweep_cmd(storage, sweep_cache, *GRID, "--resume"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"3 trajectories ({len(done)} already done, {3 - len(done)} to run)" in r.stdout
    for k, etag in etags.items():  # finished rows were not rewritten
        assert s3_server.client().head_object(Bucket=s3_server.bucket, Key=k)["ETag"] == etag
    assert_same_rows(f"{storage}/faults", local_reference)
    db = local_mlflow_db(tmp_path / "home", s3_server.bucket, prefix)
    assert mlflow_children(db) == sorted(_rows(s3_server, prefix))  # each trajectory once


@pytest.mark.slow
def test_killed_worker_is_retried_from_its_state_object(local_reference, s3_server, s3_env, sweep_cache, tmp_path):
    import psutil

    prefix = _prefix("worker")
    storage = f"s3://{s3_server.bucket}/{prefix}"
    env = sweep_env(s3_server, tmp_path / "home")
    log = tmp_path / "driver.log"
    proc = subprocess.Popen(
        sweep_cmd(
            storage,
            sweep_cache,
            "--seeds",
            "1",
            "--t-end",
            "10",
            "--report-steps",
            str(REPORT),
            "--max-concurrent",
            "1",
        ),
        cwd=tmp_path,
        env=env,
        stdout=open(log, "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def workers():
        out = []
        for c in psutil.Process(proc.pid).children(recursive=True):
            try:
                if " ".join(c.cmdline()).startswith("ray::ImplicitFunc"):
                    out.append(c)
            except psutil.Error:
                pass
        return out

    try:
        tid, k_kill = _wait_for(
            lambda: _mid_trajectory(s3_server, prefix), 600, "a mid-trajectory state object", proc, log
        )
        ws = _wait_for(workers, 60, "the trial's worker process", proc, log)
        steps_before = {
            k: s3_server.client().head_object(Bucket=s3_server.bucket, Key=k)["ETag"]
            for k in s3_server.keys(f"{prefix}/faults/steps/")
            if int(k[: -len(".parquet")].rsplit("-", 1)[1]) <= k_kill // REPORT
        }
        os.kill(ws[0].pid, signal.SIGKILL)
        assert proc.wait(600) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert _rows(s3_server, prefix) == {tid}
    assert_same_rows(f"{storage}/faults", local_reference, trial_ids=[tid])
    assert any(k.endswith("error.txt") for k in s3_server.keys(f"{prefix}/faults/_ray/")), "Tune saw no failure"
    # retried from the state object, not from step 0: the chunks written before the kill were not rewritten
    assert steps_before and all(
        s3_server.client().head_object(Bucket=s3_server.bucket, Key=k)["ETag"] == e for k, e in steps_before.items()
    )
    db = local_mlflow_db(tmp_path / "home", s3_server.bucket, prefix)
    assert mlflow_children(db, status="FINISHED") == [tid]


@pytest.mark.slow
def test_sparsity_smoke_to_s3_matches_the_local_smoke_sweep(smoke_sweep, s3_server, s3_env, sweep_cache, tmp_path):
    """The issue's command line, `sweeps/sparsity.py --smoke --storage s3://bucket/sweeps`: into the bucket,
    the same rows as the local-disk smoke sweep."""
    from rsng.results import load

    prefix = _prefix("sweeps")
    r = subprocess.run(
        sweep_cmd(
            f"s3://{s3_server.bucket}/{prefix}",
            sweep_cache,
            "--smoke",
            script=ROOT / "sweeps" / "sparsity.py",
        ),
        cwd=tmp_path,
        env=sweep_env(s3_server, tmp_path / "home"),
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert not (tmp_path / "s3:").exists()
    got = load(f"s3://{s3_server.bucket}/{prefix}/sparsity-smoke").trajectories.set_index("trial_id").sort_index()
    ref = load(smoke_sweep[0]).trajectories.set_index("trial_id").sort_index()
    assert list(got.index) == list(ref.index) and (got["rel_l2"] == ref["rel_l2"]).all()
    db = local_mlflow_db(tmp_path / "home", s3_server.bucket, prefix, "sparsity-smoke")
    assert mlflow_children(db, "sparsity-smoke", status="FINISHED") == list(got.index)
