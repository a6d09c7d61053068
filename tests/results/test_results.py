"""Parquet results layer: real files in tmp_path, no mocks."""

from __future__ import annotations

import math
import os
import select
import signal
import subprocess
import sys
import textwrap
import uuid
import warnings
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rowfactory import synthetic_row

import rsng.results as R
from rsng.results import (
    SCHEMA_VERSION,
    STEPS_COLUMNS,
    TRAJECTORY_COLUMNS,
    FutureSchemaError,
    ResultsError,
    ResultsWarning,
)

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def make_row(trial_id: str = "trial_0001", sweep: str = "sw", **kw) -> dict:
    values = dict(s=120, p=1400, n=64, dt=1e-3, t_end=1.0, seed=3, rcond=1e-4, lstsq="svd", steps=1000)
    values.update(rel_l2=0.0123, rel_l2_t0=0.001, rel_l2_final=0.02, wall_s=12.5, compile_s=2.25, git_sha="c2b4069")
    return synthetic_row(T0, **{"sweep": sweep, "trial_id": trial_id, **values, **kw})


def make_steps(k0: int, k1: int, scale: float = 1.0) -> dict:
    k = np.arange(k0, k1)
    return dict(
        step=k,
        t=k * 1e-3,
        rel_l2_t=scale * (1 + k) * 1e-3,
        ls_residual=np.where(k == 0, np.nan, 1e-6),
        wall_s_cumulative=k * 0.01,
    )


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def check_trajectory_dtypes(df: pd.DataFrame) -> None:
    assert list(df.columns) == [c.name for c in TRAJECTORY_COLUMNS]
    for c in TRAJECTORY_COLUMNS:
        dt = df[c.name].dtype
        if c.name in R.CATEGORICAL_COLUMNS:
            assert isinstance(dt, pd.CategoricalDtype), c.name
        elif c.type == "int32":
            assert dt == np.int32, c.name
        elif c.type == "int64":
            assert dt == (pd.Int64Dtype() if c.nullable else np.int64), c.name
        elif c.type == "float64":
            assert dt == np.float64, c.name
        elif c.type == "timestamp":
            assert isinstance(dt, pd.DatetimeTZDtype) and str(dt.tz) == "UTC" and dt.unit == "us", c.name
        else:
            assert pd.api.types.is_string_dtype(dt) and not isinstance(dt, pd.CategoricalDtype), c.name
    assert list(df["status"].cat.categories) == ["ok", "diverged", "failed", "stopped"]


def check_steps_dtypes(df: pd.DataFrame) -> None:
    assert list(df.columns) == ["sweep"] + [c.name for c in STEPS_COLUMNS]
    assert isinstance(df["sweep"].dtype, pd.CategoricalDtype)
    assert pd.api.types.is_string_dtype(df["trial_id"].dtype)
    assert df["step"].dtype == np.int64
    for name in ("t", "rel_l2_t", "ls_residual", "wall_s_cumulative"):
        assert df[name].dtype == np.float64


