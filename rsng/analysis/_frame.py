"""Small helpers shared by the analysis modules: column-or-expression values, the ok mask, labels."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

# the configuration columns of a trajectory row that define "one configuration" (what seeds are
# averaged over): the run record's stored fields that do not vary with the seed (``seed``, the
# sketch seed, is not among them) — one list, declared in rsng/core/record.py
from rsng.core.record import CONFIG_COLUMNS

if TYPE_CHECKING:
    import pandas as pd


#: Axis labels (with units) of the columns the plots use most.
LABELS = {
    "wall_s": "marching wall time [s] (compile excluded)",
    "compile_s": "compile time [s]",
    "rel_l2": "relative space-time L2 error",
    "rel_l2_final": "relative L2 error at the final time",
    "rel_l2_t0": "relative L2 error at t = 0",
    "rel_l2_t": "relative L2 error at time t",
    "ls_residual": "relative least-squares residual (1st RK stage)",
    "s": "parameters updated per step s",
    "p": "network parameters p",
    "steps": "time steps",
    "t": "t",
}


class ColumnError(ValueError):
    """An option names a column that is not there (or an expression that cannot be evaluated).

    ``option`` is the argument's name (``"x"``, ``"y"``, ``"by"``, ``"metric"``, ``"cost"``) so a
    command line can name its flag.
    """

    def __init__(self, option: str, message: str):
        super().__init__(f"{option}: {message}")
        self.option = option
        self.detail = message


def label(expr: str) -> str:
    """Axis label for a column name or expression."""
    return LABELS.get(expr, expr)


def short_name(expr: str, default: str) -> str:
    """``expr`` when it is a plain identifier (a column name), else ``default`` (for expressions)."""
    return expr if isinstance(expr, str) and expr.isidentifier() else default


def values(df: pd.DataFrame, expr: str, option: str) -> np.ndarray:
    """Float64 values of column ``expr``, or of the expression ``expr`` evaluated with ``df.eval``.

    Nulls become NaN. Raises :class:`ColumnError` (naming ``option``) for an unknown column, an
    expression that cannot be evaluated, or non-numeric values.
    """
    import pandas as pd

    if not isinstance(expr, str) or not expr.strip():
        raise ColumnError(option, f"expected a column name or an expression, got {expr!r}")
    if expr in df.columns:
        s = df[expr]
    else:
        try:
            s = df.eval(expr)
        except Exception as e:  # noqa: BLE001 - pandas raises many kinds here (UndefinedVariableError, SyntaxError, …)
            what = "unknown column" if expr.isidentifier() else "cannot evaluate expression"
            cols = ", ".join(map(str, df.columns))
            raise ColumnError(option, f"{what} {expr!r} ({type(e).__name__}: {e}); columns: {cols}") from None
        if isinstance(s, pd.DataFrame):
            raise ColumnError(option, f"expression {expr!r} must give one value per row, not a frame")
        if np.ndim(s) == 0:
            s = pd.Series(np.full(len(df), s), index=df.index)
    if isinstance(s, pd.Series) and (isinstance(s.dtype, pd.CategoricalDtype)
                                     or pd.api.types.is_datetime64_any_dtype(s.dtype)):
        raise ColumnError(option, f"{expr!r} is not numeric (dtype {s.dtype})")
    try:
        out = pd.Series(s).to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError):
        raise ColumnError(option, f"{expr!r} is not numeric (dtype {s.dtype})") from None
    if out.shape != (len(df),):
        raise ColumnError(option, f"expression {expr!r} gave {out.shape} values for {len(df)} rows")
    return out


def statuses(df: pd.DataFrame) -> np.ndarray:
    """The ``status`` column as a plain string array (``"ok"`` everywhere if there is no such column)."""
    if "status" in df.columns:
        return df["status"].astype(str).to_numpy()
    return np.full(len(df), "ok", dtype=object)


def resolve_by(df: pd.DataFrame, by: str | Iterable[str] | None, default: Sequence[str] = CONFIG_COLUMNS,
               option: str = "by") -> list[str]:
    """``by`` as a list of existing columns; ``None`` → the ``default`` columns that ``df`` has."""
    if by is None:
        return [c for c in default if c in df.columns]
    cols = [by] if isinstance(by, str) else list(by)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ColumnError(option, f"unknown column{'s' if len(missing) > 1 else ''} "
                                  f"{', '.join(map(repr, missing))}; columns: {', '.join(map(str, df.columns))}")
    return cols
