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


#: What an expression option (``--x``, ``--y``, ``cost``, ``metric``) accepts besides a column name.
EXPRESSION_SYNTAX = "column names, numbers, + - * / ** and parentheses, and the functions " + ", ".join(
    f"{f}()" for f in ("log", "log10", "log2", "sqrt", "exp", "abs")
)

_FUNCTIONS = {"log": np.log, "log10": np.log10, "log2": np.log2, "sqrt": np.sqrt, "exp": np.exp, "abs": np.abs}


def _parse_expression(expr: str, option: str):
    """The syntax tree of ``expr`` if it uses only :data:`EXPRESSION_SYNTAX` (nothing is evaluated
    here, and :func:`_evaluate` only computes arithmetic on columns); :class:`ColumnError` otherwise."""
    import ast

    if len(expr) > 500:
        raise ColumnError(option, f"expression longer than 500 characters ({len(expr)})")
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as e:
        raise ColumnError(
            option, f"cannot parse expression {expr!r} ({e.msg}); accepted: {EXPRESSION_SYNTAX}"
        ) from None
    ops = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.UAdd, ast.USub)
    for node in ast.walk(tree):
        ok = (
            isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Load, *ops))
            or (isinstance(node, ast.Constant) and type(node.value) in (int, float))
            or (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in _FUNCTIONS
                and len(node.args) == 1
                and not node.keywords
            )
        )
        if not ok:
            what = ast.get_source_segment(expr.strip(), node) or type(node).__name__
            raise ColumnError(
                option, f"{what!r} is not allowed in an expression ({expr!r}); accepted: {EXPRESSION_SYNTAX}"
            )
    return tree.body


def _evaluate(node, df: pd.DataFrame, expr: str, option: str):
    """Float64 values of a tree :func:`_parse_expression` accepted (a column → its values)."""
    import ast

    if isinstance(node, ast.Constant):
        return np.float64(node.value)
    if isinstance(node, ast.Name):
        if node.id in _FUNCTIONS and node.id not in df.columns:
            raise ColumnError(option, f"function {node.id!r} used without a call in {expr!r}")
        if node.id not in df.columns:
            raise ColumnError(
                option, f"unknown column {node.id!r} in {expr!r}; columns: {', '.join(map(str, df.columns))}"
            )
        return _numeric(df[node.id], node.id, option)
    if isinstance(node, ast.UnaryOp):
        v = _evaluate(node.operand, df, expr, option)
        return -v if isinstance(node.op, ast.USub) else +v
    if isinstance(node, ast.Call):
        return _FUNCTIONS[node.func.id](_evaluate(node.args[0], df, expr, option))
    a, b = _evaluate(node.left, df, expr, option), _evaluate(node.right, df, expr, option)
    op = type(node.op)
    return {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.true_divide, ast.Pow: np.power}[
        op
    ](a, b)


def _numeric(s, expr: str, option: str) -> np.ndarray:
    import pandas as pd

    if isinstance(s, pd.Series) and (
        isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_datetime64_any_dtype(s.dtype)
    ):
        raise ColumnError(option, f"{expr!r} is not numeric (dtype {s.dtype})")
    try:
        return pd.Series(s).to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError):
        raise ColumnError(option, f"{expr!r} is not numeric (dtype {s.dtype})") from None


def values(df: pd.DataFrame, expr: str, option: str) -> np.ndarray:
    """Float64 values of column ``expr``, or of the arithmetic expression ``expr`` over columns
    (:data:`EXPRESSION_SYNTAX`, e.g. ``"steps * s**2"``), parsed by rsng itself: nothing is handed
    to ``eval`` or ``DataFrame.eval``.

    Nulls become NaN. Raises :class:`ColumnError` (naming ``option``) for an unknown column, an
    expression outside that syntax, or non-numeric values.
    """
    if not isinstance(expr, str) or not expr.strip():
        raise ColumnError(option, f"expected a column name or an expression, got {expr!r}")
    if expr in df.columns:
        out = _numeric(df[expr], expr, option)
    else:
        tree = _parse_expression(expr, option)
        with np.errstate(all="ignore"):  # 0 / 0, log(0), overflow: NaN or inf, excluded from fronts
            out = _evaluate(tree, df, expr, option)
        out = np.broadcast_to(np.asarray(out, dtype="float64"), (len(df),)).copy()
    if out.shape != (len(df),):
        raise ColumnError(option, f"expression {expr!r} gave {out.shape} values for {len(df)} rows")
    return out


def statuses(df: pd.DataFrame) -> np.ndarray:
    """The ``status`` column as a plain string array (``"ok"`` everywhere if there is no such column)."""
    if "status" in df.columns:
        return df["status"].astype(str).to_numpy()
    return np.full(len(df), "ok", dtype=object)


def resolve_by(
    df: pd.DataFrame, by: str | Iterable[str] | None, default: Sequence[str] = CONFIG_COLUMNS, option: str = "by"
) -> list[str]:
    """``by`` as a list of existing columns; ``None`` → the ``default`` columns that ``df`` has."""
    if by is None:
        return [c for c in default if c in df.columns]
    cols = [by] if isinstance(by, str) else list(by)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ColumnError(
            option,
            f"unknown column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(repr, missing))}; columns: {', '.join(map(str, df.columns))}",
        )
    return cols