# -- round trips ------------------------------------------------------------------------------------
def test_round_trip_rows_and_steps(tmp_path):
    sweep = tmp_path / "sw"
    ok = make_row("a")
    div = make_row(
        "b",
        status="diverged",
        rel_l2=float("nan"),
        rel_l2_final=float("inf"),
        diverged_step=412,
        steps=411,
        sampler="leverage",
    )
    fail = make_row(
        "c",
        status="failed",
        rel_l2=0.5,
        rel_l2_t0=None,
        rel_l2_final=None,
        compile_s=None,
        error_message="Traceback: boom",
        reference=None,
        git_sha=None,
        steps=0,
    )
    for r in (ok, div, fail):
        p = R.write_trajectory(sweep, r)
        assert p.parent == sweep / "trajectories" and p.name == f"{r['trial_id']}.parquet"
    R.write_steps(sweep, "a", 0, make_steps(0, 50))
    R.write_steps(sweep, "a", 1, make_steps(50, 101))
    R.write_steps(sweep, "b", 0, make_steps(0, 10))
    R.write_sweep_meta(sweep, {"grid": {"s": [60, 120]}, "git_sha": "c2b4069", "created_at": T0})

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = R.load(sweep)
    traj, steps = res.trajectories, res.steps
    check_trajectory_dtypes(traj)
    check_steps_dtypes(steps)
    assert res.skipped == [] and res.sweeps == {"sw": res.meta}
    assert res.meta["grid"] == {"s": [60, 120]} and res.meta["schema_version"] == SCHEMA_VERSION
    assert res.meta["created_at"] == T0.isoformat()

    traj = traj.set_index("trial_id")
    assert list(traj.index) == ["a", "b", "c"]
    a, b, c = traj.loc["a"], traj.loc["b"], traj.loc["c"]
    assert a["rel_l2"] == 0.0123 and a["s"] == 120 and a["dt"] == 1e-3 and a["status"] == "ok"
    assert a["started_at"] == pd.Timestamp(T0) and a["finished_at"] - a["started_at"] == pd.Timedelta(seconds=15)
    assert pd.isna(a["diverged_step"]) and a["schema_version"] == SCHEMA_VERSION
    assert b["status"] == "diverged" and pd.isna(b["rel_l2"]) and b["diverged_step"] == 412
    assert math.isinf(b["rel_l2_final"]) and b["sampler"] == "leverage"
    # rel_l2 is null whenever the status is not ok, whatever the writer passed
    assert c["status"] == "failed" and pd.isna(c["rel_l2"]) and pd.isna(c["compile_s"])
    assert c["error_message"] == "Traceback: boom" and pd.isna(c["reference"]) and pd.isna(c["git_sha"])

    assert len(steps) == 111
    sa = steps[steps.trial_id == "a"]
    np.testing.assert_array_equal(sa["step"], np.arange(101))
    np.testing.assert_allclose(sa["rel_l2_t"], make_steps(0, 101)["rel_l2_t"])
    assert math.isnan(sa["ls_residual"].iloc[0]) and sa["ls_residual"].iloc[1] == 1e-6
    assert set(steps["sweep"]) == {"sw"}

    # the raw files carry the exact Arrow schema, one row group each
    for p in (sweep / "trajectories").iterdir():
        f = pq.ParquetFile(p)
        assert f.metadata.num_row_groups == 1
        assert f.schema_arrow.remove_metadata().equals(R.trajectory_schema().remove_metadata())
        assert f.schema_arrow.metadata[b"rsng.schema_version"] == str(SCHEMA_VERSION).encode()
    f = pq.ParquetFile(sweep / "steps" / "a-000001.parquet")
    assert f.metadata.num_row_groups == 1 and f.metadata.num_rows == 51
    assert [x.name for x in f.schema_arrow] == [c.name for c in STEPS_COLUMNS]

    assert R.read_sweep_meta(sweep) == res.meta
    only = R.load(sweep, with_steps=False)
    assert len(only.trajectories) == 3 and only.steps.empty


def test_retry_overwrites(tmp_path):
    sweep = tmp_path / "sw"
    R.write_trajectory(sweep, make_row("t1", rel_l2=0.5))
    R.write_trajectory(sweep, make_row("t1", rel_l2=0.25))
    R.write_steps(sweep, "t1", 0, make_steps(0, 20, scale=1.0))
    R.write_steps(sweep, "t1", 0, make_steps(0, 20, scale=2.0))
    assert visible(sweep / "trajectories") == ["t1.parquet"]
    assert visible(sweep / "steps") == ["t1-000000.parquet"]
    assert hidden(sweep / "trajectories") == [] and hidden(sweep / "steps") == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = R.load(sweep)
    assert len(res.trajectories) == 1 and res.trajectories["rel_l2"].iloc[0] == 0.25
    np.testing.assert_allclose(res.steps["rel_l2_t"], make_steps(0, 20, scale=2.0)["rel_l2_t"])


def test_unsafe_trial_ids_get_distinct_safe_names(tmp_path):
    sweep = tmp_path / "sw"
    ids = ["../evil", "_x", "x", ".hidden", "a/b", "a_b", "ü" * 200]
    for i in ids:
        p = R.write_trajectory(sweep, make_row(i))
        assert p.parent == sweep / "trajectories" and not p.name.startswith((".", "_"))
        R.write_steps(sweep, i, 0, make_steps(0, 3))
    assert len(visible(sweep / "trajectories")) == len(ids) and len(visible(sweep / "steps")) == len(ids)
    res = R.load(sweep)
    assert sorted(res.trajectories["trial_id"]) == sorted(ids)
    assert len(res.steps) == 3 * len(ids)
    assert R.safe_name("a/b") == R.safe_name("a/b") != R.safe_name("a_b") == "a_b"


