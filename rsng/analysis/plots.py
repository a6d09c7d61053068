"""Plots of sweep results. matplotlib is imported inside the functions only.

Every function builds a :class:`matplotlib.figure.Figure` directly (no ``pyplot``, no global
backend state: saving renders with Agg), returns it, and also saves it when ``path`` is given. In
a notebook, ``%matplotlib inline`` displays a returned figure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from rsng.analysis._frame import label, statuses, values
from rsng.analysis.pareto import pareto_front
from rsng.analysis.stats import aggregate

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["plot_pareto", "plot_error_vs_s", "plot_error_over_time", "plot_p_vs_error"]

#: Fixed colours of the samplers (tab10 order), so a sampler has the same colour in every plot.
SAMPLER_ORDER = ("uniform", "column_norm", "leverage", "pivoted_qr", "gaussian", "dense")
_LINESTYLES = ("-", "--", ":", "-.")


def _new_figure(n: int, ncols: int = 2, panel: tuple[float, float] = (5.6, 4.2)):
    from matplotlib.figure import Figure

    n = max(1, n)
    ncols = min(n, ncols)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n])


def _palette(keys: Iterable) -> dict:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    keys = list(dict.fromkeys(keys))
    known = [k for k in SAMPLER_ORDER if k in keys]
    rest = sorted((k for k in keys if k not in SAMPLER_ORDER), key=str)
    colors = {}
    for k in known:
        colors[k] = cmap(SAMPLER_ORDER.index(k) % 10)
    for i, k in enumerate(rest):
        colors[k] = cmap((len(SAMPLER_ORDER) + i) % 10 if known else i % 10)
    return colors


def _panels(df: pd.DataFrame, by: str | None) -> list:
    if by is None or by not in df.columns:
        return [None]
    return [v for v in dict.fromkeys(df[by].astype(str).tolist())] or [None]


def _subset(df: pd.DataFrame, by: str | None, value) -> pd.DataFrame:
    if value is None:
        return df
    return df[df[by].astype(str) == value]


def _grid(ax) -> None:
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.08)


def _figure_legend(fig: Figure, axes) -> None:
    """One legend for all panels, below them (entries de-duplicated by label)."""
    seen = {}
    for ax in axes:
        for h, lbl in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lbl, h)
    if seen:
        fig.legend(
            list(seen.values()),
            list(seen.keys()),
            loc="outside lower center",
            ncol=min(4, len(seen)),
            fontsize=8,
            frameon=False,
        )


def _finish(fig: Figure, path) -> Figure:
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def _fmt_g(v) -> str:
    return f"{v:g}" if isinstance(v, (float, np.floating)) else str(v)


def _t_end_note(df: pd.DataFrame) -> str:
    if "t_end" in df.columns and df["t_end"].nunique() == 1:
        return f", T={_fmt_g(float(df['t_end'].iloc[0]))}"
    return ""


def plot_pareto(
    df: pd.DataFrame,
    x: str = "wall_s",
    y: str = "rel_l2",
    *,
    by: str | None = "problem",
    hue: str | None = "sampler",
    paper: bool = True,
    reference: pd.DataFrame | None = None,
    annotate: str | None = None,
    path=None,
) -> Figure:
    """Accuracy versus cost, log-log, one panel per value of ``by`` (e.g. per problem).

    Every ok trajectory is a point coloured by ``hue``; the Pareto front (:func:`pareto_front`) is
    drawn as a staircase. Diverged/failed runs cannot be placed; their number is written in the
    panel. Anchors: the paper's Table 1 points (:func:`paper_points`, when ``x``/``y`` are
    ``wall_s``/``rel_l2`` and ``paper``) and a reference work-precision curve (the frame of
    :func:`reference_work_precision`, matched on ``problem``). ``annotate`` names a column (e.g. ``"s"``)
    whose value is written next to every plotted run.
    """
    from rsng.analysis.anchors import PAPER_LABEL, paper_points

    panels = _panels(df, by)
    fig, axes = _new_figure(len(panels))
    hues = df[hue].astype(str).tolist() if hue and hue in df.columns else []
    colors = _palette(hues)
    for ax, pv in zip(axes, panels):
        sub = _subset(df, by, pv)
        front = pareto_front(sub, x, y)
        xv, yv = values(sub, x, "x"), values(sub, y, "y")
        ok = (statuses(sub) == "ok") & np.isfinite(xv) & np.isfinite(yv) & (xv > 0) & (yv > 0)
        if hue and hue in sub.columns:
            hv = sub[hue].astype(str).to_numpy()
            for h in dict.fromkeys(hv[ok]):
                sel = ok & (hv == h)
                ax.scatter(xv[sel], yv[sel], s=28, color=colors[h], alpha=0.8, label=f"{hue}={h}", zorder=3)
        else:
            ax.scatter(xv[ok], yv[ok], s=28, alpha=0.8, label="runs", zorder=3)
        if annotate and annotate in sub.columns:
            for xi, yi, v in zip(xv[ok], yv[ok], sub[annotate].to_numpy()[ok]):
                ax.annotate(
                    f"{annotate}={v}", (xi, yi), fontsize=7, xytext=(4, 3), textcoords="offset points", color="0.25"
                )
        if len(front):
            fx, fy = values(front, x, "x"), values(front, y, "y")
            pos = (fx > 0) & (fy > 0)
            ax.step(fx[pos], fy[pos], where="post", color="black", lw=1.3, zorder=4, label="Pareto front")
            ax.scatter(fx[pos], fy[pos], s=60, facecolors="none", edgecolors="black", lw=1.2, zorder=5)
        problem = (
            pv
            if by == "problem"
            else (str(sub["problem"].iloc[0]) if "problem" in sub.columns and sub["problem"].nunique() == 1 else None)
        )
        if paper and x == "wall_s" and y == "rel_l2" and problem is not None:
            pp = paper_points(problem)
            if len(pp):
                rs = pp[pp["method"] == "RSNG"]
                ot = pp[pp["method"] != "RSNG"]
                ax.scatter(
                    rs["wall_s"],
                    rs["rel_l2"],
                    marker="*",
                    s=140,
                    color="black",
                    zorder=6,
                    label=f"{PAPER_LABEL}, RSNG (T=4)",
                )
                if len(ot):
                    ax.scatter(
                        ot["wall_s"],
                        ot["rel_l2"],
                        marker="P",
                        s=70,
                        color="0.55",
                        zorder=6,
                        label=f"{PAPER_LABEL}, PINNs (T=4)",
                    )
                for _, r in pp.iterrows():
                    ax.annotate(
                        r["setting"].replace("RSNG ", ""),
                        (r["wall_s"], r["rel_l2"]),
                        fontsize=6.5,
                        xytext=(4, 3),
                        textcoords="offset points",
                        color="0.25",
                    )
        if reference is not None and x == "wall_s" and y == "rel_l2" and len(reference):
            ref = (
                reference
                if problem is None or "problem" not in reference.columns
                else reference[reference["problem"] == problem]
            )
            ref = ref[np.isfinite(ref["rel_l2"]) & (ref["rel_l2"] > 0)]  # in resolution order
            if len(ref):
                T = f", T={_fmt_g(float(ref['t_end'].iloc[0]))}" if "t_end" in ref.columns else ""
                ax.plot(
                    ref["wall_s"],
                    ref["rel_l2"],
                    "--",
                    marker="o",
                    ms=3.5,
                    color="tab:gray",
                    zorder=2,
                    label=f"spectral ETDRK4, this machine{T}",
                )
                for _, r in ref.iterrows():
                    ax.annotate(
                        f"N={int(r['N'])}",
                        (r["wall_s"], r["rel_l2"]),
                        fontsize=6,
                        color="tab:gray",
                        xytext=(3, -8),
                        textcoords="offset points",
                    )
        ex = front.attrs["excluded"]
        missing = {k: v for k, v in ex.items() if v}
        nonpos = int(np.sum((statuses(sub) == "ok") & np.isfinite(xv) & np.isfinite(yv) & ~((xv > 0) & (yv > 0))))
        if nonpos:
            missing["≤ 0 (log axes)"] = nonpos
        note = "not shown: " + ", ".join(f"{v} {k}" for k, v in missing.items()) if missing else "all runs shown"
        ax.text(
            0.01,
            0.01,
            note,
            transform=ax.transAxes,
            fontsize=7.5,
            va="bottom",
            ha="left",
            color="firebrick" if missing else "0.35",
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(label(x))
        ax.set_ylabel(label(y))
        title = f"{pv}" if pv is not None else "all runs"
        ax.set_title(f"{title}: {int(ok.sum())} runs{_t_end_note(sub)}", fontsize=10)
        _grid(ax)
    _figure_legend(fig, axes)
    return _finish(fig, path)


def _value_ticks(ax, xs) -> None:
    """Major ticks of a log x axis at the data values, labelled plainly (s, p are a handful of
    integers; matplotlib's minor 2×10², 3×10² labels collide)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    xs = np.unique(np.asarray(xs, dtype=float))
    xs = xs[np.isfinite(xs) & (xs > 0)]
    if not xs.size:
        return
    ax.set_xticks(xs)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    if xs.size > 5:
        for t in ax.get_xticklabels():
            t.set_rotation(45)
            t.set_horizontalalignment("right")


def _band_floor(lo: np.ndarray, mean: np.ndarray) -> float:
    pos = np.concatenate([lo[np.isfinite(lo) & (lo > 0)], mean[np.isfinite(mean) & (mean > 0)]])
    return float(pos.min()) * 0.5 if pos.size else 1e-12


def _line_keys(agg: pd.DataFrame, by: Sequence[str], exclude: Sequence[str], first: str | None) -> list[str]:
    keys = [first] if first and first in by else []
    keys += [k for k in by if k not in exclude and k not in keys and agg[k].nunique(dropna=False) > 1]
    return keys


def _line_label(key_vals: dict, hue: str | None) -> str:
    parts = []
    for k, v in key_vals.items():
        parts.append(str(v) if k == hue else f"{k}={_fmt_g(v)}")
    return ", ".join(parts) or "runs"


def _error_bars(ax, xs, agg_rows: pd.DataFrame, mc: str, color, floor: float, lbl: str, band: bool):
    mean = agg_rows[f"{mc}_mean"].to_numpy(float)
    lo = agg_rows[f"{mc}_lo"].to_numpy(float)
    hi = agg_rows[f"{mc}_hi"].to_numpy(float)
    has = np.isfinite(mean)
    lo_c = np.where(np.isfinite(lo), np.maximum(lo, floor), mean)
    hi_c = np.where(np.isfinite(hi), hi, mean)
    ax.errorbar(
        xs[has],
        mean[has],
        yerr=[(mean - lo_c)[has], (hi_c - mean)[has]],
        marker="o",
        ms=4.5,
        lw=1.4,
        capsize=3,
        color=color,
        label=lbl,
        zorder=3,
    )
    if band and has.sum() > 1:
        ax.fill_between(xs[has], lo_c[has], hi_c[has], color=color, alpha=0.18, lw=0, zorder=2)


def _mark_failures(ax, xs, rows: pd.DataFrame, mc: str, color) -> int:
    n = 0
    for xi, (_, r) in zip(xs, rows.iterrows()):
        if r["n_excluded"] <= 0:
            continue
        n += 1
        txt = f"{int(r['n_excluded'])}/{int(r['count'])} failed"
        if r["n_ok"] > 0 and np.isfinite(r[f"{mc}_mean"]):
            ax.annotate(
                txt, (xi, r[f"{mc}_mean"]), fontsize=7, color="firebrick", xytext=(4, 4), textcoords="offset points"
            )
            ax.scatter([xi], [r[f"{mc}_mean"]], marker="x", s=50, color="firebrick", zorder=5)
        else:
            tr = ax.get_xaxis_transform()
            ax.axvline(xi, color="firebrick", lw=0.8, ls=":", alpha=0.7)  # also widens the x range to it
            ax.scatter([xi], [0.97], marker="x", s=50, color=color, transform=tr, zorder=5)
            ax.annotate(
                txt + " (all)",
                (xi, 0.97),
                xycoords=tr,
                fontsize=7,
                color="firebrick",
                xytext=(-5, -3),
                textcoords="offset points",
                ha="right",
                va="top",
            )
    return n


def plot_error_vs_s(
    df: pd.DataFrame, metric: str = "rel_l2", *, by: str | None = "problem", hue: str | None = "sampler", path=None
) -> Figure:
    """Mean error over seeds versus the sparsity ``s`` with ±2 standard-error bars and bands, one
    line per ``hue`` value (and per any other configuration column that varies), one panel per
    ``by`` value. Configurations with diverged/failed seeds are marked with ✗ and "k/n failed"
    (at the top of the panel when no seed succeeded). A band reaching ≤ 0 is drawn to the bottom."""
    agg = aggregate(df, metric=metric)
    mc = agg.attrs["metric_col"]
    panels = _panels(agg, by)
    fig, axes = _new_figure(len(panels))
    colors = _palette(agg[hue].astype(str) if hue and hue in agg.columns else [])
    for ax, pv in zip(axes, panels):
        sub = _subset(agg, by, pv)
        keys = _line_keys(sub, agg.attrs["by"], [by, "s", "p"], hue)
        floor = _band_floor(sub[f"{mc}_lo"].to_numpy(float), sub[f"{mc}_mean"].to_numpy(float))
        groups = sub.groupby(keys, observed=True, sort=True, dropna=False) if keys else [((), sub)]
        nfail = 0
        for i, (kv, g) in enumerate(groups):
            kv = kv if isinstance(kv, tuple) else (kv,)
            kd = dict(zip(keys, kv))
            g = g.sort_values("s")
            c = colors.get(str(kd.get(hue)), f"C{i % 10}")
            xs = g["s"].to_numpy(float)
            _error_bars(ax, xs, g, mc, c, floor, _line_label(kd, hue), band=True)
            nfail += _mark_failures(ax, xs, g, mc, c)
        ax.set_xscale("log")
        ax.set_yscale("log")
        _value_ticks(ax, sub["s"])
        ax.set_xlabel(label("s"))
        ax.set_ylabel(f"{label(metric)}\n(mean ± 2 SE over seeds)")
        nseeds = f"{int(sub['count'].min())}–{int(sub['count'].max())}" if len(sub) else "0"
        ax.set_title(f"{pv if pv is not None else 'all'}: runs per point {nseeds}{_t_end_note(sub)}", fontsize=10)
        _grid(ax)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7.5, loc="best")
    return _finish(fig, path)


