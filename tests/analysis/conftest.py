"""Fixtures of the analysis tests: ONE real smoke sweep shared by the whole session, and small
synthetic sweeps written with rsng.results for the unit tests."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from rowfactory import synthetic_row

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def smoke_sweep_dir(request) -> Path:
    """``…/results/sparsity-smoke``: the session's real smoke sparsity sweep (tests/conftest.py).

    ``RSNG_TEST_SMOKE_SWEEP=<sweep folder>`` reuses an existing one instead (local iteration only).
    """
    given = os.environ.get("RSNG_TEST_SMOKE_SWEEP")
    return Path(given) if given else request.getfixturevalue("smoke_sweep")[0]


def make_row(trial_id: str, **kw) -> dict:
    values = dict(s=100, p=3393, n=1000, dt=5e-3, t_end=4.0, seed=0, rcond=1e-5, lstsq="qr", steps=800)
    values.update(rel_l2=1e-3, rel_l2_t0=1e-6, rel_l2_final=2e-3, wall_s=10.0, compile_s=2.0, git_sha="abc")
    row = synthetic_row(T0, **{"sweep": "synth", "trial_id": trial_id, **values, **kw})
    if row["status"] != "ok":
        row["rel_l2"] = None
    return row


def synthetic_rows() -> list[dict]:
    """Two problems × samplers × s × 3 seeds with known errors, one diverged and one failed run."""
    rows = []
    rng = np.random.default_rng(0)
    for problem in ("allen_cahn", "burgers"):
        for sampler, fac in (("uniform", 1.0), ("column_norm", 0.3)):
            for s in (50, 200, 800):
                for seed in range(3):
                    err = fac * 1e-2 * (50 / s) * (1 + 0.1 * seed)
                    rows.append(
                        make_row(
                            f"{problem}-{sampler}-s{s}-seed{seed}",
                            problem=problem,
                            sampler=sampler,
                            s=s,
                            seed=seed,
                            rel_l2=err,
                            wall_s=0.01 * s * (1 + 0.05 * seed) + float(rng.uniform(0, 1e-3)),
                        )
                    )
    rows.append(
        make_row(
            "allen_cahn-uniform-s50-seed3",
            sampler="uniform",
            s=50,
            seed=3,
            status="diverged",
            diverged_step=120,
            rel_l2_final=float("inf"),
            wall_s=0.2,
            steps=120,
        )
    )
    rows.append(
        make_row(
            "burgers-column_norm-s800-seed3",
            problem="burgers",
            sampler="column_norm",
            s=800,
            seed=3,
            status="failed",
            error_message="RuntimeError: boom",
            wall_s=0.0,
            steps=0,
        )
    )
    return rows


def write_sweep(folder: Path, rows: list[dict], steps: bool = True, meta: dict | None = None) -> Path:
    import rsng.results as R

    R.write_sweep_meta(
        folder,
        meta
        or {
            "name": folder.name,
            "description": "synthetic",
            "grid": {"s": [50, 200, 800]},
            "versions": {"rsng_version": "0.1.0"},
        },
    )
    for row in rows:
        R.write_trajectory(folder, dict(row, sweep=folder.name))
        if steps:
            n = int(row["steps"]) // 100 + 1
            k = np.arange(n) * 100
            err = np.full(n, row["rel_l2"] or 1e-2) * np.linspace(0.01, 1.5, n)
            if row["status"] == "diverged":
                err[-1] = 10.0
            R.write_steps(
                folder,
                row["trial_id"],
                0,
                dict(
                    step=k,
                    t=k * row["dt"],
                    rel_l2_t=err,
                    ls_residual=np.where(k == 0, np.nan, 1e-3),
                    wall_s_cumulative=k * 1e-3,
                ),
            )
    return folder


@pytest.fixture()
def synth_dir(tmp_path) -> Path:
    return write_sweep(tmp_path / "synth", synthetic_rows())


@pytest.fixture()
def synth_df(synth_dir):
    import rsng.results as R

    return R.load(synth_dir).trajectories


def png_ok(path: Path) -> bool:
    data = Path(path).read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1024


@pytest.fixture()
def helpers():
    """The helpers above, for test modules (test folders are not packages, so no imports from here)."""

    class H:
        pass

    h = H()
    h.make_row, h.write_sweep, h.png_ok, h.synthetic_rows = make_row, write_sweep, png_ok, synthetic_rows
    return h
