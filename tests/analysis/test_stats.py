"""aggregate and recommend on synthetic sweeps with known numbers (real Parquet files)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from rsng.analysis import ColumnError, aggregate, recommend


def test_aggregate_counts_failures_and_computes_the_band(synth_df):
    agg = aggregate(synth_df)
    assert len(agg) == 12  # 2 problems × 2 samplers × 3 s
    assert {"problem", "sampler", "s", "n", "depth", "width"} <= set(agg.columns) and "seed" not in agg.columns
    row = agg[(agg.problem == "allen_cahn") & (agg.sampler == "uniform") & (agg.s == 50)].iloc[0]
    assert (row["count"], row["n_ok"], row["n_diverged"], row["n_failed"]) == (4, 3, 1, 0)
    assert row["failure_share"] == pytest.approx(0.25)
    errs = np.array([1e-2, 1.1e-2, 1.2e-2])
    assert row["rel_l2_mean"] == pytest.approx(errs.mean())
    assert row["rel_l2_median"] == pytest.approx(np.median(errs))
    se = errs.std(ddof=1) / math.sqrt(3)
    assert row["rel_l2_se"] == pytest.approx(se)
    assert (row["rel_l2_lo"], row["rel_l2_hi"]) == pytest.approx((errs.mean() - 2 * se, errs.mean() + 2 * se))
    # the cost mean is over the ok runs only (the diverged run's 0.2 s is not a cost of the error)
    ok = synth_df[(synth_df.trial_id.str.startswith("allen_cahn-uniform-s50-")) & (synth_df.status == "ok")]
    assert row["wall_s_mean"] == pytest.approx(ok.wall_s.mean())
    failed = agg[(agg.problem == "burgers") & (agg.sampler == "column_norm") & (agg.s == 800)].iloc[0]
    assert (failed["count"], failed["n_failed"], failed["n_excluded"]) == (4, 1, 1)
    assert agg.attrs["metric_col"] == "rel_l2" and agg.attrs["cost_col"] == "wall_s"


def test_aggregate_keeps_configurations_without_any_ok_run_and_takes_expressions(synth_df):
    df = synth_df.copy()
    sel = (df.problem == "burgers") & (df.s == 200)
    df.loc[sel, "status"] = "failed"
    agg = aggregate(df, by=["problem", "sampler", "s"], cost="steps * s**2")
    row = agg[(agg.problem == "burgers") & (agg.s == 200)]
    assert len(row) == 2 and (row["n_ok"] == 0).all() and row["rel_l2_mean"].isna().all()
    assert (row["failure_share"] == 1.0).all()
    assert "cost_mean" in agg.columns and agg.attrs["cost"] == "steps * s**2"
    one = aggregate(df, by=[])  # a single configuration over everything
    assert len(one) == 1 and one["count"].iloc[0] == len(df)
    with pytest.raises(ColumnError, match="^by: unknown column 'nope'"):
        aggregate(df, by=["problem", "nope"])
    with pytest.raises(ColumnError, match="^metric: "):
        aggregate(df, metric="nope")


def test_single_seed_has_no_band():
    df = pd.DataFrame(
        {"problem": ["a"], "sampler": ["u"], "s": [1], "status": ["ok"], "rel_l2": [0.1], "wall_s": [1.0]}
    )
    row = aggregate(df).iloc[0]
    assert row["n_ok"] == 1 and math.isnan(row["rel_l2_se"]) and math.isnan(row["rel_l2_hi"])


def test_recommend_target_and_budget(synth_df):
    ac = synth_df[synth_df.problem == "allen_cahn"]
    # column_norm errors 3e-3·50/s·(1, 1.1, 1.2): s=200 → mean 8.25e-4; s=50 (uniform, diverged seed) ineligible
    r = recommend(ac, target_error=1e-3)
    assert (r["sampler"], r["s"]) == ("column_norm", 200)
    assert r["rel_l2_hi"] <= 1e-3 and "mean + 2 SE" in r["criterion"] and r["n_qualifying"] >= 1
    assert r.name == "problem=allen_cahn, sampler=column_norm, s=200"
    # cheapest first: a looser target picks a smaller s
    assert recommend(ac, target_error=5e-3)["s"] == 50 and recommend(ac, target_error=5e-3)["sampler"] == "column_norm"
    b = recommend(ac, budget_s=3.0)  # s=200 costs ≈ 2 s, s=800 ≈ 8 s
    assert (b["sampler"], b["s"]) == ("column_norm", 200)
    assert recommend(ac, budget_s=100.0)["s"] == 800
    # an aggregated frame is accepted as it is
    assert recommend(aggregate(ac), target_error=1e-3)["s"] == 200
    # uniform s=50 had 1 diverged seed of 4: not recommended unless failures are allowed
    uni = ac[ac.sampler == "uniform"]
    with pytest.raises(ValueError, match="the cheapest is .*s=200"):
        recommend(uni, budget_s=0.6)
    r = recommend(uni, budget_s=0.6, max_failure_share=0.3)
    assert r["s"] == 50 and r["failure_share"] == 0.25


@pytest.mark.parametrize(
    "kw, match",
    [
        ({}, "exactly one of target_error or budget_s"),
        ({"target_error": 1e-3, "budget_s": 1.0}, "exactly one of target_error or budget_s"),
        ({"target_error": -1.0}, "target_error must be a positive number"),
        ({"budget_s": float("nan")}, "budget_s must be a positive number"),
        (
            {"target_error": 1e-9},
            r"no configuration reaches rel_l2 ≤ 1e-09 .*the most accurate is .*sampler=column_norm, s=800",
        ),
        ({"budget_s": 0.01}, r"no configuration has a mean wall_s ≤ 0.01; the cheapest is .*s=50"),
    ],
)
def test_recommend_errors_say_what_is_best_available(synth_df, kw, match):
    with pytest.raises(ValueError, match=match):
        recommend(synth_df[synth_df.problem == "allen_cahn"], **kw)


def test_recommend_needs_one_problem(synth_df):
    with pytest.raises(ValueError, match="several problems"):
        recommend(synth_df, target_error=1e-2)
    assert recommend(synth_df, target_error=1e-2, problem="burgers")["problem"] == "burgers"
    with pytest.raises(ValueError, match="no rows for problem 'vlasov'"):
        recommend(synth_df, target_error=1e-2, problem="vlasov")


def test_analysis_imports_neither_jax_ray_mlflow_nor_matplotlib():
    code = "import sys, rsng.analysis; print(','.join(sorted({m.split('.')[0] for m in sys.modules})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    mods = set(out.stdout.strip().split(","))
    assert not mods & {"jax", "ray", "mlflow", "matplotlib"}, mods & {"jax", "ray", "mlflow", "matplotlib"}
