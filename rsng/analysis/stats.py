"""Statistics over seeds: one row per configuration, with the failures counted, never dropped."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from rsng.analysis._frame import resolve_by, short_name, statuses, values

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["aggregate", "is_aggregate"]


def aggregate(
    df: pd.DataFrame, by: str | Iterable[str] | None = None, metric: str = "rel_l2", cost: str = "wall_s"
) -> pd.DataFrame:
    """One row per configuration, statistics over its seeds.

    Args:
      df: trajectory rows (``rsng.results.load(path).trajectories``, or any frame with the columns
        named below; without a ``status`` column every row with a finite metric counts as ok).
      by: the columns that define a configuration. ``None``: every configuration column ``df``
        has among ``problem, sampler, s, p, n, depth, width, dt, t_end, init_seed, precision,
        rcond, integrator, lstsq, solver`` — everything but the sketch ``seed``, which is averaged over.
      metric: error column, or an expression over columns evaluated with ``DataFrame.eval``.
      cost: cost column (e.g. ``wall_s``) or an expression (e.g. ``"steps * s**2"``).

    Returns:
      A frame sorted by ``by`` with the ``by`` columns and

      * ``count`` — rows of the configuration; ``n_ok`` — rows with status ``ok`` and a finite
        metric (the only ones the statistics use); ``n_diverged``, ``n_failed``, ``n_stopped`` (stopped early by a search) — rows with
        those statuses; ``n_excluded = count − n_ok`` (diverged, failed, or ok with a non-finite
        metric); ``failure_share = n_excluded / count``;
      * ``<m>_mean``, ``<m>_median``, ``<m>_std`` (ddof 1), ``<m>_se = std/√n_ok``, and the ±2
        standard-error band ``<m>_lo = mean − 2 se``, ``<m>_hi = mean + 2 se`` (NaN when fewer
        than two ok runs) — ``<m>`` is the metric's name, or ``metric`` for an expression;
      * ``<c>_mean`` — mean cost over the ok runs (a diverged run's time is truncated, so it is
        not a cost of reaching the error); ``<c>`` is the cost's name, or ``cost`` for an expression.

      Configurations with no ok run are kept (NaN statistics). ``attrs`` records ``metric``,
      ``cost``, ``by`` and the column names (``metric_col``, ``cost_col``).
    """
    import pandas as pd

    by = resolve_by(df, by)
    m = values(df, metric, "metric")
    c = values(df, cost, "cost")
    st = statuses(df)
    ok = (st == "ok") & np.isfinite(m)
    mn, cn = short_name(metric, "metric"), short_name(cost, "cost")
    work = df[by].reset_index(drop=True)
    work["_ok"] = ok.astype(np.int64)
    work["_div"] = (st == "diverged").astype(np.int64)
    work["_fail"] = (st == "failed").astype(np.int64)
    work["_stop"] = (st == "stopped").astype(np.int64)
    work["_m"] = np.where(ok, m, np.nan)
    work["_c"] = np.where(ok, c, np.nan)
    stats = [
        "count",
        "n_ok",
        "n_diverged",
        "n_failed",
        "n_stopped",
        "n_excluded",
        "failure_share",
        f"{mn}_mean",
        f"{mn}_median",
        f"{mn}_std",
        f"{mn}_se",
        f"{mn}_lo",
        f"{mn}_hi",
        f"{cn}_mean",
    ]
    if not by:  # a single configuration
        work["_all"] = 0
        keys = ["_all"]
    else:
        keys = by
    if len(work) == 0:
        out = pd.DataFrame({**{k: df[k].iloc[:0] for k in by}, **{s: pd.Series(dtype="float64") for s in stats}})
    else:
        g = work.groupby(keys, observed=True, dropna=False, sort=True)
        out = g.agg(
            count=("_ok", "size"),
            n_ok=("_ok", "sum"),
            n_diverged=("_div", "sum"),
            n_failed=("_fail", "sum"),
            n_stopped=("_stop", "sum"),
            mean=("_m", "mean"),
            median=("_m", "median"),
            std=("_m", "std"),
            cmean=("_c", "mean"),
        ).reset_index()
        if not by:
            out = out.drop(columns="_all")
        out["n_excluded"] = out["count"] - out["n_ok"]
        out["failure_share"] = out["n_excluded"] / out["count"]
        se = out["std"] / np.sqrt(out["n_ok"].where(out["n_ok"] > 0))
        out = out.rename(
            columns={"mean": f"{mn}_mean", "median": f"{mn}_median", "std": f"{mn}_std", "cmean": f"{cn}_mean"}
        )
        out[f"{mn}_se"] = se
        out[f"{mn}_lo"] = out[f"{mn}_mean"] - 2 * se
        out[f"{mn}_hi"] = out[f"{mn}_mean"] + 2 * se
        out = out[by + stats].reset_index(drop=True)
    out.attrs = {"aggregate": True, "metric": metric, "cost": cost, "by": list(by), "metric_col": mn, "cost_col": cn}
    return out


def is_aggregate(df: pd.DataFrame) -> bool:
    """Whether ``df`` came from :func:`aggregate` (judged by its ``attrs``)."""
    return bool(getattr(df, "attrs", {}).get("aggregate"))
