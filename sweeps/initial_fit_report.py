"""Table and plots of the θ(0) study (sweeps/initial_fit.py) from its Parquet results.

    python sweeps/initial_fit_report.py <storage>/initial-fit [--out docs] [--csv FILE]

Prints a Markdown table (one line per problem × fit recipe × the fit's init seed × rcond: every seed's
error, the mean, the max/min ratio over seeds, the t = 0 error the fit reached, the rank of the full
J(θ(0)) at the cut-off and the mean kept rank of the steps' sketched least squares) and writes
``initial-fit.png`` into ``--out``: the error against the mean kept rank and against the fit's t = 0 error,
one point per trajectory. ``--csv FILE`` also writes one row per trajectory (``CSV_COLUMNS``), as the study
files in benchmarks/results/ are. The init seed is a column because a default fit at a cut-off may name its
own (``init_seed_at``, rsng/core/problems.py): allen_cahn's fast default at rcond 1e-4 is init seed 2's fit,
burgers' init seed 9's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: what a configuration is: one table line, one plot series
KEYS = ["problem", "fit_recipe", "init_seed", "rcond"]
#: the per-trajectory columns of ``--csv``
CSV_COLUMNS = [
    "problem",
    "fit_recipe",
    "init_seed",
    "rcond",
    "seed",
    "status",
    "rel_l2",
    "rel_l2_t0",
    "fit_rel_l2_t0",
    "j0_sigma_max",
    "j0_rank",
    "mean_kept_rank",
    "n",
    "s",
    "wall_s",
]


def summarise(res):
    """One row per trajectory with its mean kept rank, and the per-configuration table."""
    import numpy as np

    traj = res.trajectories.copy()
    steps = res.steps
    kept = steps[steps["step"] > 0].groupby("trial_id", observed=True)["ls_rank"].mean()
    traj["mean_kept_rank"] = traj["trial_id"].map(kept).astype(float)
    lines = []
    for (problem, recipe, init_seed, rcond), g in traj.groupby(KEYS, observed=True, sort=True):
        g = g.sort_values("seed")
        ok = g[g["status"] == "ok"]
        errs = ok["rel_l2"].to_numpy(float)
        seeds = ", ".join(
            f"{r.seed}: {r.rel_l2:.3g}" if r.status == "ok" else f"{r.seed}: {r.status}" for r in g.itertuples()
        )
        ratio = errs.max() / errs.min() if len(errs) else float("nan")
        lines.append(
            f"| {problem} | {recipe} | {init_seed} | {rcond:g} | {seeds} | {np.mean(errs):.3g} | {ratio:.2f} | "
            f"{g['fit_rel_l2_t0'].mean():.2g} | {g['j0_rank'].mean():.0f} | {g['mean_kept_rank'].mean():.1f} |"
        )
    header = (
        "| problem | fit recipe | init seed | rcond | rel. L2 error per seed | mean | max/min | fit t=0 error | "
        "rank of J(θ(0)) at rcond | mean kept rank per step |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    return traj, header + "\n" + "\n".join(lines)


def plot(traj, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    ok = traj[traj["status"] == "ok"]
    markers = {p: m for p, m in zip(sorted(ok["problem"].astype(str).unique()), "os^v")}
    for (problem, recipe, init_seed, rcond), g in ok.groupby(KEYS, observed=True):
        label = f"{problem}, {recipe}" + (f" (init seed {init_seed})" if init_seed else "") + f", rcond {rcond:g}"
        kw = dict(marker=markers[str(problem)], linestyle="none", label=label, alpha=0.8)
        axes[0].plot(g["mean_kept_rank"], g["rel_l2"], **kw)
        axes[1].plot(g["fit_rel_l2_t0"], g["rel_l2"], **kw)
    axes[0].set_xlabel("mean rank kept by the cut-off per step (sketched J)")
    axes[1].set_xlabel("t = 0 error of the θ(0) fit")
    axes[1].set_xscale("log")
    for ax in axes:
        ax.set_yscale("log")
        ax.set_ylabel("space-time relative L2 error")
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep_dir", help="the study's sweep folder, <storage>/initial-fit")
    ap.add_argument("--out", default=".", help="folder for initial-fit.png (default: here)")
    ap.add_argument("--csv", metavar="FILE", help="also write one row per trajectory (CSV_COLUMNS) to FILE")
    args = ap.parse_args(argv)
    from rsng.results import load

    res = load(args.sweep_dir)
    if not len(res.trajectories):
        print(f"initial_fit_report: no trajectories under {args.sweep_dir}", file=sys.stderr)
        return 2
    traj, table = summarise(res)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(traj, out / "initial-fit.png")
    print(f"\nplot: {out / 'initial-fit.png'}")
    if args.csv:
        cols = traj[CSV_COLUMNS].sort_values(KEYS + ["seed"])
        cols.to_csv(args.csv, index=False)
        print(f"rows: {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
