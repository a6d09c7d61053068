"""Pareto search against the full grid: front hypervolume against the solver compute spent.

    nice -n 19 python benchmarks/search.py                 # 3 repetitions (≈ 15–20 min on this 2-core VM)
    nice -n 19 python benchmarks/search.py --reps 1 --out /tmp/search-bench

Space (small enough to run as a full grid here): allen_cahn at the smoke preset's n = 256 and
T = 0.5 (100 steps of δt = 5e-3) × s ∈ {10, 20, 40, 80, 160, 320} × sampler {uniform, column_norm}
× depth {3, 4} × width {15, 25} (s > p dropped: 46 configurations) × seeds {0, 1, 2}.

Per repetition r (all in one embedded Ray): the full grid (Tune's grid search; ``--grid-reps`` of the
repetitions run it, later ones reuse the last grid as their reference), then with a solver-time
budget of ``--fraction`` (default 0.25) of that grid's solver time: ``--search pareto`` (the frontier
searcher) with early stopping, random search (Optuna's random sampler, no early stopping), the frontier
searcher without early stopping, and Optuna's multi-objective TPE (``--search tpe``) with early stopping
(searcher seed r). A configuration's point is (mean wall_s, mean rel_l2) over its seeds, ok runs only; the
hypervolume is that of the front in (log10 cost, log10 error), dominated up to a reference point
0.1 decade beyond the worst ok configuration of the repetition's grid on both axes. Compute spent is
the sum of ``wall_s`` of every trajectory run (a stopped one's partial time included), in the order
they finished; the hypervolume-against-compute curves go to a plot.

Writes ``<out>/search-<date>.csv`` (one row per method and repetition: solver seconds, share of the
grid's, configurations run and stopped, hypervolume and its share of the grid's, that share after 30 %
of the grid's solver time had been spent, and ``found_share_of_front_hv``: the hypervolume of the
configurations it ran to the end at their *reference* measurements (each configuration's mean over the
grid repetitions) as a share of all configurations' — how much of the front it found, without the
timing noise of its own measurements —, the random search's and the searcher's hypervolume at equal
compute, and the grid's after the same compute as the method's — the grid in its own order, s
ascending) and ``<out>/search-<date>.png``, and prints the table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import time
from pathlib import Path

import numpy as np

SPACE = {
    "s": [10, 20, 40, 80, 160, 320],
    "sampler": ["uniform", "column_norm"],
    "depth": [3, 4],
    "width": [15, 25],
    "seed": [0, 1, 2],
}
FIXED = {"problem": "allen_cahn", "preset": "smoke", "t_end": 0.5}
METHODS = ("grid", "pareto+stop", "random", "pareto", "tpe+stop")


def spec(name: str):
    from rsng.service.spec import SweepSpec

    return SweepSpec(name, grid=SPACE, fixed=FIXED, skip_invalid_s=True, description="benchmarks/search.py")


def config_points(df):
    """(mean wall_s, mean rel_l2) per configuration whose seeds all finished ok."""
    keys = ["s", "sampler", "depth", "width"]
    out = []
    for _, g in df.groupby(keys, observed=True):
        if (g["status"].astype(str) == "ok").all() and len(g) == len(SPACE["seed"]):
            out.append((float(g["wall_s"].mean()), float(g["rel_l2"].mean())))
    return out


def hypervolume(points, ref) -> float:
    """Area dominated by ``points`` (cost, error; both minimised, in log10) up to ``ref``."""
    pts = sorted((math.log10(c), math.log10(e)) for c, e in points if c > 0 and e > 0)
    pts = [(x, y) for x, y in pts if x < ref[0] and y < ref[1]]
    area, best_y = 0.0, ref[1]
    for x, y in pts:  # ascending cost: each point below the staircase adds a strip up to ref's cost
        if y < best_y:
            area += (ref[0] - x) * (best_y - y)
            best_y = y
    return area


def curve(df, ref):
    """Hypervolume after each finished trajectory, against the cumulative solver time."""
    df = df.sort_values("finished_at")
    xs, hv = [], []
    spent = 0.0
    for i in range(len(df)):
        spent += float(df["wall_s"].iloc[i])
        xs.append(spent)
        hv.append(hypervolume(config_points(df.iloc[: i + 1]), ref))
    return np.array(xs), np.array(hv)


KEYS = ["s", "sampler", "depth", "width"]


def reference_points(grids) -> dict:
    """Each configuration's (mean wall_s, mean rel_l2) averaged over the grid repetitions: a reference
    measurement of every configuration, with less timing noise than any single run."""
    per = {}
    for g in grids:
        for k, sub in g.groupby(KEYS, observed=True):
            if (sub["status"].astype(str) == "ok").all() and len(sub) == len(SPACE["seed"]):
                per.setdefault(k, []).append((float(sub["wall_s"].mean()), float(sub["rel_l2"].mean())))
    return {k: (float(np.mean([c for c, _ in v])), float(np.mean([e for _, e in v]))) for k, v in per.items()}


def found_share(df, refpts) -> float:
    """Hypervolume of the configurations ``df`` ran to the end (all seeds ok), at their reference
    measurements, as a share of all configurations' at theirs: how much of the front a method found,
    without the timing noise of its own measurements."""
    done = {k for k, g in df.groupby(KEYS, observed=True) if (g["status"].astype(str) == "ok").all()}
    allp = list(refpts.values())
    ref = (math.log10(max(c for c, _ in allp)) + 0.1, math.log10(max(e for _, e in allp)) + 0.1)
    return hypervolume([refpts[k] for k in done if k in refpts], ref) / hypervolume(allp, ref)


def at(xs, hv, c) -> float:
    """The hypervolume reached with at most ``c`` solver seconds."""
    ok = xs <= c + 1e-9
    return float(hv[ok][-1]) if ok.any() else 0.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument(
        "--grid-reps",
        type=int,
        default=3,
        help="repetitions that run the grid again (later ones reuse the last grid as their reference)",
    )
    ap.add_argument("--fraction", type=float, default=0.25, help="search budget as a share of the grid's solver time")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--work", default="/tmp/rsng-bench-search", help="scratch storage for the sweeps")
    ap.add_argument(
        "--stamp", help="continue the run of this stamp (its folder under --work): finished sweeps are reused"
    )
    ap.add_argument(
        "--analyse-only",
        action="store_true",
        help="run nothing: the table and plot of the repetitions of --stamp whose sweeps all exist",
    )
    args = ap.parse_args(argv)

    from rsng.results import load
    from rsng.service.runner import SweepOptions, run_sweep
    from rsng.service.search import SearchOptions

    stamp = args.stamp or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d-%H%M")
    work = Path(args.work) / stamp
    quiet = lambda m: None  # noqa: E731
    rows, curves, grids, kept = [], {}, [], {}
    t0 = time.time()
    grid = None
    for r in range(args.reps):
        if args.analyse_only and not (work / f"grid-r{min(r, args.grid_reps - 1)}" / "sweep.json").exists():
            break
        if r < args.grid_reps or grid is None:
            base = SweepOptions(  # the seeds of a configuration marched together, as a search does
                storage=str(work),
                ray_address="local",
                log=quiet,
                seeds_per_trial=len(SPACE["seed"]),
                resume=(work / f"grid-r{r}").exists(),
            )
            if not args.analyse_only:
                run_sweep(spec(f"grid-r{r}"), base)
            grid = load(work / f"grid-r{r}", with_steps=False).trajectories
            print(
                f"grid {r}: {len(grid)} trajectories, {grid['wall_s'].sum():.1f} s solver, "
                f"{time.time() - t0:.0f} s elapsed",
                flush=True,
            )
        gpts = config_points(grid)
        ref = (math.log10(max(c for c, _ in gpts)) + 0.1, math.log10(max(e for _, e in gpts)) + 0.1)
        grid_s = float(grid["wall_s"].sum())
        budget_h = args.fraction * grid_s / 3600
        frames = {"grid": grid}
        for m in METHODS[1:]:
            sopts = SearchOptions(
                method=m.split("+")[0],
                budget_hours=budget_h,
                early_stop=m.endswith("+stop"),
                seed=r,
            )
            name = f"{m.replace('+', '-')}-r{r}"
            if args.analyse_only and not (work / name / "sweep.json").exists():
                continue
            opts = SweepOptions(
                storage=str(work), ray_address="local", log=quiet, search=sopts, resume=(work / name).exists()
            )
            if not args.analyse_only:
                run_sweep(spec(name), opts)
            frames[m] = load(work / name, with_steps=False).trajectories
            print(
                f"  {name}: {len(frames[m])} trajectories, {frames[m]['wall_s'].sum():.1f} s solver, "
                f"{time.time() - t0:.0f} s elapsed",
                flush=True,
            )
        hv_grid = hypervolume(gpts, ref)
        if r < args.grid_reps:
            grids.append(grid)
        kept.update({(m, r): df for m, df in frames.items()})
        for m, df in frames.items():
            xs, hv = curve(df, ref)
            curves[(m, r)] = (xs, hv)
        for m, df in frames.items():
            xs, hv = curves[(m, r)]
            spent = float(df["wall_s"].sum())
            st = df["status"].astype(str)
            n_cfg = df.groupby(["s", "sampler", "depth", "width"], observed=True).ngroups
            rx, rh = curves.get(("random", r), (np.array([math.inf]), np.array([math.nan])))
            equal = min(spent, float(rx[-1])) if m != "grid" else spent
            rows.append(
                {
                    "rep": r,
                    "method": m,
                    "solver_s": round(spent, 2),
                    "share_of_grid_time": round(spent / grid_s, 3),
                    "configurations": n_cfg,
                    "trajectories": len(df),
                    "stopped": int((st == "stopped").sum()),
                    "hypervolume": round(float(hv[-1]), 4),
                    "share_of_grid_hv": round(float(hv[-1]) / hv_grid, 3),
                    "hv_share_at_30pct": round(at(xs, hv, 0.30 * grid_s) / hv_grid, 3),
                    "equal_compute_s": round(equal, 2),
                    "hv_at_equal_compute": round(at(xs, hv, equal), 4),
                    "random_hv_at_equal_compute": round(at(rx, rh, equal), 4),
                    "grid_hv_at_same_compute": round(at(*curves[("grid", r)], spent), 4),
                }
            )
        print(f"repetition {r} done after {time.time() - t0:.0f} s", flush=True)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        __import__("pandas").DataFrame(rows).to_csv(Path(args.out) / f"search-{stamp[:10]}-partial.csv", index=False)
        print(__import__("pandas").DataFrame(rows[-4:]).to_string(index=False), flush=True)
    import pandas as pd

    refpts = reference_points(grids)
    for row in rows:
        row["found_share_of_front_hv"] = round(found_share(kept[(row["method"], row["rep"])], refpts), 3)
    table = pd.DataFrame(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv = out / f"search-{stamp[:10]}.csv"
    table.to_csv(csv, index=False)
    pd.set_option("display.width", 200)
    print(table.to_string(index=False))
    for m in METHODS[1:]:
        sub = table[table["method"] == m]
        print(
            f"{m}: hypervolume {sub['share_of_grid_hv'].min():.3f}–{sub['share_of_grid_hv'].max():.3f} of the grid's "
            f"with {sub['share_of_grid_time'].min():.3f}–{sub['share_of_grid_time'].max():.3f} of its solver time"
        )
    ok = table[table["method"] == "pareto+stop"]
    cheap = ok["share_of_grid_time"] <= 0.30
    target = bool(((ok["share_of_grid_hv"] >= 0.95) & cheap).all())
    target_found = bool(((ok["found_share_of_front_hv"] >= 0.95) & cheap).all())
    beats = bool((ok["hv_at_equal_compute"] > ok["random_hv_at_equal_compute"]).all())
    print(f"target (≥ 95 % of the grid's hypervolume at ≤ 30 % of its solver time, every repetition): {target}")
    print(f"the same with the configurations found, at their reference measurements: {target_found}")
    if len(grids) > 1:
        allp = [p for g in grids for p in config_points(g)]
        gref = (math.log10(max(c for c, _ in allp)) + 0.1, math.log10(max(e for _, e in allp)) + 0.1)
        ghv = [hypervolume(config_points(g), gref) for g in grids]
        print(
            f"the full grid run {len(grids)} times, hypervolumes at one reference point: "
            f"{', '.join(f'{h:.3f}' for h in ghv)} (smallest/largest {min(ghv) / max(ghv):.3f}: timing noise)"
        )
    print(f"searcher with early stopping above random search at equal compute, every repetition: {beats}")
    print(f"total benchmark wall time: {time.time() - t0:.0f} s")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colors = {
        "grid": "k",
        "random": "tab:gray",
        "pareto": "tab:blue",
        "pareto+stop": "tab:red",
        "tpe+stop": "tab:green",
    }
    for (m, r), (xs, hv) in curves.items():
        ax.step(xs, hv, where="post", color=colors[m], alpha=0.8, label=m if r == 0 else None)
    ax.set_xscale("log")
    ax.set_xlabel("solver time spent (sum of wall_s, s)")
    ax.set_ylabel("front hypervolume in log10(cost) × log10(error)")
    ax.set_title(f"allen_cahn n=256 T=0.5, 46 configurations × 3 seeds; {args.reps} repetitions")
    ax.legend()
    fig.tight_layout()
    png = out / f"search-{stamp[:10]}.png"
    fig.savefig(png, dpi=110)
    print(f"wrote {csv} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
