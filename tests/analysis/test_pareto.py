"""Pareto fronts: exact cases (ties, duplicates, NaN, failures), a property test, speed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rsng.analysis import ColumnError, pareto_front, pareto_mask


def dominates(a, b) -> bool:
    return a[0] <= b[0] and a[1] <= b[1] and (a[0] < b[0] or a[1] < b[1])


def test_ties_and_duplicates_follow_the_documented_rules():
    x = [1, 1, 1, 2, 2, 3, 0.5, 4, np.nan, 5]
    y = [5, 3, 3, 3, 1, 1, 9, 0.5, 0.1, np.inf]
    m = pareto_mask(x, y)
    # (1,3) twice: identical points are both kept; (1,5) equal x larger y: dominated;
    # (2,3) equal y larger x: dominated; (3,1) equal y larger x than (2,1): dominated; NaN/inf never kept
    assert m.tolist() == [False, True, True, False, True, False, True, True, False, False]


def test_empty_single_and_all_nan():
    assert pareto_mask([], []).tolist() == []
    assert pareto_mask([3.0], [2.0]).tolist() == [True]
    assert pareto_mask([np.nan, 1.0], [1.0, np.nan]).tolist() == [False, False]
    with pytest.raises(ValueError, match="same length"):
        pareto_mask([1, 2], [1])


def test_front_of_a_frame_excludes_failures_and_counts_them():
    df = pd.DataFrame(
        {
            "problem": ["a"] * 5 + ["b"] * 3,
            "status": ["ok", "ok", "diverged", "failed", "ok", "ok", "ok", "ok"],
            "wall_s": [1.0, 2.0, 0.1, 0.0, 3.0, 1.0, 1.0, 2.0],
            "rel_l2": [1e-2, 1e-3, np.nan, np.nan, np.nan, 5e-3, 5e-3, 1e-4],
            "steps": [10, 20, 1, 0, 30, 10, 10, 20],
            "s": [5, 5, 5, 5, 5, 7, 7, 7],
        }
    )
    f = pareto_front(df, by="problem")
    assert f.index.tolist() == [0, 1, 5, 6, 7]  # the duplicate (1, 5e-3) of problem b: both kept
    assert f.attrs["excluded"] == {"diverged": 1, "failed": 1, "non-finite": 1, "stopped": 0}
    assert f.attrs["n_points"] == 5 and f.attrs["n_dominated"] == 0 and f.attrs["n_rows"] == 8
    g = pareto_front(df)  # one front over everything: (1, 5e-3) dominates (1, 1e-2)
    assert g.index.tolist() == [5, 6, 7] and g.attrs["n_dominated"] == 2
    # cost as an expression; its values become a column of the result
    h = pareto_front(df, x="steps * s**2", y="rel_l2", by="problem")
    assert "steps * s**2" in h.columns and h["steps * s**2"].tolist() == [250.0, 500.0, 490.0, 490.0, 980.0]


@pytest.mark.parametrize(
    "kw, option", [({"x": "nope"}, "x"), ({"y": "rel_l2 +"}, "y"), ({"by": "nope"}, "by"), ({"y": "problem"}, "y")]
)
def test_bad_columns_name_the_option(kw, option):
    df = pd.DataFrame({"problem": ["a"], "wall_s": [1.0], "rel_l2": [1.0]})
    with pytest.raises(ColumnError) as e:
        pareto_front(df, **kw)
    assert e.value.option == option and str(e.value).startswith(f"{option}: ")


values_ = st.one_of(st.integers(0, 6).map(float), st.floats(0, 10, allow_nan=False), st.just(np.nan), st.just(np.inf))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            values_, values_, st.sampled_from(["ok", "ok", "ok", "diverged", "failed"]), st.sampled_from(["a", "b"])
        ),
        max_size=60,
    )
)
def test_property_front_is_exactly_the_non_dominated_points(rows):
    df = pd.DataFrame(rows, columns=["wall_s", "rel_l2", "status", "problem"])
    df = df.astype({"wall_s": "float64", "rel_l2": "float64"})
    front = pareto_front(df, by="problem")
    on = set(front.index)
    for _, g in df.groupby("problem"):
        elig = g[(g.status == "ok") & np.isfinite(g.wall_s) & np.isfinite(g.rel_l2)]
        pts = {i: (r.wall_s, r.rel_l2) for i, r in elig.iterrows()}
        for i, p in pts.items():
            dominated = any(dominates(q, p) for q in pts.values())
            if i in on:  # a front point is dominated by no point at all (front or not)
                assert not dominated
            else:  # every excluded point is dominated by some front point
                assert any(dominates(pts[j], p) for j in on if j in pts), (p, pts)
    ineligible = df[(df.status != "ok") | ~np.isfinite(df.wall_s) | ~np.isfinite(df.rel_l2)]
    assert not on & set(ineligible.index)
    ex = front.attrs["excluded"]
    assert sum(ex.values()) == len(ineligible)
    assert ex["diverged"] == (df.status == "diverged").sum() and ex["failed"] == (df.status == "failed").sum()


def test_front_of_a_hundred_thousand_points_matches_a_dominance_sweep():
    # (its speed is measured in benchmarks/pareto.py, not asserted here)
    rng = np.random.default_rng(1)
    x = rng.lognormal(size=100_000)
    y = rng.lognormal(size=100_000)
    df = pd.DataFrame({"wall_s": x, "rel_l2": y, "status": "ok", "problem": rng.choice(["a", "b"], 100_000)})
    f = pareto_front(df, by="problem")
    for problem in ("a", "b"):  # brute force per group: the running minimum of the error along the cost
        g = df[df.problem == problem]
        order = np.argsort(g.wall_s.to_numpy())
        ys = g.rel_l2.to_numpy()[order]
        expected = set(g.index[order][ys <= np.minimum.accumulate(ys)])
        assert set(f[f.problem == problem].index) == expected and len(expected) > 1


def test_expressions_are_parsed_not_evaluated():
    """--x/--y expressions: arithmetic over columns is computed by rsng's own parser; anything else
    (attribute access, calls other than the listed functions, strings, subscripts) is refused by name."""
    from rsng.analysis._frame import values

    df = pd.DataFrame({"steps": [10, 20], "s": [5, 7], "wall_s": [1.0, np.nan], "problem": ["a", "b"]})
    np.testing.assert_array_equal(values(df, "steps * s**2", "x"), [250.0, 980.0])
    np.testing.assert_array_equal(values(df, "-(steps - 4) / 2 + sqrt(s * s)", "x"), [2.0, -1.0])
    np.testing.assert_allclose(
        values(df, "log10(steps) * 2 + exp(0) + abs(-1) + log(1) + log2(4)", "x"), [6.0, 2 * np.log10(20) + 4]
    )
    assert np.isnan(values(df, "wall_s * 2", "x")[1]) and values(df, "3", "x").tolist() == [3.0, 3.0]
    for bad, fragment in [
        ("__import__('os').system('touch pwned')", "is not allowed"),
        ("steps.__class__", "is not allowed"),
        ("s[0]", "is not allowed"),
        ("'a' + 'b'", "is not allowed"),
        ("steps if s else 1", "is not allowed"),
        ("lambda: 1", "is not allowed"),
        ("open('x')", "is not allowed"),
        ("log(s, 2)", "is not allowed"),
        ("@pd.x", "cannot parse"),
        ("steps +", "cannot parse"),
        ("nope * 2", "unknown column 'nope'"),
        ("problem * 2", "not numeric"),
    ]:
        with pytest.raises(ColumnError) as e:
            values(df, bad, "y")
        assert e.value.option == "y" and fragment in str(e.value), (bad, str(e.value))
        if "allowed" in fragment or "parse" in fragment:
            assert "accepted: column names, numbers" in str(e.value)
    assert not Path("pwned").exists()
