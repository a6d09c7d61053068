"""The public Python API: ``rsng.solve``, ``rsng.sweep``, ``rsng.results.load``, ``rsng.analysis``."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest


def _modules_after(stmt: str) -> set[str]:
    code = f"import sys; {stmt}; print(','.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return set(out.stdout.strip().split(","))


@pytest.mark.parametrize(
    "stmt", ["import rsng", "import rsng; rsng.results.load", "import rsng; rsng.analysis.aggregate"]
)
def test_import_stays_light(stmt):
    assert not _modules_after(stmt) & {"jax", "ray", "mlflow"}


def test_solve_returns_rows_series_and_theta(tmp_path):
    import rsng
    from rsng.core.config import resolve
    from rsng.core.integrate import solve

    res = rsng.solve(problem="heat", preset="smoke", sampler="uniform", s=20, t_end=0.05, cache_dir=str(tmp_path))
    row, series = res.row, res.series
    assert row["status"] == "ok" and row["problem"] == "heat" and row["s"] == 20 and row["steps"] == 5
    assert set(series) == {
        "step",
        "t",
        "rel_l2_t",
        "ls_residual",
        "ls_rank",
        "ls_sigma_max",
        "ls_sigma_min_kept",
        "wall_s_cumulative",
    }
    assert all(len(v) == 6 for v in series.values())
    assert res.theta.shape == (row["p"],)
    # the same trajectory as the core's own entry point, bit for bit
    core = solve(resolve("smoke", problem="heat", sampler="uniform", s=20, t_end=0.05), cache_dir=str(tmp_path))
    assert core.theta.tobytes() == res.theta.tobytes() and core.rel_l2 == row["rel_l2"]


def test_solve_names_a_bad_field_before_work():
    import rsng
    from rsng.core.config import ConfigError

    with pytest.raises(ConfigError, match="sampler: unknown value 'nope'; accepted: uniform"):
        rsng.solve(problem="heat", sampler="nope")


def test_sweep_runs_and_returns_its_results(tmp_path, template_db):
    import rsng

    db = tmp_path / "mlflow.db"
    shutil.copyfile(template_db, db)
    out = rsng.sweep(
        {"name": "api", "grid": {"s": [20, 30]}, "fixed": {"problem": "heat", "preset": "smoke", "t_end": 0.03}},
        storage=str(tmp_path / "results"),
        serial=True,
        mlflow_uri=f"sqlite:///{db}",
        cache_dir=str(tmp_path / "cache"),
        log=lambda m: None,
    )
    df = out.trajectories
    assert sorted(df["s"].tolist()) == [20, 30] and (df["status"] == "ok").all()
    again = rsng.results.load(tmp_path / "results" / "api")
    np.testing.assert_array_equal(np.sort(again.trajectories["rel_l2"]), np.sort(df["rel_l2"]))
    agg = rsng.analysis.aggregate(df)
    assert len(agg) == 2
