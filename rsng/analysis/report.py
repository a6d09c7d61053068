"""A static HTML report of one sweep: plots, tables, failures, configuration and versions.

The report is a folder holding ``index.html`` and the PNG/CSV files it references (by relative
name only — no external scripts, styles or images), so it opens from disk and can be copied or
archived as it is.
"""

from __future__ import annotations

import html
import json
import math
import re
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["write_report"]

_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; }
.bad { color: #a00; font-weight: 600; } .note { color: #555; font-size: 0.9em; }
pre { background: #f7f7f7; padding: 0.7em; overflow-x: auto; font-size: 0.8em; }
"""

_FAILURE_COLUMNS = [
    "trial_id",
    "problem",
    "sampler",
    "s",
    "n",
    "depth",
    "width",
    "seed",
    "status",
    "steps",
    "diverged_step",
    "error_message",
]
_FRONT_COLUMNS = ["problem", "sampler", "s", "n", "depth", "width", "seed", "wall_s", "rel_l2", "trial_id"]


def _e(v: Any) -> str:
    return html.escape(str(v))


def _table(df: pd.DataFrame, columns: list[str] | None = None) -> str:
    if columns is not None:
        df = df[[c for c in columns if c in df.columns]]

    def fmt(v):
        if isinstance(v, (float, np.floating)):
            return "–" if not math.isfinite(v) else f"{v:.3g}"
        return str(v)

    return df.to_html(index=False, border=0, na_rep="–", escape=True, float_format=fmt)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(name)) or "x"


def _curves_for(traj: pd.DataFrame, max_curves: int) -> list[str]:
    """Trial ids to draw for one problem: all when few; else the best ok run per configuration
    (lowest rel_l2, up to ``max_curves``) plus up to 4 diverged/failed runs."""
    if len(traj) <= max_curves:
        return traj["trial_id"].tolist()
    from rsng.analysis._frame import CONFIG_COLUMNS

    ok = traj[traj["status"].astype(str) == "ok"]
    keys = [c for c in CONFIG_COLUMNS if c in ok.columns]
    best = ok.sort_values("rel_l2").drop_duplicates(keys, keep="first").head(max_curves)
    bad = traj[traj["status"].astype(str) != "ok"].head(4)
    return best["trial_id"].tolist() + bad["trial_id"].tolist()


def write_report(sweep_dir, out, *, reference: bool = True, cache_dir=None, max_curves: int = 16) -> Path:
    """Write the report of ``sweep_dir`` (``<storage>/<sweep>``) into the folder ``out``.

    Contents: run counts by status; the failure table (every diverged/failed trajectory with its
    step and error message); accuracy-versus-cost plots with their Pareto fronts (per run and per
    configuration) and anchors (the paper's Table 1; with ``reference``, the spectral reference
    solver's work-precision curve at the sweep's T, which imports the numerical core — see
    :func:`reference_work_precision`); error versus s with ±2 SE bands; error versus p when the
    architecture varies; error and least-squares residual over time; the per-configuration table;
    the sweep's configuration and versions (``sweep.json`` and the versions recorded per run);
    files skipped while loading.

    Returns the path of ``index.html``. Raises ``FileNotFoundError`` when ``sweep_dir`` is not a
    sweep folder.
    """
    import rsng.results as results
    from rsng.analysis.anchors import paper_points, reference_work_precision
    from rsng.analysis.pareto import pareto_front
    from rsng.analysis.plots import plot_error_over_time, plot_error_vs_s, plot_p_vs_error, plot_pareto
    from rsng.analysis.stats import aggregate

    sweep_dir = results.storage_path(sweep_dir)  # a local folder or an object store URI
    if not results.is_sweep_dir(sweep_dir):
        raise FileNotFoundError(f"{sweep_dir} is not a sweep folder (no sweep.json, trajectories/ or steps/ inside)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", results.ResultsWarning)  # listed from res.skipped below
        res = results.load(sweep_dir)
    traj, steps = res.trajectories, res.steps
    meta = res.meta or {}
    name = meta.get("name") or sweep_dir.name
    written: list[str] = []
    body: list[str] = []

    def save(fig, fname: str) -> str:
        fig.savefig(out / fname, dpi=110)
        written.append(fname)
        return f'<p><img src="{_e(fname)}" alt="{_e(fname)}"></p>'

    def csv(df: pd.DataFrame, fname: str) -> str:
        df.to_csv(out / fname, index=False)
        written.append(fname)
        return f'<a href="{_e(fname)}">{_e(fname)}</a>'

    # -- overview ------------------------------------------------------------------------------
    st = traj["status"].astype(str) if len(traj) else traj.get("status", [])
    counts = {s: int((st == s).sum()) for s in results.STATUSES}
    body.append(f"<h1>rsng sweep report: {_e(name)}</h1>")
    if meta.get("description"):
        body.append(f"<p>{_e(meta['description'])}</p>")
    summary = ", ".join(f'<span class="{"bad" if s != "ok" and n else ""}">{n} {s}</span>' for s, n in counts.items())
    body.append(
        f"<p>{len(traj)} trajectories: {summary}. Folder: <code>{_e(sweep_dir.resolve())}</code>. "
        f"Report written {_e(datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC'))}.</p>"
    )
    if len(traj) == 0:
        body.append('<p class="bad">No trajectories in this sweep yet.</p>')

    # -- failures --------------------------------------------------------------------------------
    body.append("<h2>Failures</h2>")
    if len(traj):
        bad = traj[(st != "ok") & (st != "stopped")]
        if len(bad):
            bad = bad.copy()
            bad["error_message"] = bad["error_message"].fillna("").astype(str).str.slice(0, 300)
            body.append(
                f'<p class="bad">{len(bad)} of {len(traj)} trajectories did not finish ok; they have no '
                f"error value and are not on any plot's points, but are counted in every table.</p>"
            )
            body.append(_table(bad, _FAILURE_COLUMNS))
            body.append(f"<p>{csv(bad[[c for c in _FAILURE_COLUMNS if c in bad.columns]], 'failures.csv')}</p>")
        else:
            body.append("<p>None: every trajectory finished with status ok.</p>")
        stopped = traj[st == "stopped"]
        if len(stopped):  # a search's early stopping (docs/search.md): kept, off the fronts
            body.append("<h2>Stopped early</h2>")
            body.append(
                f"<p>{len(stopped)} of {len(traj)} trajectories were stopped by the search at the step shown "
                "(their running error was above the front at equal or lower cost); they are on no front "
                "and in no recommendation, and are counted here and in the tables.</p>"
            )
            body.append(_table(stopped, _FAILURE_COLUMNS))

    if len(traj):
        problems = list(dict.fromkeys(traj["problem"].astype(str)))
        # -- reference anchors ---------------------------------------------------------------------
        refs, ref_notes = [], []
        if reference:
            for p in problems:
                tends = traj.loc[traj["problem"].astype(str) == p, "t_end"].unique()
                if len(tends) != 1:
                    ref_notes.append(f"{p}: several T in the sweep, no reference curve")
                    continue
                try:
                    refs.append(reference_work_precision(p, t_end=float(tends[0]), cache_dir=cache_dir))
                except ValueError as e:
                    ref_notes.append(f"{p}: {e}")
        import pandas as pd

        ref_df = pd.concat(refs, ignore_index=True) if refs else None

        # -- accuracy versus cost --------------------------------------------------------------------
        body.append("<h2>Accuracy versus cost</h2>")
        body.append(
            '<p class="note">Each point is one ok trajectory (marching wall time, compilation excluded; '
            "relative space-time L2 error against the product's spectral reference). The black staircase "
            "is the Pareto front (runs with equal time and error are all kept). Stars: the paper's Table 1 "
            "(V100, T=4, full presets) for orientation. Dashed grey: the product's own spectral ETDRK4 "
            "solver at coarse resolutions on this machine, at the sweep's T.</p>"
        )
        body.append(save(plot_pareto(traj, reference=ref_df), "pareto.png"))
        front = pareto_front(traj, "wall_s", "rel_l2", by="problem")
        ex = front.attrs["excluded"]
        body.append(
            f"<p>Front per problem ({len(front)} of {front.attrs['n_points']} eligible runs; excluded before "
            f"the front: {_e(', '.join(f'{v} {k}' for k, v in ex.items()))}):</p>"
        )
        body.append(_table(front, _FRONT_COLUMNS))
        agg = aggregate(traj)
        cfront = pareto_front(agg, "wall_s_mean", "rel_l2_mean", by="problem")
        body.append("<p>Front of the configurations (means over seeds):</p>")
        body.append(
            _table(
                cfront,
                [c for c in agg.columns if c in ("problem", "sampler", "s", "n", "depth", "width")]
                + ["count", "n_ok", "rel_l2_mean", "rel_l2_lo", "rel_l2_hi", "wall_s_mean"],
            )
        )
        body.append(f"<p>{csv(front, 'front.csv')}</p>")
        if ref_df is not None:
            body.append(
                f"<p>Spectral reference, this machine ({_e(', '.join(r.attrs['reference_method'] for r in refs))}"
                " as the truth):</p>"
            )
            body.append(_table(ref_df, ["problem", "N", "dt", "t_end", "rel_l2", "wall_s"]))
        for n in ref_notes:
            body.append(f'<p class="note">Reference curve: {_e(n)}</p>')
        pp = paper_points()
        pp = pp[pp["problem"].isin(problems)]
        if len(pp):
            body.append("<p>Paper (Table 1, V100, T=4):</p>")
            body.append(_table(pp, ["problem", "setting", "rel_l2", "wall_s"]))

        # -- error versus s / p --------------------------------------------------------------------
        body.append("<h2>Error versus sparsity s</h2>")
        body.append(
            '<p class="note">Mean over seeds with ±2 standard errors (bars and bands); ✗ marks '
            "configurations with diverged or failed seeds.</p>"
        )
        body.append(save(plot_error_vs_s(traj), "error_vs_s.png"))
        if traj["p"].nunique() > 1:
            body.append("<h2>Error versus network size p</h2>")
            body.append(save(plot_p_vs_error(traj), "p_vs_error.png"))

        # -- over time -----------------------------------------------------------------------------
        body.append("<h2>Error and least-squares residual over time</h2>")
        for p in problems:
            sub = traj[traj["problem"].astype(str) == p]
            ids = _curves_for(sub, max_curves)
            if not len(steps) or not steps["trial_id"].isin(ids).any():
                body.append(f"<p>{_e(p)}: no per-time series stored.</p>")
                continue
            note = (
                ""
                if len(ids) == len(sub)
                else (f" (the best run of each configuration, {len(ids)} of {len(sub)} trajectories)")
            )
            body.append(f"<h3>{_e(p)}{_e(note)}</h3>")
            fig = plot_error_over_time(steps, ids, trajectories=sub, columns=("rel_l2_t", "ls_residual"))
            body.append(save(fig, f"time_{_safe(p)}.png"))

        # -- per configuration -----------------------------------------------------------------------
        body.append("<h2>Per configuration</h2>")
        same = [c for c in agg.attrs["by"] if agg[c].nunique(dropna=False) == 1 and len(agg) > 1]
        if same:
            body.append(
                "<p>Same for every configuration: "
                + _e(
                    ", ".join(
                        f"{c}={agg[c].iloc[0]:g}"
                        if isinstance(agg[c].iloc[0], (float, np.floating))
                        else f"{c}={agg[c].iloc[0]}"
                        for c in same
                    )
                )
                + ".</p>"
            )
        body.append(
            '<p class="note">Statistics over seeds of the ok runs; <code>lo</code>/<code>hi</code> = mean ∓ 2 '
            "standard errors; the cost mean is over ok runs; diverged/failed runs are counted, never dropped.</p>"
        )
        body.append(_table(agg.drop(columns=same)))
        body.append(f"<p>{csv(agg, 'aggregate.csv')}</p>")

    # -- configuration and versions ----------------------------------------------------------------
    body.append("<h2>Sweep configuration and versions</h2>")
    if meta:
        rows = []
        for key in ("name", "description", "created_at", "n_trajectories", "schema_version"):
            if key in meta:
                rows.append((key, meta[key]))
        for section in ("grid", "fixed"):
            for k, v in (meta.get(section) or {}).items():
                rows.append((f"{section}.{k}", json.dumps(v)))
        for k, v in (meta.get("versions") or {}).items():
            rows.append((f"versions.{k}", v))
        body.append(
            "<table><tr><th>key</th><th>value</th></tr>"
            + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows)
            + "</table>"
        )
        body.append(
            "<details><summary>sweep.json</summary><pre>"
            + _e(json.dumps(meta, indent=2, default=str))
            + "</pre></details>"
        )
    else:
        body.append("<p>No sweep.json.</p>")
    if len(traj):
        vcols = [c for c in ("rsng_version", "git_sha", "jax_version", "device", "precision") if c in traj.columns]
        body.append("<p>Recorded per trajectory:</p>")
        body.append(_table(traj.groupby(vcols, observed=True, dropna=False).size().reset_index(name="trajectories")))
    if res.skipped:
        body.append("<h2>Skipped files</h2>")
        body.append(
            "<table><tr><th>file</th><th>reason</th></tr>"
            + "".join(f"<tr><td>{_e(f)}</td><td>{_e(r)}</td></tr>" for f, r in res.skipped)
            + "</table>"
        )

    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>rsng report: {_e(name)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