# -- hidden, corrupt and foreign files ---------------------------------------------------------------
def test_hidden_temp_files_are_ignored(tmp_path):
    sweep = tmp_path / "sw"
    R.write_trajectory(sweep, make_row("t1"))
    R.write_steps(sweep, "t1", 0, make_steps(0, 5))
    for folder in (sweep / "trajectories", sweep / "steps"):
        (folder / ".tmp-xyz.parquet").write_bytes(os.urandom(300))
        (folder / "_SUCCESS").write_bytes(b"")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = R.load(sweep, strict=True)
    assert len(res.trajectories) == 1 and len(res.steps) == 5 and res.skipped == []


def test_corrupt_and_foreign_files_are_skipped_or_raise_in_strict_mode(tmp_path):
    sweep = tmp_path / "sw"
    R.write_trajectory(sweep, make_row("good"))
    R.write_steps(sweep, "good", 0, make_steps(0, 5))
    tdir, sdir = sweep / "trajectories", sweep / "steps"
    (tdir / "garbage.parquet").write_bytes(os.urandom(2000))
    pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}).to_parquet(tdir / "foreign.parquet")
    # right column names, wrong types
    wrong = pd.DataFrame({c.name: ["zz"] for c in TRAJECTORY_COLUMNS})
    wrong.to_parquet(tdir / "wrongtypes.parquet")
    pd.DataFrame({"x": [1.0]}).to_parquet(sdir / "other-000000.parquet")
    # a steps file in the trajectories folder is foreign there
    R.write_steps(sweep, "misplaced", 0, make_steps(0, 2))
    os.replace(sdir / "misplaced-000000.parquet", tdir / "misplaced.parquet")

    with pytest.warns(ResultsWarning) as rec:
        res = R.load(sweep)
    messages = "\n".join(str(w.message) for w in rec)
    for name in (
        "garbage.parquet",
        "foreign.parquet",
        "wrongtypes.parquet",
        "other-000000.parquet",
        "misplaced.parquet",
    ):
        assert name in messages
    skipped = {Path(f).name: reason for f, reason in res.skipped}
    assert set(skipped) == {
        "garbage.parquet",
        "foreign.parquet",
        "wrongtypes.parquet",
        "other-000000.parquet",
        "misplaced.parquet",
    }
    assert "not a readable Parquet file" in skipped["garbage.parquet"]
    assert "missing columns" in skipped["foreign.parquet"]
    assert "column types" in skipped["wrongtypes.parquet"]
    assert "steps file" in skipped["misplaced.parquet"]
    assert list(res.trajectories["trial_id"]) == ["good"] and len(res.steps) == 5
    check_trajectory_dtypes(res.trajectories)

    # strict: each bad file in turn raises, naming it (files are read in sorted order)
    for path in [
        tdir / n for n in ("foreign.parquet", "garbage.parquet", "misplaced.parquet", "wrongtypes.parquet")
    ] + [sdir / "other-000000.parquet"]:
        with pytest.raises(ResultsError, match=path.name) as exc:
            R.load(sweep, strict=True)
        assert str(path) in str(exc.value) and type(exc.value) is ResultsError
        path.unlink()
    assert len(R.load(sweep, strict=True).trajectories) == 1


def test_corrupt_sweep_json_is_skipped(tmp_path):
    sweep = tmp_path / "sw"
    R.write_trajectory(sweep, make_row("t1"))
    (sweep / "sweep.json").write_text("{not json")
    with pytest.warns(ResultsWarning, match="sweep.json"):
        res = R.load(sweep)
    assert res.meta is None and len(res.trajectories) == 1
    with pytest.raises(ResultsError, match="sweep.json"):
        R.load(sweep, strict=True)