def plot_error_over_time(
    steps: pd.DataFrame,
    trial_ids: Iterable[str] | str | None = None,
    *,
    trajectories: pd.DataFrame | None = None,
    columns: str | Sequence[str] = "rel_l2_t",
    hue: str = "sampler",
    path=None,
) -> Figure:
    """Per-time curves (``rel_l2_t``, ``ls_residual``, …) of some trajectories, log y, one panel
    per column.

    Args:
      steps: a steps frame (``load(path).steps`` or ``load_steps(path, ids)``).
      trial_ids: the trajectories to draw (default: all in ``steps``).
      trajectories: their summary rows; when given, curves are labelled ``sampler s=… seed=…``
        (plus the problem when several), coloured by ``hue`` with one line style per seed, and a
        diverged run's last point is marked ✗; a single trajectory is titled with its configuration
        and status (the figure ``rsng solve --out`` writes and each MLflow child run carries).
      columns: the steps column(s) to plot.
    """
    import pandas as pd

    cols = [columns] if isinstance(columns, str) else list(columns)
    for c in cols:
        if c not in steps.columns:
            from rsng.analysis._frame import ColumnError

            raise ColumnError("columns", f"unknown steps column {c!r}; columns: {', '.join(map(str, steps.columns))}")
    if trial_ids is not None:
        ids = [trial_ids] if isinstance(trial_ids, str) else list(trial_ids)
        steps = steps[steps["trial_id"].isin(ids)]
    else:
        ids = list(dict.fromkeys(steps["trial_id"].tolist()))
    info = {}
    if trajectories is not None and len(trajectories):
        tr = trajectories.drop_duplicates("trial_id", keep="last").set_index("trial_id")
        info = {t: tr.loc[t] for t in ids if t in tr.index}
    several_problems = len({str(r["problem"]) for r in info.values()}) > 1 if info else False
    colors = _palette(str(r[hue]) for r in info.values() if hue in r.index)
    # one colour per configuration (seeds share it and differ by line style); by hue alone when only
    # the hue varies among the curves
    varying: list[str] = []
    config_color: dict = {}
    if info:
        from rsng.analysis._frame import CONFIG_COLUMNS

        sel = pd.DataFrame(list(info.values()))
        varying = [c for c in CONFIG_COLUMNS if c in sel.columns and sel[c].astype(str).nunique() > 1]
        if set(varying) - {hue}:
            import matplotlib

            keys = list(dict.fromkeys(tuple(str(r[c]) for c in varying) for r in info.values()))
            cmap = matplotlib.colormaps["tab10" if len(keys) <= 10 else "tab20"]
            config_color = {k: cmap(i % cmap.N) for i, k in enumerate(keys)}
    seeds = sorted({int(r["seed"]) for r in info.values() if "seed" in r.index})
    fig, axes = _new_figure(len(cols), ncols=len(cols), panel=(6.0, 4.2))
    series = {t: g.sort_values("t") for t, g in steps.groupby("trial_id", sort=False)}
    if len(ids) == 1 and ids[0] in info:
        r = info[ids[0]].get
        fig.suptitle(
            f"{r('problem')} | {r('sampler')} s={r('s')}/{r('p')} | seed {r('seed')} (init {r('init_seed')})\n"
            f"n={r('n')} dt={r('dt')} {r('precision')} {r('integrator')}/{r('lstsq')} | {r('status')}",
            fontsize=10,
        )
    elif info and not several_problems:
        fig.suptitle(str(next(iter(info.values()))["problem"]), fontsize=11)
    for ax, col in zip(axes, cols):
        for i, t in enumerate(ids):
            g = series.get(t)
            if g is None or g.empty:
                continue
            yv = g[col].to_numpy(float)
            xv = g["t"].to_numpy(float)
            sel = np.isfinite(yv) & (yv > 0)
            r = info.get(t)
            if r is not None:
                extra = "".join(f" {k}={_fmt_g(r[k])}" for k in varying if k not in (hue, "s", "problem", "p"))
                lbl = f"{r.get(hue, '')} s={r.get('s', '?')}{extra} seed={r.get('seed', '?')}"
                if several_problems:
                    lbl = f"{r['problem']}: {lbl}"
                if config_color:
                    c = config_color[tuple(str(r[k]) for k in varying)]
                else:
                    c = colors.get(str(r.get(hue)), f"C{i % 10}")
                ls = _LINESTYLES[seeds.index(int(r["seed"])) % len(_LINESTYLES)] if "seed" in r.index else "-"
                if str(r.get("status")) == "diverged":
                    lbl += " (diverged)"
            else:
                lbl, c, ls = (t if len(t) <= 40 else t[:37] + "…"), f"C{i % 10}", "-"
            ax.plot(xv[sel], yv[sel], ls, color=c, lw=1.2, label=lbl)
            if r is not None and str(r.get("status")) != "ok" and sel.any():
                ax.scatter(xv[sel][-1:], yv[sel][-1:], marker="x", s=60, color="firebrick", zorder=5)
        ax.set_yscale("log")
        ax.set_xlabel("t")
        ax.set_ylabel(label(col))
        _grid(ax)
        ax.set_title(label(col), fontsize=10)
        if ax is axes[0] and ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6.5 if len(ids) > 8 else 7.5, ncol=2 if len(ids) > 10 else 1, loc="best")
    return _finish(fig, path)


