"""sweeps/initial_fit_report.py on a study written with rsng.results: one line per problem × fit recipe ×
init seed × rcond, its numbers computed from the rows and steps, and the per-trajectory CSV."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "sweeps" / "initial_fit_report.py"


def _study(folder: Path, helpers) -> dict:
    """Two fits of one recipe (init seeds 0 and 2) at one cut-off, three seeds each, one seed failed; the
    steps' kept ranks differ per trajectory. Returns {(init_seed, seed): (rel_l2, mean kept rank)}."""
    import rsng.results as R

    helpers.write_sweep(folder, [], steps=False)
    expected = {}
    for init_seed, t0, rank in ((0, 5.2e-6, 113), (2, 8.7e-6, 112)):
        for seed in range(3):
            failed = init_seed == 0 and seed == 2
            err = 5e-5 * (1 + 0.1 * seed) * (1 - 0.05 * init_seed)
            row = helpers.make_row(
                f"allen_cahn-adam-lm-i{init_seed}-s{seed}",
                fit_recipe="adam-lm",
                init_seed=init_seed,
                rcond=1e-4,
                seed=seed,
                rel_l2=err,
                fit_rel_l2_t0=t0,
                j0_sigma_max=50.0,
                j0_rank=rank,
                status="failed" if failed else "ok",
                error_message="RuntimeError: boom" if failed else "",
            )
            R.write_trajectory(folder, dict(row, sweep=folder.name))
            k = np.arange(5)
            kept = np.array([0, 90, 95 + seed, 100, 97 + init_seed])  # step 0 is not a least squares
            R.write_steps(
                folder,
                row["trial_id"],
                0,
                dict(
                    step=k,
                    t=k * 0.1,
                    rel_l2_t=np.full(5, err),
                    ls_residual=np.full(5, 1e-3),
                    wall_s_cumulative=k * 1.0,
                    ls_rank=kept,
                ),
            )
            expected[init_seed, seed] = (None if failed else err, kept[1:].mean())
    return expected


def test_the_report_keeps_init_seeds_apart_and_computes_its_numbers(tmp_path, helpers, script_module):
    from rsng.results import load

    folder = tmp_path / "initial-fit"
    expected = _study(folder, helpers)
    traj, table = script_module(SCRIPT).summarise(load(folder))
    lines = [line for line in table.splitlines() if line.startswith("| allen_cahn")]
    assert len(lines) == 2, table  # one per init seed, not one for both fits
    assert "| init seed |" in table.splitlines()[0]
    for line, init_seed in zip(lines, (0, 2)):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[:4] == ["allen_cahn", "adam-lm", str(init_seed), "0.0001"], cells
        errs = [expected[init_seed, s][0] for s in range(3) if expected[init_seed, s][0] is not None]
        assert float(cells[5]) == float(f"{np.mean(errs):.3g}")
        assert cells[6] == f"{max(errs) / min(errs):.2f}"
        kept = np.mean([expected[init_seed, s][1] for s in range(3)])
        assert cells[9] == f"{kept:.1f}"
    assert "2: failed" in lines[0] and "2: failed" not in lines[1]


def test_the_report_writes_the_plot_and_one_csv_row_per_trajectory(tmp_path, helpers, script_module):
    folder = tmp_path / "initial-fit"
    expected = _study(folder, helpers)
    csv, out = tmp_path / "rows.csv", tmp_path / "docs"
    r = subprocess.run(
        [sys.executable, str(SCRIPT), str(folder), "--out", str(out), "--csv", str(csv)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert helpers.png_ok(out / "initial-fit.png")
    rows = pd.read_csv(csv)
    assert list(rows.columns) == script_module(SCRIPT).CSV_COLUMNS
    assert len(rows) == len(expected)
    for r_ in rows.itertuples():
        err, kept = expected[r_.init_seed, r_.seed]
        assert (r_.status == "ok") == (err is not None)
        if err is not None:
            assert r_.rel_l2 == err
        assert r_.mean_kept_rank == kept


def test_the_report_refuses_an_empty_folder(tmp_path, helpers):
    folder = helpers.write_sweep(tmp_path / "initial-fit", [], steps=False)
    r = subprocess.run([sys.executable, str(SCRIPT), str(folder)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "no trajectories" in r.stderr, r.stderr