def test_version_1_files_load_with_solver_reference(tmp_path):
    """Schema 1 → 2 added ``solver``; rows written before it came from the full-Jacobian solver."""
    import pyarrow as pa

    sweep = tmp_path / "sw"
    R.write_trajectory(sweep, make_row("t1"))
    path = R.write_trajectory(sweep, make_row("old"))
    table = pq.read_table(path)
    v1 = table.drop_columns(["solver", "batch_size"]).set_column(
        0, "schema_version", pa.array([1] * table.num_rows, pa.int32())
    )
    v1 = v1.replace_schema_metadata({**table.schema.metadata, b"rsng.schema_version": b"1"})
    pq.write_table(v1, sweep / "trajectories" / "old.parquet")
    res = R.load(sweep, strict=True)
    rows = res.trajectories.set_index("trial_id")
    assert rows.loc["old", "solver"] == "full-jacobian" and rows.loc["t1", "solver"] == "fast"
    assert rows.loc["old", "batch_size"] == 1
    # the migrated columns take their schema places (not appended at the end), like a current file's
    assert list(res.trajectories.columns) == [c.name for c in TRAJECTORY_COLUMNS]


def test_future_schema_version_is_refused(tmp_path):
    sweep = tmp_path / "sw"
    path = R.write_trajectory(sweep, make_row("t1"))
    table = pq.read_table(path)
    newer = table.replace_schema_metadata({"rsng.schema_version": str(SCHEMA_VERSION + 1)})
    pq.write_table(newer, sweep / "trajectories" / "t2.parquet")
    with pytest.raises(FutureSchemaError, match=r"t2\.parquet.*upgrade rsng"):
        R.load(sweep)  # refused even when not strict
    (sweep / "trajectories" / "t2.parquet").unlink()
    R.write_sweep_meta(sweep, {"schema_version": SCHEMA_VERSION + 1})
    with pytest.raises(FutureSchemaError, match="sweep.json"):
        R.load(sweep)


def test_duplicate_steps_across_chunks_keep_last(tmp_path):
    sweep = tmp_path / "sw"
    R.write_steps(sweep, "t1", 0, make_steps(0, 6, scale=1.0))
    R.write_steps(sweep, "t1", 1, make_steps(4, 10, scale=3.0))
    with pytest.warns(ResultsWarning, match="2 duplicate"):
        steps = R.load(sweep).steps
    np.testing.assert_array_equal(steps["step"], np.arange(10))
    expect = np.r_[make_steps(0, 4)["rel_l2_t"], make_steps(4, 10, scale=3.0)["rel_l2_t"]]
    np.testing.assert_allclose(steps["rel_l2_t"], expect)


def test_steps_come_sorted_by_trajectory_then_step_whatever_the_file_order(tmp_path):
    sweep = tmp_path / "sw"
    R.write_steps(sweep, "t2", 1, make_steps(5, 8))
    R.write_steps(sweep, "t10", 0, make_steps(0, 3))
    R.write_steps(sweep, "t2", 0, make_steps(0, 5))
    steps = R.load(sweep).steps
    assert list(zip(steps["trial_id"].astype(str), steps["step"])) == [("t10", k) for k in range(3)] + [
        ("t2", k) for k in range(8)
    ]  # string order of the ids (as before: pandas' sorted categories)


# -- validation -------------------------------------------------------------------------------------
def test_row_validation_names_bad_keys(tmp_path):
    sweep = tmp_path / "sw"
    row = make_row()
    del row["rel_l2_t0"]
    with pytest.raises(ValueError, match="missing keys: rel_l2_t0"):
        R.write_trajectory(sweep, row)
    with pytest.raises(ValueError, match="unknown keys: foo"):
        R.write_trajectory(sweep, make_row(foo=1))
    with pytest.raises(ValueError, match="status"):
        R.write_trajectory(sweep, make_row(status="done"))
    with pytest.raises(ValueError, match="'s' must be an integer"):
        R.write_trajectory(sweep, make_row(s="10"))
    with pytest.raises(ValueError, match="'depth' is out of int32 range"):
        R.write_trajectory(sweep, make_row(depth=2**40))
    with pytest.raises(ValueError, match="timezone-aware"):
        R.write_trajectory(sweep, make_row(started_at=datetime(2025, 1, 1)))
    with pytest.raises(ValueError, match="'problem' must not be null"):
        R.write_trajectory(sweep, make_row(problem=None))
    with pytest.raises(ValueError, match="'rel_l2' is required"):
        R.write_trajectory(sweep, make_row(rel_l2=None))
    with pytest.raises(ValueError, match="schema_version"):
        R.write_trajectory(sweep, make_row(schema_version=SCHEMA_VERSION + 1))
    with pytest.raises(ValueError, match="missing columns: ls_residual; unknown columns: lsres"):
        cols = make_steps(0, 3)
        cols["lsres"] = cols.pop("ls_residual")
        R.write_steps(sweep, "t1", 0, cols)
    with pytest.raises(ValueError, match="different lengths"):
        R.write_steps(sweep, "t1", 0, {**make_steps(0, 3), "t": [0.0]})
    with pytest.raises(ValueError, match="chunk"):
        R.write_steps(sweep, "t1", -1, make_steps(0, 3))
    # numpy scalars are accepted
    R.write_trajectory(sweep, make_row(s=np.int64(7), dt=np.float32(0.5), rel_l2=np.float64(0.1)))
    # nothing half-written is left behind by refused writes
    assert visible(sweep / "trajectories") == ["trial_0001.parquet"] and hidden(sweep / "trajectories") == []
    assert not (sweep / "steps").exists()


