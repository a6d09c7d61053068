"""rsng.tracking against real MLflow stores (sqlite files and one real `mlflow server`); no mocks."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from rowfactory import synthetic_row

import rsng.results as R
from rsng.tracking import (
    ARTIFACT_NAME,
    HTTP_ENV_DEFAULTS,
    SyncReport,
    Tracker,
    default_tracking_uri,
    experiment_name,
    free_port,
    start_server,
    sync,
    validate_tracking_uri,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_row(trial_id: str, sweep: str = "demo", **kw) -> dict:
    values = dict(s=60, p=1400, n=64, dt=1e-3, t_end=0.05, seed=1, rcond=1e-4, lstsq="svd", steps=50)
    values.update(rel_l2=0.0123, rel_l2_t0=0.001, rel_l2_final=0.02, wall_s=12.5, compile_s=2.25, git_sha="c2b4069")
    return synthetic_row(T0, **{"sweep": sweep, "trial_id": trial_id, **values, **kw})


def write_series(sweep: Path, trial_id: str, k1: int, chunk_len: int = 20, scale: float = 1.0) -> None:
    """Steps 0..k1-1 in chunks of ``chunk_len`` (ls_residual NaN at step 0)."""
    for c, k0 in enumerate(range(0, k1, chunk_len)):
        k = np.arange(k0, min(k0 + chunk_len, k1))
        R.write_steps(
            sweep,
            trial_id,
            c,
            dict(
                step=k,
                t=k * 1e-3,
                rel_l2_t=scale * (1 + k) * 1e-3,
                ls_residual=np.where(k == 0, np.nan, 1e-6 * (1 + k)),
                wall_s_cumulative=k * 0.01,
            ),
        )


#: trial id -> (status, number of stored steps or 0)
SWEEP_TRIALS = {"t-ok-a": ("ok", 51), "t-ok-b": ("ok", 30), "t-div": ("diverged", 17), "t-fail": ("failed", 0)}


@pytest.fixture
def sweep(tmp_path) -> Path:
    """A sweep folder: two ok trajectories, one diverged (rel_l2 null, rel_l2_final inf), one failed."""
    d = tmp_path / "runs" / "demo"
    R.write_sweep_meta(
        d,
        {
            "name": "demo",
            "grid": {"sampler": ["uniform", "leverage"], "s": [60, 120], "problem": {"name": "allen_cahn", "n": 64}},
            "fixed": {"dt": 1e-3, "t_end": 0.05},
            "description": "a small demo sweep",
            "versions": {"rsng_version": "0.1.0", "git_sha": "c2b4069", "ray_version": None},
        },
    )
    R.write_trajectory(d, make_row("t-ok-a"))
    write_series(d, "t-ok-a", 51)
    R.write_trajectory(
        d,
        make_row(
            "t-ok-b",
            sampler="leverage",
            s=120,
            seed=2,
            rel_l2=0.5,
            started_at=T0 + timedelta(minutes=1),
            finished_at=T0 + timedelta(minutes=2),
        ),
    )
    write_series(d, "t-ok-b", 30, chunk_len=10, scale=3.0)
    R.write_trajectory(
        d,
        make_row(
            "t-div",
            status="diverged",
            rel_l2=None,
            rel_l2_final=float("inf"),
            steps=17,
            diverged_step=17,
            started_at=T0 + timedelta(minutes=3),
            finished_at=T0 + timedelta(minutes=4),
        ),
    )
    write_series(d, "t-div", 17)
    R.write_trajectory(
        d,
        make_row(
            "t-fail",
            status="failed",
            rel_l2=None,
            rel_l2_t0=None,
            rel_l2_final=None,
            compile_s=None,
            steps=0,
            error_message="RuntimeError: boom",
            started_at=T0 + timedelta(minutes=5),
            finished_at=T0 + timedelta(minutes=5),
        ),
    )
    return d


# -- helpers ------------------------------------------------------------------------------------------
def client_for(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def all_runs(client, name: str = "demo", view: str = "active"):
    from mlflow.entities import ViewType

    exp = client.get_experiment_by_name(experiment_name(name))
    assert exp is not None
    vt = {"active": ViewType.ACTIVE_ONLY, "all": ViewType.ALL}[view]
    return list(client.search_runs([exp.experiment_id], run_view_type=vt, max_results=1000))


def split(runs):
    parents = [r for r in runs if r.data.tags.get("rsng.kind") == "parent"]
    children = {r.data.tags["rsng.trial_id"]: r for r in runs if "rsng.trial_id" in r.data.tags}
    return parents, children


def check_synced_store(uri: str, dl: Path) -> None:
    """The runs of the `sweep` fixture, fully logged: one parent, one child per trajectory."""
    client = client_for(uri)
    runs = all_runs(client)
    parents, children = split(runs)
    assert len(parents) == 1 and len(runs) == 1 + len(SWEEP_TRIALS)
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name == "demo"
    assert parent.data.params["grid.sampler"] == '["uniform", "leverage"]'
    assert parent.data.params["grid.problem.n"] == "64"
    assert parent.data.params["fixed.dt"] == "0.001"
    assert parent.data.tags["mlflow.note.content"] == "a small demo sweep"
    assert parent.data.tags["mlflow.source.git.commit"] == "c2b4069"
    assert parent.data.tags["rsng_version"] == "0.1.0" and "ray_version" not in parent.data.tags
    assert sorted(children) == sorted(SWEEP_TRIALS)
    for tid, (status, nsteps) in SWEEP_TRIALS.items():
        run = children[tid]
        rid = run.info.run_id
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["rsng.status"] == status
        assert run.info.status == ("FINISHED" if status == "ok" else "FAILED"), tid
        assert run.data.params["problem"] == "allen_cahn" and run.data.params["seed"] in ("1", "2")
        assert set(run.data.params) >= {
            "sampler",
            "s",
            "p",
            "n",
            "dt",
            "t_end",
            "precision",
            "rcond",
            "lstsq",
            "integrator",
            "init_seed",
            "reference",
            "rsng_version",
            "jax_version",
        }
        m = run.data.metrics
        assert ("rel_l2" in m) == (status == "ok")
        assert m["wall_s"] == 12.5
        artifacts = [f.path for f in client.list_artifacts(rid)]
        if nsteps:
            rel = client.get_metric_history(rid, "rel_l2_t")
            assert sorted(x.step for x in rel) == list(range(nsteps))
            res = client.get_metric_history(rid, "ls_residual")
            assert sorted(x.step for x in res) == list(range(1, nsteps))  # NaN at step 0 is skipped
            assert artifacts == [ARTIFACT_NAME]
            dst = dl / rid
            dst.mkdir(parents=True, exist_ok=True)
            local = Path(client.download_artifacts(rid, ARTIFACT_NAME, dst_path=str(dst)))
            assert local.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            assert artifacts == []
            assert client.get_metric_history(rid, "rel_l2_t") == []
    assert children["t-ok-b"].data.params["sampler"] == "leverage"
    assert children["t-ok-b"].info.run_name == "allen_cahn-leverage-s120-seed2"
    assert children["t-div"].data.tags["rsng.error_message"] == "diverged at step 17"
    assert children["t-div"].data.metrics["rel_l2_final"] > 1e300  # inf, stored clipped to float max
    assert children["t-fail"].data.tags["rsng.error_message"] == "RuntimeError: boom"
    assert "rel_l2_t0" not in children["t-fail"].data.metrics
    # the step series keeps solver steps and wall-clock timestamps
    hist = sorted(client.get_metric_history(children["t-ok-a"].info.run_id, "rel_l2_t"), key=lambda x: x.step)
    assert math.isclose(hist[10].value, 11e-3)
    t0_ms = int(T0.timestamp() * 1000)
    assert hist[10].timestamp == t0_ms + 100  # 10 steps x 0.01 s
    assert children["t-ok-a"].info.start_time == t0_ms
    assert children["t-ok-a"].info.end_time == t0_ms + 15_000
    assert not [r for r in all_runs(client) if r.info.status == "RUNNING"]


# -- tests --------------------------------------------------------------------------------------------
def test_import_is_cheap():
    code = (
        "import sys, rsng.tracking; heavy = [m for m in ('mlflow', 'pandas', 'pyarrow', 'matplotlib', 'jax', "
        "'ray') if m in sys.modules]; print(heavy); sys.exit(bool(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
        ("sqlite:////abs/path/mlflow.db", "sqlite:////abs/path/mlflow.db"),
        ("  SQLite:///x.db ", "sqlite:///x.db"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("http://mlflow.internal", "http://mlflow.internal"),
        ("https://mlflow.example.org/prefix", "https://mlflow.example.org/prefix"),
    ],
)
def test_validate_tracking_uri_accepts(uri, expected):
    assert validate_tracking_uri(uri) == expected


@pytest.mark.parametrize(
    "uri, fragment",
    [
        ("ftp://x", "unsupported scheme 'ftp'"),
        ("file:./mlruns", "unsupported scheme 'file'"),
        ("file:///tmp/mlruns", "unsupported scheme 'file'"),
        ("databricks", "no scheme"),
        ("./mlruns", "no scheme"),
        ("", "no scheme"),
        ("sqlite://", "not a sqlite file URI"),
        ("sqlite:///", "not a sqlite file URI"),
        ("sqlite:mlflow.db", "not a sqlite file URI"),
        ("http://", "no host"),
        ("http:host:80", "no host"),
        ("http://host:notaport", "bad port"),
        ("postgresql://u@h/db", "unsupported scheme 'postgresql'"),
    ],
)
def test_validate_tracking_uri_refuses(uri, fragment):
    with pytest.raises(ValueError) as e:
        validate_tracking_uri(uri)
    msg = str(e.value)
    assert msg.startswith("--mlflow-uri: ") and fragment in msg
    assert msg.endswith("accepted: sqlite:///PATH, http://HOST:PORT, https://…")


def test_validate_tracking_uri_exact_message():
    with pytest.raises(
        ValueError,
        match=r"^--mlflow-uri: unsupported scheme 'ftp'; accepted: sqlite:///PATH, "
        r"http://HOST:PORT, https://…$",
    ):
        validate_tracking_uri("ftp://x")


def test_default_tracking_uri(tmp_path):
    uri = default_tracking_uri(tmp_path / "runs" / "sw")
    assert uri == f"sqlite:///{(tmp_path / 'runs' / 'sw').resolve()}/mlflow.db"
    assert uri.startswith("sqlite:////") and validate_tracking_uri(uri) == uri


def test_sync_sqlite_idempotent(sweep, make_db):
    make_db(sweep / "mlflow.db")  # the default store of the sweep, pre-migrated
    warnings = []
    report = sync(sweep, warn=warnings.append)
    assert report == SyncReport(created=4, skipped=0, failed=0) and report.ok, warnings
    assert not warnings
    uri = default_tracking_uri(sweep)
    check_synced_store(uri, sweep.parent / "dl")
    exp = client_for(uri).get_experiment_by_name("rsng/demo")
    assert exp.artifact_location == str((sweep / "mlflow-artifacts").resolve())
    assert (sweep / "mlflow-artifacts").is_dir()

    again = sync(sweep, warn=warnings.append)
    assert again == SyncReport(created=0, skipped=4, failed=0)
    assert not warnings
    check_synced_store(uri, sweep.parent / "dl2")  # no duplicates, parent FINISHED again, nothing RUNNING


def test_resume_replaces_interrupted_and_retried_children(sweep, make_db):
    """A child left RUNNING by an interrupted sync is recreated; so is one of an older attempt of a
    retried trial; a live Tracker reuses the parent run and logs idempotently."""
    uri = make_db()
    warnings = []
    tr = Tracker(uri, "demo", sweep, grid={"s": [60]}, warn=warnings.append)
    assert tr.start() and tr.available
    client = client_for(uri)
    # an interrupted sync: child created, never ended
    stale = client.create_run(
        tr.experiment_id, tags={"mlflow.parentRunId": tr.parent_run_id, "rsng.trial_id": "t-ok-a"}
    )
    res = R.load(sweep)
    rows = {r["trial_id"]: r for r in res.trajectories.to_dict("records")}
    steps = R.load_steps(sweep, trial_ids="t-ok-a")
    assert tr.log_trajectory(rows["t-ok-a"], steps) is True
    assert client.get_run(stale.info.run_id).info.lifecycle_stage == "deleted"
    assert tr.log_trajectory(rows["t-ok-a"], steps) is False  # already there
    # the driver's own row dict (python datetimes) matches the loaded row (pandas Timestamps)
    assert tr.log_trajectory(make_row("t-ok-a"), None) is False
    # t-fail was retried and now succeeded: the FAILED child of the old attempt is replaced
    assert tr.log_trajectory(rows["t-fail"], None) is True
    retried = make_row("t-fail", finished_at=T0 + timedelta(hours=1))
    R.write_trajectory(sweep, retried)
    assert tr.log_trajectory(retried, None) is True
    # ids that cannot be quoted in an MLflow filter are matched in Python
    odd = make_row('it\'s "odd" `x`', started_at=T0 - timedelta(days=1))
    assert tr.log_trajectory(odd, None) is True and tr.log_trajectory(odd, None) is False
    client.delete_run(tr._children(odd["trial_id"])[0].info.run_id)
    # a bad row is refused without taking the store down
    assert tr.log_trajectory({"problem": "x"}, None) is False
    assert tr.available and len(warnings) == 1
    assert warnings.pop().startswith(f"MLflow could not log trial None ({uri}): KeyError")
    tr.finish()
    assert not warnings
    # a duplicate left RUNNING by a concurrent writer
    dup = client.create_run(tr.experiment_id, tags={"mlflow.parentRunId": tr.parent_run_id, "rsng.trial_id": "t-ok-a"})
    # resume: a second Tracker finds the same parent (params unchanged), sync completes the rest
    report = sync(sweep, uri, warn=warnings.append)
    assert report == SyncReport(created=2, skipped=2, failed=0), warnings
    assert client.get_run(dup.info.run_id).info.lifecycle_stage == "deleted"
    assert len(all_runs(client)) == 1 + len(SWEEP_TRIALS)
    parents, children = split(all_runs(client))
    assert len(parents) == 1 and parents[0].info.run_id == tr.parent_run_id
    assert parents[0].info.status == "FINISHED" and parents[0].data.params["grid.s"] == "[60]"
    assert sorted(children) == sorted(SWEEP_TRIALS)
    assert children["t-fail"].data.tags["rsng.status"] == "ok" and children["t-fail"].info.status == "FINISHED"
    assert not [r for r in all_runs(client) if r.info.status == "RUNNING"]


def test_unreachable_server_fails_soft_then_sync_to_sqlite(sweep, make_db):
    port = free_port()  # nothing listens there
    warnings = []
    tr = Tracker(f"http://127.0.0.1:{port}", "demo", sweep, warn=warnings.append)
    t = time.monotonic()
    assert tr.start() is False
    row = make_row("t-ok-a")
    assert tr.log_trajectory(row, None) is False  # within the retry interval: skipped, silently
    assert tr.finish() is False
    assert tr.available is False and tr.last_error is not None and tr.retry_delay_s == 30
    with tr:  # the context manager fails soft too (an explicit start() always tries)
        pass
    assert tr.retry_delay_s == 60  # backs off on consecutive failures
    assert time.monotonic() - t < 15
    assert all(os.environ[k] == v for k, v in HTTP_ENV_DEFAULTS.items())  # short HTTP timeouts
    assert len(warnings) == 1, warnings
    msg = warnings[0]
    assert msg.startswith(f"MLflow unavailable (http://127.0.0.1:{port}): ")
    assert f"run `rsng mlflow-sync {sweep}` later" in msg and "Parquet results are complete" in msg

    # retries are cheap and warn once per call site
    tr.retry_interval_s = 0
    assert tr.log_trajectory(row, None) is False and tr.log_trajectory(row, None) is False
    assert len(warnings) == 2 and time.monotonic() - t < 15

    report = sync(sweep, make_db(), warn=warnings.append)
    assert report == SyncReport(created=4, skipped=0, failed=0) and len(warnings) == 2
    failed = sync(sweep, f"http://127.0.0.1:{port}", warn=warnings.append)
    assert failed == SyncReport(created=0, skipped=0, failed=4) and len(warnings) == 3


@pytest.mark.mlflow_server
def test_http_server_sync_then_server_dies(sweep, make_db, tmp_path):
    backend = make_db(tmp_path / "server" / "mlflow.db")
    t = time.monotonic()
    with start_server(backend, tmp_path / "server" / "artifacts") as server:
        print(f"mlflow server healthy after {server.started_in_s:.1f} s")
        assert server.uri == f"http://127.0.0.1:{server.port}" and server.running
        warnings = []
        report = sync(sweep, server.uri, warn=warnings.append)
        assert report == SyncReport(created=4, skipped=0, failed=0), warnings
        check_synced_store(server.uri, tmp_path / "dl")
        assert sync(sweep, server.uri, warn=warnings.append) == SyncReport(created=0, skipped=4, failed=0)
        assert list((tmp_path / "server" / "artifacts").rglob(ARTIFACT_NAME))  # proxied artifact storage

        live = Tracker(server.uri, "demo", sweep, warn=warnings.append)
        assert live.start() and not warnings
        server.stop()
        assert not server.running
        t_dead = time.monotonic()
        row = make_row("t-late", started_at=T0 + timedelta(hours=2), finished_at=T0 + timedelta(hours=3))
        steps = R.load_steps(sweep, trial_ids="t-ok-b")
        assert live.log_trajectory(row, steps) is False
        assert live.log_trajectory(row, steps) is False
        assert live.finish() is False
        assert time.monotonic() - t_dead < 15
        assert len(warnings) == 2 and all(w.startswith(f"MLflow unavailable ({server.uri})") for w in warnings)
    print(f"server test body {time.monotonic() - t:.1f} s")
