"""Plots on synthetic sweeps (with failures) render to valid PNGs; the anchors."""

from __future__ import annotations

import pandas as pd
import pytest

import rsng.results as R
from rsng.analysis import (
    paper_points,
    plot_error_over_time,
    plot_error_vs_s,
    plot_p_vs_error,
    plot_pareto,
    reference_work_precision,
)


def test_paper_points_are_spec_table_1():
    pp = paper_points()
    assert len(pp) == 8 and set(pp["label"]) == {"paper, V100"}
    fast = pp[(pp.problem == "allen_cahn") & pp.setting.str.contains("fast")].iloc[0]
    assert (fast["rel_l2"], fast["wall_s"], fast["s"], fast["n"]) == (5.34e-5, 63.0, 150, 1000)
    b = paper_points("burgers")
    assert set(b["problem"]) == {"burgers"} and b.loc[b.method == "causal PINN", "wall_s"].item() == 23027.0


def test_reference_work_precision_converges_and_is_timed():
    ref = reference_work_precision("allen_cahn", [(32, 1e-2), (64, 1e-2), (128, 2e-3)], t_end=0.5, repeat=1)
    assert list(ref.columns) == ["problem", "N", "dt", "t_end", "rel_l2", "wall_s", "label"]
    assert (ref["wall_s"] > 0).all() and ref["rel_l2"].is_monotonic_decreasing
    assert ref["rel_l2"].iloc[0] > 1e-2 and ref["rel_l2"].iloc[-1] < 1e-4
    assert "spectral-etdrk4 N=512" in ref.attrs["reference_method"]
    with pytest.raises(ValueError, match="not a whole number of steps"):
        reference_work_precision("allen_cahn", [(32, 0.3)], t_end=0.5)
    with pytest.raises(ValueError, match="no 1-D spectral reference"):
        reference_work_precision("heat")


def test_plots_render_with_failures(synth_dir, synth_df, tmp_path, helpers):
    png_ok = helpers.png_ok
    steps = R.load(synth_dir).steps
    ref = pd.DataFrame(
        {
            "problem": ["allen_cahn"] * 3,
            "N": [32, 64, 128],
            "dt": [1e-2] * 3,
            "t_end": 4.0,
            "rel_l2": [1e-1, 1e-3, 1e-6],
            "wall_s": [0.01, 0.05, 0.3],
        }
    )
    figs = {
        "pareto": plot_pareto(synth_df, reference=ref, path=tmp_path / "pareto.png"),
        "vs_s": plot_error_vs_s(synth_df, path=tmp_path / "vs_s.png"),
        "time": plot_error_over_time(
            steps,
            synth_df.trial_id[:6],
            trajectories=synth_df,
            columns=("rel_l2_t", "ls_residual"),
            path=tmp_path / "time.png",
        ),
    }
    for name in ("pareto", "vs_s", "time"):
        assert png_ok(tmp_path / f"{name}.png"), name
    ax = figs["pareto"].axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert "wall time [s]" in ax.get_xlabel() and "L2 error" in ax.get_ylabel()
    texts = [t.get_text() for a in figs["pareto"].axes for t in a.texts]
    assert any("1 diverged" in t for t in texts) and any("1 failed" in t for t in texts)  # failures shown
    legend = [t.get_text() for lg in figs["pareto"].legends for t in lg.get_texts()]
    assert any("paper, V100" in t for t in legend) and any("spectral ETDRK4" in t for t in legend)
    notes = [t.get_text() for a in figs["vs_s"].axes for t in a.texts]
    assert "1/4 failed" in notes


def test_p_vs_error_on_an_architecture_sweep(tmp_path, helpers):
    make_row, write_sweep, png_ok = helpers.make_row, helpers.write_sweep, helpers.png_ok
    rows = []
    for depth, width in ((3, 25), (5, 25), (7, 25), (3, 50), (5, 50)):
        p = 108 + 657 * (depth - 2) if width == 25 else 400 + 2600 * (depth - 2)
        for seed in range(3):
            rows.append(
                make_row(
                    f"a-d{depth}w{width}-seed{seed}",
                    depth=depth,
                    width=width,
                    p=p,
                    seed=seed,
                    rel_l2=1e-3 * (3 / depth) * (1 + 0.2 * seed) * (25 / width),
                )
            )
    rows.append(make_row("a-d7w50-seed0", depth=7, width=50, p=13400, status="diverged", diverged_step=5))
    df = R.load(write_sweep(tmp_path / "arch", rows, steps=False)).trajectories
    fig = plot_p_vs_error(df, path=tmp_path / "p.png")
    assert png_ok(tmp_path / "p.png")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "network parameters p" in ax.get_xlabel()
    texts = [t.get_text() for t in ax.texts]
    assert "d=7" in texts and any("1/1 failed" in t for t in texts)
