"""Pick a configuration: the cheapest that reaches an error target, or the most accurate in a budget."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from rsng.analysis.stats import aggregate, is_aggregate

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["recommend"]


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return "nan" if not math.isfinite(v) else f"{v:.3g}"
    return str(v)


def _describe(row: pd.Series, keys: list[str]) -> str:
    return ", ".join(f"{k}={_fmt(row[k])}" for k in keys) or "the only configuration"


def _stats(row: pd.Series, mc: str, cc: str) -> str:
    return (
        f"{mc} = {_fmt(row[f'{mc}_mean'])} ± {_fmt(2 * row[f'{mc}_se'])} (2 SE, upper "
        f"{_fmt(row[f'{mc}_hi'])}, {int(row['n_ok'])}/{int(row['count'])} ok) at {cc} {_fmt(row[f'{cc}_mean'])}"
    )


def recommend(
    df: pd.DataFrame,
    target_error: float | None = None,
    budget_s: float | None = None,
    *,
    metric: str = "rel_l2",
    cost: str = "wall_s",
    by: str | Iterable[str] | None = None,
    problem: str | None = None,
    max_failure_share: float = 0.0,
) -> pd.Series:
    """The configuration to run for an error target or a cost budget (give exactly one).

    * ``target_error``: the **cheapest** configuration (lowest mean cost) whose **upper ±2SE band**
      ``mean + 2·SE`` of the metric is ≤ the target — "meets the target" must hold with the
      uncertainty over seeds, not only on average. Ties: the lower upper band.
    * ``budget_s``: the **most accurate** configuration (lowest upper band ``mean + 2·SE``; ties:
      lower mean, then cheaper) whose mean cost is ≤ the budget (seconds when ``cost`` is
      ``wall_s``; the cost's unit otherwise).

    Eligible configurations have at least two ok seeds (the band needs a standard error) and a
    failure share (diverged/failed runs) ≤ ``max_failure_share`` (default 0: a configuration
    that diverged for any seed is not recommended).

    Args:
      df: trajectory rows (aggregated here with :func:`aggregate` using ``by``, ``metric``,
        ``cost``) or a frame :func:`aggregate` returned (then its metric and cost are used).
      problem: restrict to this problem; required when ``df`` holds several problems.

    Returns:
      A Series: the configuration columns and its statistics (``count``, ``n_ok``,
      ``failure_share``, ``<metric>_mean/_median/_std/_se/_lo/_hi``, ``<cost>_mean``), plus
      ``criterion`` (a sentence) and ``n_qualifying``.

    Raises:
      ValueError: neither or both of ``target_error``/``budget_s``; a non-positive value;
        several problems without ``problem``; or nothing qualifies (the message names the best
        available configuration: the most accurate one for a target, the cheapest for a budget).
    """
    if (target_error is None) == (budget_s is None):
        raise ValueError("recommend: give exactly one of target_error or budget_s")
    limit = target_error if target_error is not None else budget_s
    name = "target_error" if target_error is not None else "budget_s"
    if (
        isinstance(limit, bool)
        or not isinstance(limit, (int, float, np.integer, np.floating))
        or not math.isfinite(limit)
        or limit <= 0
    ):
        raise ValueError(f"recommend: {name} must be a positive number, got {limit!r}")
    if not 0 <= max_failure_share <= 1:
        raise ValueError(f"recommend: max_failure_share must be in [0, 1], got {max_failure_share!r}")
    if problem is not None and "problem" in df.columns:
        df = df[df["problem"].astype(str) == problem]
        if df.empty:
            raise ValueError(f"recommend: no rows for problem {problem!r}")
    if "problem" in df.columns:
        probs = sorted(df["problem"].astype(str).unique())
        if len(probs) > 1:
            raise ValueError(f"recommend: the data hold several problems ({', '.join(probs)}); pass problem=")
    agg = df if is_aggregate(df) else aggregate(df, by=by, metric=metric, cost=cost)
    if agg.empty:
        raise ValueError("recommend: no configurations (no rows)")
    mc, cc = agg.attrs["metric_col"], agg.attrs["cost_col"]
    keys = [k for k in agg.attrs["by"] if k == "problem" or agg[k].nunique(dropna=False) > 1]
    hi, cmean = agg[f"{mc}_hi"], agg[f"{cc}_mean"]
    eligible = (agg["n_ok"] >= 2) & (agg["failure_share"] <= max_failure_share) & np.isfinite(hi) & np.isfinite(cmean)
    if not eligible.any():
        with_ok = agg[agg["n_ok"] >= 1]
        hint = ""
        if len(with_ok):
            b = with_ok.loc[with_ok[f"{mc}_mean"].idxmin()]
            hint = f"; the most accurate configuration with any ok run is {_describe(b, keys)}: {_stats(b, mc, cc)}"
        raise ValueError(
            f"recommend: no configuration has ≥ 2 ok seeds and a failure share ≤ {max_failure_share:g}{hint}"
        )
    el = agg[eligible]
    if target_error is not None:
        qual = el[el[f"{mc}_hi"] <= target_error]
        if qual.empty:
            b = el.sort_values([f"{mc}_hi", f"{mc}_mean"]).iloc[0]
            raise ValueError(
                f"recommend: no configuration reaches {mc} ≤ {target_error:g} at its upper 2-SE band; "
                f"the most accurate is {_describe(b, keys)}: {_stats(b, mc, cc)}"
            )
        best = qual.sort_values([f"{cc}_mean", f"{mc}_hi"], kind="stable").iloc[0]
        crit = (
            f"cheapest configuration whose {mc} mean + 2 SE ≤ {target_error:g} "
            f"({len(qual)} of {len(agg)} configurations qualify)"
        )
    else:
        qual = el[el[f"{cc}_mean"] <= budget_s]
        if qual.empty:
            b = el.sort_values([f"{cc}_mean", f"{mc}_hi"]).iloc[0]
            raise ValueError(
                f"recommend: no configuration has a mean {cc} ≤ {budget_s:g}; "
                f"the cheapest is {_describe(b, keys)}: {_stats(b, mc, cc)}"
            )
        best = qual.sort_values([f"{mc}_hi", f"{mc}_mean", f"{cc}_mean"], kind="stable").iloc[0]
        crit = (
            f"lowest {mc} mean + 2 SE among configurations with mean {cc} ≤ {budget_s:g} "
            f"({len(qual)} of {len(agg)} configurations qualify)"
        )
    out = best.copy()
    out["criterion"] = crit
    out["n_qualifying"] = len(qual)
    out.name = _describe(best, keys)
    return out