# -- layout ------------------------------------------------------------------------------------------
def test_storage_root_with_two_sweeps_concatenates(tmp_path):
    root = tmp_path / "storage"
    for sw in ("s1", "s2"):
        R.write_sweep_meta(root / sw, {"name": sw})
        for i in range(2):
            R.write_trajectory(root / sw, make_row(f"t{i}", sweep=sw, seed=i))
            R.write_steps(root / sw, f"t{i}", 0, make_steps(0, 4))
    (root / ".hidden_sweep").mkdir()
    (root / "not_a_sweep").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = R.load(root)
    check_trajectory_dtypes(res.trajectories)
    check_steps_dtypes(res.steps)
    assert len(res.trajectories) == 4 and len(res.steps) == 16
    assert sorted(res.trajectories["sweep"].cat.categories) == ["s1", "s2"]
    assert list(zip(res.trajectories["sweep"], res.trajectories["trial_id"])) == [
        ("s1", "t0"),
        ("s1", "t1"),
        ("s2", "t0"),
        ("s2", "t1"),
    ]
    assert res.meta is None and set(res.sweeps) == {"s1", "s2"} and res.sweeps["s2"]["name"] == "s2"
    assert res.steps.groupby("sweep", observed=True).size().to_dict() == {"s1": 8, "s2": 8}
    assert len(R.load(root / "s1").trajectories) == 2


