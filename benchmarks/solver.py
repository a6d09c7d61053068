"""Per-step and whole-run cost of the RSNG solver at the fast presets (n = 1000, depth 7).

    python benchmarks/solver.py                 # per-step table, s ∈ {50, 150, 400, 800, dense}
    python benchmarks/solver.py --full          # plus the whole fast allen_cahn and burgers runs
    python benchmarks/solver.py --problems allen_cahn --sizes 150 --steps 100
    python benchmarks/solver.py --sizes --full --cache-dir /tmp/jc   # whole runs only, compilation cache on

Prints a table and writes it to benchmarks/results/solver-<solver>-t<threads>-<date>.csv. Threads are sized to the
CPUs of the process (one by default, like the comparison numbers below); compile time
is reported separately and excluded from per-step and run times; ``total_s`` is the end-to-end time
of the run (θ(0) and reference from the cache, compilation, marching, error evaluation). Comparison points (the paper's Table 1; the authors' code and a plain JAX step measured on this kind of 2-core VM):
paper, V100: fast allen_cahn 63 s, fast burgers 188 s; the authors' notebook code on this 2-core CPU
(jax 0.4.14, one thread): ≈ 32 s for fast allen_cahn (≈ 40 ms/step); a plain JAX 0.10 implementation
in their style ≈ 62 ms/step.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import sys
import time
from pathlib import Path

from rsng.core.threads import configure_threads, cpu_kind


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="+", default=["allen_cahn", "burgers"])
    ap.add_argument(
        "--sizes",
        nargs="*",
        default=["50", "150", "400", "800", "dense"],
        help="s values or 'dense' (none: only the --full runs)",
    )
    ap.add_argument("--solver", default="fast", choices=["fast", "full-jacobian"])
    ap.add_argument("--cache-dir", help="JAX compilation cache for the runs (default: none, every run compiles)")
    ap.add_argument("--steps", type=int, default=40, help="steps timed per configuration (after compile)")
    ap.add_argument("--dense-steps", type=int, default=5, help="steps timed for dense (slow)")
    ap.add_argument("--full", action="store_true", help="also run the whole fast preset of each problem")
    ap.add_argument("--lstsq", choices=["qr", "svd", "gram"], help="default: the configuration's (gram for float32)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--tag", default="", help="appended to the results file name (e.g. cold, warm)")
    args = ap.parse_args()
    configure_threads(args.threads, override=True)
    if args.cache_dir:
        from rsng.core.threads import enable_compilation_cache

        enable_compilation_cache(args.cache_dir)

    import jax

    from rsng.core.config import resolve
    from rsng.core.integrate import Trajectory

    rows = []
    print(
        f"# {cpu_kind()}, {os.cpu_count()} CPUs, threads={args.threads}, "
        f"jax {jax.__version__}, lstsq={args.lstsq or 'default'}, solver={args.solver}, "
        f"compilation cache={'on' if args.cache_dir else 'off'}"
    )
    print(
        f"{'problem':<11} {'s':>6} {'p':>5} {'steps':>6} {'ms/step':>9} {'compile_s':>9} {'run_s':>8} {'total_s':>8} "
        f"{'rel_l2':>9}"
    )
    for problem in args.problems:
        jobs = [(size, False) for size in args.sizes]
        if args.full:
            jobs.append(("preset", True))
        for size, full in jobs:
            s = None if size == "preset" else ("dense" if size == "dense" else int(size))
            base = resolve("fast", problem=problem, s=s)
            k = base.steps if full else (args.dense_steps if base.dense else args.steps)
            cfg = resolve(
                "fast",
                problem=problem,
                s=s,
                t_end=k * base.dt,
                lstsq=args.lstsq,
                save_every=1 if full else None,
                solver=args.solver,
            )
            t0 = time.perf_counter()
            traj = Trajectory(cfg, chunk=min(50, k))
            res = traj.run()
            total = time.perf_counter() - t0
            row = {
                "problem": problem,
                "s": cfg.s,
                "p": cfg.p,
                "n": cfg.n,
                "steps": res.steps,
                "ms_per_step": 1e3 * res.wall_s / max(1, res.steps),
                "compile_s": res.compile_s,
                "run_s": res.wall_s,
                "rel_l2": res.rel_l2 if full else float("nan"),
                "full_run": full,
                "lstsq": cfg.lstsq,
                "threads": args.threads,
                "solver": args.solver,
                "compile_cache": bool(args.cache_dir),
                "end_to_end_s": total,
            }
            rows.append(row)
            print(
                f"{problem:<11} {cfg.s:>6} {cfg.p:>5} {res.steps:>6} {row['ms_per_step']:>9.1f} "
                f"{res.compile_s:>9.2f} {res.wall_s:>8.2f} {total:>8.2f} {row['rel_l2']:>9.2e}",
                flush=True,
            )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = f"-{args.tag}" if args.tag else ""
    path = out / f"solver-{args.solver}-t{args.threads}-{dt.date.today().isoformat()}{tag}.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"# written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
