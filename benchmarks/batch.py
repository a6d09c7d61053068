"""Per-seed cost of marching K sketch seeds together (``TrajectoryBatch``, a sweep's ``--seeds-per-trial K``).

    python benchmarks/batch.py                                  # fast allen_cahn and burgers, K ∈ {1, 2, 4, 8}
    python benchmarks/batch.py --problems burgers --sizes 1 5 10 --threads 2
    python benchmarks/batch.py --preset smoke --sizes 2 --steps 20 --repeats 1

For each problem: one single :class:`rsng.core.integrate.Trajectory` (seed 0: what a sweep runs without
``--seeds-per-trial``) and one batch of seeds 0…K−1 for each K, every one configured as ``rsng solve --problem P
--preset PRESET --seed S``. Each is compiled and marched one chunk first (``compile_s``: the compile alone), then
``--repeats`` rounds time ``--steps`` steps of each in turn (the order reversed every other round, so drift on a
noisy machine falls on all alike); the median round is reported. ``ms/seed-step`` is a round's wall time over
steps × K, ``vs single`` its ratio to the single trajectory's per-step time measured in the same rounds: below 1,
a batch marches each seed for less. Threads are sized with ``--threads`` (one by default, as a sweep's trial on one
CPU). Prints the table and writes it to benchmarks/results/batch-t<threads>-<date>.csv.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

from rsng.core.threads import configure_threads, cpu_kind


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="+", default=["allen_cahn", "burgers"])
    ap.add_argument("--preset", default="fast", choices=["smoke", "fast", "accurate"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[1, 2, 4, 8], help="batch sizes K (each ≥ 1)")
    ap.add_argument("--steps", type=int, default=100, help="steps timed per round (rounded up to chunks of 50)")
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds per configuration")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args(argv)
    for name in ("sizes", "steps", "repeats", "threads"):
        values = getattr(args, name) if name == "sizes" else [getattr(args, name)]
        if min(values) < 1:
            ap.error(f"--{name} must be ≥ 1, got {' '.join(map(str, values))}")
    configure_threads(args.threads, override=True)  # before JAX starts

    import jax

    from rsng.core.config import resolve
    from rsng.core.integrate import Trajectory, TrajectoryBatch

    print(f"# {cpu_kind()}, {os.cpu_count()} CPUs, threads={args.threads}, jax {jax.__version__}, preset={args.preset}")
    print(
        f"{'problem':<11} {'K':>4} {'steps':>6} {'compile_s':>9} {'ms/step':>9} {'ms/seed-step':>12} "
        f"{'vs single':>9} {'rounds':>13}"
    )
    rows = []
    for problem in args.problems:
        base = resolve(args.preset, problem=problem)
        chunk = min(50, args.steps)
        steps = chunk * -(-args.steps // chunk)  # whole chunks
        t_end = (chunk + args.repeats * steps) * base.dt  # the warm-up chunk and every round, no more

        def cfg(seed: int):
            return resolve(args.preset, problem=problem, seed=seed, t_end=t_end)

        runs = {"single": Trajectory(cfg(0), chunk=chunk)}
        for k in args.sizes:
            runs[k] = TrajectoryBatch([cfg(s) for s in range(k)], chunk=chunk)
        compile_s = {}
        for name, run in runs.items():
            run.advance(chunk)  # compile, then one chunk
            compile_s[name] = run.compile_s
        times: dict = {name: [] for name in runs}
        order = list(runs)
        for r in range(args.repeats):
            for name in order if r % 2 == 0 else order[::-1]:
                t0 = time.perf_counter()
                runs[name].advance(steps)
                times[name].append(time.perf_counter() - t0)
        single = statistics.median(times["single"]) / steps
        for name in order:
            k = 1 if name == "single" else name
            per_step = statistics.median(times[name]) / steps
            row = {
                "problem": problem,
                "preset": args.preset,
                "batch": "single" if name == "single" else k,
                "steps": steps,
                "compile_s": compile_s[name],
                "ms_per_step": 1e3 * per_step,
                "ms_per_seed_step": 1e3 * per_step / k,
                "vs_single": per_step / k / single,
                "rounds_s": " ".join(f"{t:.2f}" for t in times[name]),
                "threads": args.threads,
                "cpu": cpu_kind(),
            }
            rows.append(row)
            print(
                f"{problem:<11} {row['batch']!s:>4} {steps:>6} {row['compile_s']:>9.2f} {row['ms_per_step']:>9.1f} "
                f"{row['ms_per_seed_step']:>12.1f} {row['vs_single']:>9.2f} {row['rounds_s']:>13}",
                flush=True,
            )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"batch-t{args.threads}-{dt.date.today().isoformat()}.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"# written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
