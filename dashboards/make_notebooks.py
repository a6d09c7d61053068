"""Write the dashboard notebooks (no outputs) with nbformat: ``python dashboards/make_notebooks.py``.

The notebooks are generated so that they stay plain, reviewable and output-free; edit the cells
here and re-run. ``tests/analysis`` checks that the committed files equal what this script writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """import os

# The results this dashboard shows: a sweep folder <storage>/<sweep> (or a storage root holding
# several sweeps). Set the environment variable RSNG_RESULTS to override it without editing.
RESULTS = os.environ.get("RSNG_RESULTS", "../results/sparsity-smoke")"""

IMPORTS = """%matplotlib inline
import pandas as pd
from IPython.display import display

import rsng.analysis as an
import rsng.results as results

pd.set_option("display.width", 200)
pd.set_option("display.max_columns", 40)
res = results.load(RESULTS)
traj = res.trajectories
print(f"{RESULTS}: {len(traj)} trajectories in sweep(s) {', '.join(res.sweeps)};",
      "status:", traj["status"].value_counts().to_dict(), "; skipped files:", len(res.skipped))"""

NOTEBOOKS = {
    "pareto.ipynb": [
        new_markdown_cell(
            "# Accuracy versus cost: Pareto fronts and recommendations\n\n"
            "Loads a sweep's Parquet results, aggregates the seeds of each configuration (mean ± 2 standard "
            "errors, failures counted), draws error versus marching wall time with its Pareto front and the "
            "anchors (the paper's Table 1 and the product's spectral reference solver measured here), and "
            "recommends a configuration for an error target or a time budget. Point it at your results in "
            "the next cell (or set `RSNG_RESULTS`)."
        ),
        new_code_cell(SETUP),
        new_code_cell(IMPORTS),
        new_markdown_cell(
            "## One row per configuration (statistics over seeds)\n\n"
            "`n_ok` runs enter the statistics; `n_diverged`/`n_failed`/`n_stopped` (stopped early by a search) "
            "are shown, never dropped."
        ),
        new_code_cell("agg = an.aggregate(traj)\nagg"),
        new_markdown_cell("## Runs that did not finish ok"),
        new_code_cell(
            'bad = traj[traj["status"] != "ok"]\n'
            'print(f"{len(bad)} of {len(traj)} runs diverged, failed or were stopped early by a search")\n'
            'bad[["trial_id", "problem", "sampler", "s", "seed", "status", "diverged_step", "error_message"]]'
        ),
        new_markdown_cell(
            "## Pareto front per problem (single runs)\n\n"
            "Both coordinates minimised; runs with identical (time, error) are all kept; "
            "diverged/failed runs and runs stopped early by a search are counted in `attrs['excluded']`."
        ),
        new_code_cell(
            'front = an.pareto_front(traj, x="wall_s", y="rel_l2", by="problem")\n'
            'print("excluded before the front:", front.attrs["excluded"],\n'
            "      f\"- {len(front)} on the front, {front.attrs['n_dominated']} dominated\")\n"
            'front[["problem", "sampler", "s", "n", "seed", "wall_s", "rel_l2", "trial_id"]]'
        ),
        new_markdown_cell(
            "Front of the configurations (means over seeds), and a front with another cost "
            "(any expression over the columns, here `steps * s**2`):"
        ),
        new_code_cell(
            'display(an.pareto_front(agg, x="wall_s_mean", y="rel_l2_mean", by="problem"))\n'
            'an.pareto_front(traj, x="steps * s**2", y="rel_l2", by="problem")'
            '[["problem", "sampler", "s", "seed", "steps * s**2", "rel_l2"]]'
        ),
        new_markdown_cell(
            "## The plot, with anchors\n\n"
            "`reference_work_precision` runs the product's spectral ETDRK4 solver at coarse "
            "resolutions on this machine (it runs the numerical core's numpy solver: seconds), at "
            "the sweep's final time T so that it is comparable."
        ),
        new_code_cell(
            "refs = []\n"
            'for p in traj["problem"].astype(str).unique():\n'
            '    t_end = traj.loc[traj["problem"] == p, "t_end"].unique()\n'
            "    if p in an.DEFAULT_RESOLUTIONS and len(t_end) == 1:\n"
            "        refs.append(an.reference_work_precision(p, t_end=float(t_end[0])))\n"
            "reference = pd.concat(refs, ignore_index=True) if refs else None\n"
            "display(reference)\n"
            "an.plot_pareto(traj, reference=reference)"
        ),
        new_code_cell("an.paper_points()"),
        new_markdown_cell(
            "## Recommendation\n\n"
            "`target_error`: the cheapest configuration whose mean + 2 SE meets the target; "
            "`budget_s`: the lowest mean + 2 SE whose mean wall time fits. Configurations need "
            "≥ 2 ok seeds and no diverged, failed or stopped seed (`max_failure_share=0`)."
        ),
        new_code_cell(
            "TARGET_ERROR = 1e-2   # relative space-time L2 error\n"
            "BUDGET_S = 2.0        # seconds of marching\n"
            'for p in traj["problem"].astype(str).unique():\n'
            '    for kw in ({"target_error": TARGET_ERROR}, {"budget_s": BUDGET_S}):\n'
            "        try:\n"
            "            r = an.recommend(traj, problem=p, **kw)\n"
            "            print(f\"{p}, {kw}: {r.name}\\n    rel_l2 = {r['rel_l2_mean']:.3g} ± "
            "{2 * r['rel_l2_se']:.3g} (2 SE) at {r['wall_s_mean']:.3g} s; {r['criterion']}\")\n"
            "        except ValueError as e:\n"
            '            print(f"{p}, {kw}: {e}")'
        ),
    ],
    "trajectories.ipynb": [
        new_markdown_cell(
            "# Trajectories: error and least-squares residual over time\n\n"
            "The per-time series of a sweep (`steps/`): relative L2 error at each stored time and the relative "
            "residual of the least-squares problem of each step. Point it at your results in the next cell "
            "(or set `RSNG_RESULTS`)."
        ),
        new_code_cell(SETUP),
        new_code_cell(IMPORTS + '\nsteps = res.steps\nprint(len(steps), "stored steps")'),
        new_markdown_cell(
            "Which runs to draw: by default, per problem, the best and the worst ok run and every "
            "run that diverged or failed. Set `TRIALS` to a list of trial ids to choose yourself."
        ),
        new_code_cell(
            'TRIALS = None  # e.g. ["allen_cahn-uniform-s50-…"]\n\n'
            "def pick(sub):\n"
            '    ok = sub[sub["status"] == "ok"].sort_values("rel_l2")\n'
            '    ids = list(dict.fromkeys(ok["trial_id"].head(1).tolist() + ok["trial_id"].tail(1).tolist()))\n'
            '    return ids + sub.loc[sub["status"] != "ok", "trial_id"].tolist()\n\n'
            "chosen = {p: (TRIALS if TRIALS is not None else pick(g))\n"
            '          for p, g in traj.groupby("problem", observed=True)}\n'
            "chosen"
        ),
        new_code_cell(
            "for p, ids in chosen.items():\n"
            '    sub = traj[traj["problem"] == p]\n'
            "    display(an.plot_error_over_time(steps, ids, trajectories=sub, "
            'columns=("rel_l2_t", "ls_residual")))'
        ),
        new_markdown_cell("## All runs of a problem, error over time"),
        new_code_cell(
            'for p, sub in traj.groupby("problem", observed=True):\n'
            '    display(an.plot_error_over_time(steps, sub["trial_id"], trajectories=sub))'
        ),
        new_markdown_cell(
            "## Per-run summary of the series\n\n"
            "Final stored time, error there, the largest least-squares residual and the time of "
            "the largest error."
        ),
        new_code_cell(
            'g = steps.groupby("trial_id")\n'
            "summary = pd.DataFrame({\n"
            '    "t_last": g["t"].max(),\n'
            '    "rel_l2_t_last": g["rel_l2_t"].last(),\n'
            '    "rel_l2_t_max": g["rel_l2_t"].max(),\n'
            '    "t_of_max_error": steps.loc[g["rel_l2_t"].idxmax(), ["trial_id", "t"]].set_index("trial_id")["t"],\n'
            '    "ls_residual_max": g["ls_residual"].max(),\n'
            "})\n"
            'summary.join(traj.set_index("trial_id")[["problem", "sampler", "s", "seed", "status", "rel_l2"]])'
        ),
    ],
    "samplers.ipynb": [
        new_markdown_cell(
            "# Samplers and sparsity: error versus s, per sampler\n\n"
            "Mean error over seeds with ±2 standard errors for each sampler and sparsity s (the paper's Fig. 4b "
            "with the samplers added), failure shares, cost per step, and error versus network size for an "
            "architecture sweep. Point it at your results in the next cell (or set `RSNG_RESULTS`)."
        ),
        new_code_cell(SETUP),
        new_code_cell(IMPORTS),
        new_code_cell("an.plot_error_vs_s(traj)"),
        new_markdown_cell(
            "## Mean ± 2 SE per sampler and s\n\nFailure share = diverged, failed or stopped (by a search) runs / runs."
        ),
        new_code_cell(
            "agg = an.aggregate(traj)\n"
            'table = agg.assign(**{"rel_l2 (mean ± 2SE)": [f"{m:.3g} ± {2 * e:.2g}" if m == m else "—"\n'
            '                                          for m, e in zip(agg["rel_l2_mean"], agg["rel_l2_se"])]})\n'
            'table.pivot_table(index=["problem", "s"], columns="sampler", values="rel_l2 (mean ± 2SE)",\n'
            '                  aggfunc="first", observed=True)'
        ),
        new_code_cell(
            'agg.pivot_table(index=["problem", "s"], columns="sampler", values="failure_share", observed=True)'
        ),
        new_markdown_cell("## Cost per step"),
        new_code_cell(
            'ok = traj[traj["status"] == "ok"]\n'
            '(ok.assign(ms_per_step=1e3 * ok["wall_s"] / ok["steps"])\n'
            '   .groupby(["problem", "sampler", "s"], observed=True)["ms_per_step"].agg(["mean", "std", "count"]))'
        ),
        new_markdown_cell("## Error versus network size p (architecture sweeps)"),
        new_code_cell(
            'if traj["p"].nunique() > 1:\n'
            "    display(an.plot_p_vs_error(traj))\n"
            "else:\n"
            "    print(f\"one architecture in this sweep (p = {traj['p'].iloc[0]}): "
            'run sweeps/architecture.py for this plot")'
        ),
    ],
}


def build() -> dict[str, nbformat.NotebookNode]:
    out = {}
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook(
            cells=cells,
            metadata={
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                "language_info": {"name": "python"},
            },
        )
        for i, c in enumerate(nb.cells):  # stable ids: regenerating gives identical files
            c["id"] = f"{Path(name).stem}-{i:02d}"
        nbformat.validate(nb)
        out[name] = nb
    return out


def main() -> int:
    for name, nb in build().items():
        (HERE / name).write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
        print(f"wrote {HERE / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