def test_empty_and_missing_paths(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    res = R.load(empty)
    assert res.trajectories.empty and res.steps.empty and res.meta is None and res.skipped == []
    check_trajectory_dtypes(res.trajectories)
    check_steps_dtypes(res.steps)
    R.write_sweep_meta(tmp_path / "only_meta", {"grid": {}})
    res = R.load(tmp_path / "only_meta")
    assert res.trajectories.empty and res.meta["grid"] == {}
    check_trajectory_dtypes(res.trajectories)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        R.load(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):
        R.load_steps(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):
        R.read_sweep_meta(empty)


def test_load_steps_reads_only_requested_trials(tmp_path):
    sweep = tmp_path / "sw"
    R.write_steps(sweep, "a", 0, make_steps(0, 3))
    R.write_steps(sweep, "a", 1, make_steps(3, 6))
    R.write_steps(sweep, "a-000001", 0, make_steps(0, 2))  # shares the "a-" name prefix
    R.write_steps(sweep, "b", 0, make_steps(0, 4))
    (sweep / "steps" / "c-000000.parquet").write_bytes(b"garbage")  # never opened for "a"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = R.load_steps(sweep, ["a"])
        one = R.load_steps(sweep, "a-000001")
    check_steps_dtypes(a)
    assert set(a["trial_id"]) == {"a"} and list(a["step"]) == list(range(6))
    assert set(one["trial_id"]) == {"a-000001"} and len(one) == 2
    with pytest.warns(ResultsWarning, match="c-000000.parquet"):
        everything = R.load_steps(sweep)
    assert len(everything) == 12
    assert R.load_steps(sweep, ["zzz"]).empty


# -- atomicity ---------------------------------------------------------------------------------------
CHILD = textwrap.dedent("""
    import io, sys, time
    import numpy as np
    import rsng.core.files as files
    import rsng.results.store as store

    class SlowFile(io.FileIO):
        def write(self, b):
            n = super().write(b)
            if self.tell() > (1 << 20):
                print("PARTIAL " + str(self.name), flush=True)
                time.sleep(120)
            return n

    files.open = lambda path, mode="r": SlowFile(path, mode)  # the local atomic write's open
    rng = np.random.default_rng(0)
    m = 400_000
    store.write_steps(sys.argv[1], "t1", 1, dict(step=np.arange(m), t=rng.random(m), rel_l2_t=rng.random(m),
                      ls_residual=rng.random(m), wall_s_cumulative=rng.random(m)))
    print("FINISHED", flush=True)
""")


def test_killed_writer_leaves_no_visible_partial_file(tmp_path):
    sweep = tmp_path / "sw"
    R.write_trajectory(sweep, make_row("t1"))
    R.write_steps(sweep, "t1", 0, make_steps(0, 10))
    R.write_steps(sweep, "t1", 1, make_steps(10, 13))  # the old version of the chunk being rewritten
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(sweep)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith("PARTIAL"):
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"child did not stall mid-write: {line + out!r}\n{err}")
        tmp_name = Path(line.split(" ", 1)[1].strip()).name
        assert tmp_name.startswith(".") and (sweep / "steps" / tmp_name).stat().st_size > (1 << 20)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert visible(sweep / "steps") == ["t1-000000.parquet", "t1-000001.parquet"]
    assert hidden(sweep / "steps") == [tmp_name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = R.load(sweep, strict=True)
    # the interrupted rewrite left the old chunk intact
    np.testing.assert_array_equal(res.steps["step"], np.arange(13))
    assert len(res.trajectories) == 1


# -- check_writable ----------------------------------------------------------------------------------
def test_check_writable(tmp_path):
    target = tmp_path / "a" / "b"
    R.check_writable(target)
    assert target.is_dir() and list(target.iterdir()) == []
    R.check_writable(target)  # idempotent

    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(ResultsError, match="not a directory"):
        R.check_writable(afile)
    with pytest.raises(ResultsError, match="cannot be created"):
        R.check_writable(afile / "sub")
    with pytest.raises(ResultsError, match="MiB free"):
        R.check_writable(target, min_free_bytes=2**62)
    with pytest.raises(ResultsError, match="MiB free"):  # refused before anything is created
        R.check_writable(tmp_path / "new" / "deep", min_free_bytes=2**62)
    assert not (tmp_path / "new").exists()


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root bypasses permissions (covered by the path-under-a-file case)",
)
def test_check_writable_read_only_dir(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ResultsError, match="not writable"):
            R.check_writable(ro)
    finally:
        ro.chmod(0o700)


# -- packaging ---------------------------------------------------------------------------------------
def test_import_is_cheap():
    code = (
        "import sys, rsng.results; heavy = [m for m in ('pyarrow', 'pandas', 'numpy', 'jax', 'ray', 'mlflow') "
        "if m in sys.modules]; assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_docs_describe_every_column():
    text = (REPO / "docs" / "results-schema.md").read_text()
    for c in TRAJECTORY_COLUMNS + STEPS_COLUMNS:
        assert f"`{c.name}`" in text, c.name
    assert f"SCHEMA_VERSION = {SCHEMA_VERSION}" in text


# -- property test -----------------------------------------------------------------------------------
_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))])
_STRATEGIES = {
    "int32": st.integers(-(2**31), 2**31 - 1),
    "int64": st.integers(-(2**63), 2**63 - 1),
    "float64": st.floats(allow_nan=True, allow_infinity=True),
    "string": st.text(max_size=20),
    "timestamp": st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=_ZONES),
}


@st.composite
def rows(draw):
    row = {}
    for c in TRAJECTORY_COLUMNS:
        if c.name == "schema_version":
            continue
        s = _STRATEGIES[c.type]
        row[c.name] = draw(st.one_of(st.none(), s) if c.nullable else s)
    row["trial_id"] = draw(st.text(min_size=1, max_size=40))
    row["status"] = draw(st.sampled_from(R.STATUSES))
    if row["status"] == "ok":
        row["rel_l2"] = draw(st.floats(allow_nan=False))
    return row


