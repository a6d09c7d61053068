"""Pareto fronts of error versus cost (both minimised).

Dominance is the strict definition: point ``a`` dominates ``b`` when ``a.x ≤ b.x`` and
``a.y ≤ b.y`` with at least one of the two strictly smaller. Consequences, chosen deliberately:

* **equal (x, y) points are all kept** — identical points do not dominate each other, so if one
  is on the front every copy is (two seeds or configurations that tie are both shown);
* a point with equal ``x`` but larger ``y`` (or equal ``y`` but larger ``x``) is dominated;
* rows with a non-finite ``x`` or ``y`` (NaN, ±inf), and rows whose ``status`` is not ``ok``
  (diverged/failed, or stopped early by a search), are never on a front; they are counted in ``front.attrs["excluded"]``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from rsng.analysis._frame import resolve_by, statuses, values

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["pareto_mask", "pareto_front"]


def pareto_mask(x, y) -> np.ndarray:
    """Boolean mask of the non-dominated points of ``(x, y)`` (both minimised), O(n log n).

    Sort by ``x`` then ``y``, collapse identical ``(x, y)`` points, keep a point when its ``y`` is
    strictly below the running minimum of the ``y`` before it, and give every copy of a point the
    result of its first copy. Non-finite points are ``False`` and take no part.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.shape[0]} and {y.shape[0]}")
    mask = np.zeros(x.shape[0], dtype=bool)
    finite = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    if finite.size == 0:
        return mask
    xf, yf = x[finite], y[finite]
    order = np.lexsort((yf, xf))  # by x, then y
    xs, ys = xf[order], yf[order]
    first = np.ones(xs.shape[0], dtype=bool)
    first[1:] = (xs[1:] != xs[:-1]) | (ys[1:] != ys[:-1])
    group = np.cumsum(first) - 1
    uy = ys[first]
    prev_min = np.empty_like(uy)
    prev_min[0] = np.inf
    if uy.size > 1:
        prev_min[1:] = np.minimum.accumulate(uy)[:-1]
    keep_unique = uy < prev_min
    mask[finite[order]] = keep_unique[group]
    return mask


def pareto_front(
    df: pd.DataFrame, x: str = "wall_s", y: str = "rel_l2", by: str | Iterable[str] | None = None
) -> pd.DataFrame:
    """The rows of ``df`` on the Pareto front of (``x``, ``y``), both minimised, per group of ``by``.

    Args:
      df: trajectory rows, or the output of :func:`rsng.analysis.aggregate` (then use e.g.
        ``x="wall_s_mean", y="rel_l2_mean"``).
      x, y: column names or expressions evaluated with ``DataFrame.eval`` (e.g. ``"steps * s**2"``
        as a cost). An expression's values are added to the result as a column named by it.
      by: column(s); one front per group (e.g. ``"problem"``). ``None``: one front over all rows.

    Returns:
      The front rows (all columns of ``df``), sorted by ``by`` then ``x`` then ``y``. Ties follow the
      module's rules: identical ``(x, y)`` points are all kept. ``attrs``: ``x``, ``y``, ``by``,
      ``n_rows`` (rows given), ``n_points`` (rows eligible: status ok, finite x and y),
      ``n_dominated``, and ``excluded`` — ``{"diverged": k, "failed": k, "non-finite": k, "stopped": k}`` (stopped early by a search), the
      rows left out before the front was computed (failures are never dropped silently).

    Raises:
      ColumnError (a ``ValueError``) naming ``x``, ``y`` or ``by`` when a column is unknown.
    """
    by_cols = resolve_by(df, by, default=()) if by is not None else []
    xv = values(df, x, "x")
    yv = values(df, y, "y")
    st = statuses(df)
    finite = np.isfinite(xv) & np.isfinite(yv)
    eligible = finite & (st == "ok")
    mask = np.zeros(len(df), dtype=bool)
    if by_cols and len(df):
        groups = df.reset_index(drop=True).groupby(by_cols, observed=True, dropna=False, sort=False).indices
        for idx in groups.values():
            idx = np.asarray(idx)
            pos = idx[eligible[idx]]
            mask[pos] = pareto_mask(xv[pos], yv[pos])
    else:
        pos = np.flatnonzero(eligible)
        mask[pos] = pareto_mask(xv[pos], yv[pos])
    front = df.iloc[np.flatnonzero(mask)].copy()
    for name, v in ((x, xv), (y, yv)):
        if name not in front.columns:
            front[name] = v[mask]
    if len(front):
        front = front.sort_values(by_cols + [x, y], kind="stable")
    excluded = {
        "diverged": int(np.sum(st == "diverged")),
        "failed": int(np.sum(st == "failed")),
        "non-finite": int(np.sum((st == "ok") & ~finite)),
        "stopped": int(np.sum(st == "stopped")),
    }
    other = int(np.sum(~np.isin(st, ["ok", "diverged", "failed", "stopped"])))
    if other:
        excluded["other status"] = other
    front.attrs = {
        "pareto": True,
        "x": x,
        "y": y,
        "by": by_cols,
        "n_rows": int(len(df)),
        "n_points": int(eligible.sum()),
        "n_dominated": int(eligible.sum() - mask.sum()),
        "excluded": excluded,
    }
    return front