def plot_p_vs_error(
    df: pd.DataFrame, metric: str = "rel_l2", *, by: str | None = "problem", hue: str | None = "width", path=None
) -> Figure:
    """Mean error (±2 SE over seeds) versus the number of network parameters ``p`` — the
    architecture sweep (depth × width). One line per ``hue`` value (default: width, so a line
    runs over depths, each point labelled ``d=<depth>``), one panel per ``by`` value; failures
    are marked as in :func:`plot_error_vs_s`."""
    agg = aggregate(df, metric=metric)
    mc = agg.attrs["metric_col"]
    panels = _panels(agg, by)
    fig, axes = _new_figure(len(panels))
    for ax, pv in zip(axes, panels):
        sub = _subset(agg, by, pv)
        keys = _line_keys(sub, agg.attrs["by"], [by, "p", "depth"] + ([] if hue == "width" else ["width"]), hue)
        floor = _band_floor(sub[f"{mc}_lo"].to_numpy(float), sub[f"{mc}_mean"].to_numpy(float))
        groups = sub.groupby(keys, observed=True, sort=True, dropna=False) if keys else [((), sub)]
        for i, (kv, g) in enumerate(groups):
            kv = kv if isinstance(kv, tuple) else (kv,)
            kd = dict(zip(keys, kv))
            g = g.sort_values("p")
            c = f"C{i % 10}"
            xs = g["p"].to_numpy(float)
            _error_bars(
                ax, xs, g, mc, c, floor, ", ".join(f"{k}={_fmt_g(v)}" for k, v in kd.items()) or "runs", band=False
            )
            _mark_failures(ax, xs, g, mc, c)
            if "depth" in g.columns:
                for xi, (_, r) in zip(xs, g.iterrows()):
                    if np.isfinite(r[f"{mc}_mean"]):
                        ax.annotate(
                            f"d={int(r['depth'])}",
                            (xi, r[f"{mc}_mean"]),
                            fontsize=7,
                            color=c,
                            xytext=(4, -10),
                            textcoords="offset points",
                        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        _value_ticks(ax, sub["p"])
        ax.set_xlabel(label("p"))
        ax.set_ylabel(f"{label(metric)}\n(mean ± 2 SE over seeds)")
        ax.set_title(f"{pv if pv is not None else 'all'}{_t_end_note(sub)}", fontsize=10)
        _grid(ax)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7.5, loc="best")
    return _finish(fig, path)
