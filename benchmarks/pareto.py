"""The Pareto front of many trajectories: :func:`rsng.analysis.pareto_front` by group, timed.

    python benchmarks/pareto.py                 # n ∈ {10^4, 10^5, 10^6}, best of 5
    python benchmarks/pareto.py --n 100000 --repeats 3

Random log-normal (wall time, error) pairs in two groups, all ``ok``. For each n: the best time of
``pareto_front(df, by="problem")`` (after one warm-up call), and, measured in the same run, a plain
numpy floor — per group one ``argsort`` of the cost and one ``minimum.accumulate`` of the error
(the sweep that defines the front) — and their ratio. The two fronts are checked to be the same
rows. tests/analysis/test_pareto.py checks the front itself, not its speed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from rsng.analysis import pareto_front


def frame(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "wall_s": rng.lognormal(size=n),
            "rel_l2": rng.lognormal(size=n),
            "status": "ok",
            "problem": rng.choice(["a", "b"], n),
        }
    )


def numpy_front(df: pd.DataFrame) -> set:
    out: set = set()
    for _, g in df.groupby("problem", sort=False):
        order = np.argsort(g["wall_s"].to_numpy(), kind="stable")
        ys = g["rel_l2"].to_numpy()[order]
        out |= set(g.index[order][ys <= np.minimum.accumulate(ys)])
    return out


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000, 1_000_000], help="points per run")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per n (the best is reported)")
    args = ap.parse_args()
    print(f"{'n':>9} {'pareto_front ms':>16} {'numpy floor ms':>15} {'ratio':>7} {'front rows':>11}")
    for n in args.n:
        df = frame(n)
        front = pareto_front(df, by="problem")  # warm-up (pandas internals)
        if set(front.index) != numpy_front(df):
            raise SystemExit(f"n={n}: pareto_front and the numpy sweep disagree")
        t_front = best_of(lambda: pareto_front(df, by="problem"), args.repeats)
        t_floor = best_of(lambda: numpy_front(df), args.repeats)
        print(f"{n:>9} {1e3 * t_front:>16.1f} {1e3 * t_floor:>15.1f} {t_front / t_floor:>7.2f} {len(front):>11}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
