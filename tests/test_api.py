"""The public Python API: ``rsng.solve``, ``rsng.sweep``, ``rsng.results.load``, ``rsng.analysis``."""

from __future__ import annotations

import os
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


def test_solve_sizes_the_threads_before_jax_loads(tmp_path):
    """In a fresh process, rsng.solve gives BLAS one thread (rsng.core.threads) before anything loads JAX."""
    code = (
        "import os, sys, rsng; "
        f"rsng.solve(problem='heat', preset='smoke', t_end=0.01, cache_dir={str(tmp_path)!r}); "
        "print(os.environ.get('OPENBLAS_NUM_THREADS'), 'jax' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "XLA_FLAGS")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "True"]


def test_solve_from_a_theta0_of_ones_own(tmp_path):
    """A θ(0) given as an array, an .npy or an .npz file marches exactly as the fit it equals; the row says
    where θ(0) came from (no fit recipe, no init seed) and has the fit's t = 0 diagnostics, recomputed."""
    import rsng
    from rsng.core.config import resolve
    from rsng.core.fit import initial_theta
    from rsng.core.network import Network
    from rsng.core.problems import get_problem
    from rsng.core.recipe import parse

    kw = dict(problem="heat", preset="smoke", t_end=0.05, cache_dir=str(tmp_path))
    fitted = rsng.solve(**kw)
    assert fitted.row["theta0"] in ("shipped", "cache", "fitted") and fitted.row["fit_recipe"] == "lbfgs-lm-adam"
    cfg = resolve("smoke", problem="heat", t_end=0.05)
    problem = get_problem("heat")
    net = Network(problem.dim, problem.lengths, cfg.width, cfg.depth)
    theta0, _ = initial_theta(problem, net, cfg.n, cfg.init_seed, parse(cfg.fit_recipe), cache_dir=tmp_path)
    np.save(tmp_path / "theta0.npy", theta0)
    np.savez(tmp_path / "theta0.npz", theta=theta0, other=np.zeros(2))
    sources = []
    for given in (theta0, str(tmp_path / "theta0.npy"), tmp_path / "theta0.npz"):
        res = rsng.solve(theta0=given, **kw)
        row = res.row
        assert res.theta.tobytes() == fitted.theta.tobytes() and row["rel_l2"] == fitted.row["rel_l2"]
        assert row["fit_recipe"] is None and row["init_seed"] is None
        assert row["j0_sigma_max"] == fitted.row["j0_sigma_max"] and row["j0_rank"] == fitted.row["j0_rank"]
        assert row["fit_rel_l2"] == pytest.approx(fitted.row["fit_rel_l2"], rel=1e-12)
        sources.append(row["theta0"])
    digest = sources[0].removeprefix("array (sha256 ").removesuffix(")")
    assert sources == [
        f"array (sha256 {digest})",
        f"file {tmp_path / 'theta0.npy'} (sha256 {digest})",
        f"file {tmp_path / 'theta0.npz'} (sha256 {digest})",
    ]
    # another θ(0) is another trajectory, and another hash
    other = rsng.solve(theta0=theta0 * (1 + 1e-3), **kw)
    assert other.row["rel_l2"] != fitted.row["rel_l2"] and digest not in other.row["theta0"]


@pytest.mark.parametrize(
    "given,fields,error,match",
    [
        (np.zeros(7), {}, ValueError, r"theta0: expected shape \(\d+,\), the parameters of depth 3, width 25 in 1-D"),
        ("nan", {}, ValueError, "theta0: 1 of its"),
        ("nowhere.npy", {}, ValueError, "theta0: 'nowhere.npy' is not a file"),
        ("ok", {"fit_recipe": "adam-lm"}, Exception, "fit_recipe: chooses the fit that theta0 replaces"),
        ("ok", {"init_seed": 0}, Exception, "init_seed: chooses the fit that theta0 replaces"),
    ],
)
def test_solve_refuses_a_bad_theta0_before_work(given, fields, error, match, tmp_path):
    import rsng
    from rsng.core.config import ConfigError, resolve

    p = resolve("smoke", problem="heat").p
    if isinstance(given, str) and given in ("nan", "ok"):
        given = np.zeros(p)
        if fields == {}:
            given[3] = np.nan
    error = ConfigError if fields else error
    with pytest.raises(error, match=match):
        rsng.solve(problem="heat", preset="smoke", theta0=given, cache_dir=str(tmp_path), **fields)
    assert not (tmp_path / "reference").exists()  # nothing computed


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