def _same(expected, got) -> bool:
    if expected is None or (isinstance(expected, float) and math.isnan(expected)):
        return bool(pd.isna(got))
    return expected == got


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(row=rows())
def test_property_valid_rows_round_trip(tmp_path_factory, row):
    sweep = tmp_path_factory.getbasetemp() / "prop" / uuid.uuid4().hex
    R.write_trajectory(sweep, row)
    df = R.load(sweep, strict=True).trajectories
    assert len(df) == 1
    got = df.iloc[0]
    for c in TRAJECTORY_COLUMNS:
        if c.name == "schema_version":
            assert got[c.name] == SCHEMA_VERSION
        elif c.name == "rel_l2" and row["status"] != "ok":
            assert pd.isna(got[c.name])
        elif c.type == "timestamp":
            exp = row[c.name].astimezone(UTC)
            assert got[c.name] == pd.Timestamp(exp), c.name
        else:
            assert _same(row[c.name], got[c.name]), (c.name, row[c.name], got[c.name])


# -- part files (compact) ---------------------------------------------------------------------------
def _write_trial(sweep, tid, *, durable=True, chunks=((0, 4), (4, 9))):
    R.write_trajectory(sweep, make_row(tid, seed=int(tid[-1])), durable=durable)
    for c, (a, b) in enumerate(chunks):
        R.write_steps(sweep, tid, c, make_steps(a, b, scale=int(tid[-1]) + 1.0), durable=durable)
    (sweep / "_state").mkdir(parents=True, exist_ok=True)
    (sweep / "_state" / f"{tid}.npz").write_bytes(b"state")


def test_compact_merges_rows_and_steps_into_part_files(tmp_path):
    sweep = tmp_path / "sw"
    for i in range(3):
        _write_trial(sweep, f"t{i}", durable=False)
    _write_trial(sweep, "u9")  # another unit's trajectory: untouched
    before = R.load(sweep)
    assert R.compact(sweep, "unit-a", ["t0", "t1", "t2", "missing"]) == 3
    assert sorted(p.name for p in (sweep / "trajectories").iterdir()) == ["+unit-a.parquet", "u9.parquet"]
    assert sorted(p.name for p in (sweep / "steps").iterdir()) == [
        "+unit-a.parquet",
        "u9-000000.parquet",
        "u9-000001.parquet",
    ]
    assert len(list((sweep / "_state").iterdir())) == 4  # the states (final θ) stay
    assert R.has_part(sweep, "unit-a") and not R.has_part(sweep, "unit-b")
    assert R.finished_names(sweep) == {"t0", "t1", "t2", "u9"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        after = R.load(sweep)
    key = ["trial_id"]
    pd.testing.assert_frame_equal(
        before.trajectories.sort_values(key).reset_index(drop=True),
        after.trajectories.sort_values(key).reset_index(drop=True),
    )
    pd.testing.assert_frame_equal(before.steps, after.steps)
    pd.testing.assert_frame_equal(
        R.load_steps(sweep, ["t1"]), before.steps[before.steps.trial_id == "t1"].reset_index(drop=True)
    )
    rows = R.load_rows(sweep, ["t2", "u9", "nope"])
    assert sorted(rows["trial_id"]) == ["t2", "u9"]
    assert R.compact(sweep, "unit-a", ["t0", "t1", "t2"]) == 0  # nothing left to merge


def test_interrupted_compaction_reads_each_row_once(tmp_path):
    """Killed between the part write and the deletions: every row and step in two files, read once."""
    sweep = tmp_path / "sw"
    for i in range(2):
        _write_trial(sweep, f"t{i}")
    copies = {p: p.read_bytes() for p in sweep.rglob("*.parquet")}
    before = R.load(sweep)
    R.compact(sweep, "unit-a", ["t0", "t1"])
    for p, data in copies.items():  # the small files back, as if the deletions never happened
        p.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        after = R.load(sweep)
    assert len(after.trajectories) == 2 and len(after.steps) == len(before.steps) == 18
    pd.testing.assert_frame_equal(before.steps, after.steps)


def test_compaction_keeps_a_retried_chunk_once(tmp_path):
    sweep = tmp_path / "sw"
    _write_trial(sweep, "t0", chunks=((0, 6), (4, 9)))  # chunk 1 repeats steps 4 and 5
    R.compact(sweep, "unit-a", ["t0"])
    steps = R.load(sweep).steps
    np.testing.assert_array_equal(steps["step"], np.arange(9))
