"""All benchmarks, one entry point: prints every table and writes them to benchmarks/results/.

    python benchmarks/run.py            # everything (≈ 25 min on the 2-core development VM)
    python benchmarks/run.py --quick    # n = 1000, s ∈ {150, dense}; fast allen_cahn run; smoke sweep

Sections (each a script of its own, run in a fresh process so its thread settings apply before JAX
loads):

1. ``phases.py`` — per-step time by phase at n ∈ {1000, 10 000}, s ∈ {50, 150, 400, 800, 1600,
   dense}, each phase against its flop-count floor, and the reference approach (``baseline.py``)
   side by side with the ratio and the agreement of the velocities; n = 1000, s = 150 again with
   XLA's YNNPACK dot kernels off (the reference approach's faster setting);
2. ``solver.py --full`` — whole-run wall time of the fast allen_cahn and burgers presets (paper, V100:
   63 s and 188 s), with the compilation cache cold and then warm;
3. ``accurate_profile.py`` — time and peak memory of the accurate preset (n = 10 000, s = 800), fast
   and reference solver;
4. ``sweep_overhead.py`` — the smoke sparsity sweep (8 trajectories) and 8 fast allen_cahn
   trajectories: serial versus Ray, trajectories per hour, compilation cache cold versus warm.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(args: list[str]) -> None:
    print(f"\n$ python benchmarks/{' '.join(args)}", flush=True)
    subprocess.run([sys.executable, str(HERE / args[0]), *args[1:]], check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a subset that takes a few minutes")
    ap.add_argument("--skip", nargs="*", default=[], choices=["phases", "runs", "accurate", "sweeps"])
    args = ap.parse_args()
    if "phases" not in args.skip:
        if args.quick:
            run(["phases.py", "--n", "1000", "--sizes", "150", "dense"])
        else:
            run(["phases.py"])
        # XLA's YNNPACK dot kernels off for both: the reference approach's faster setting
        run(["phases.py", "--n", "1000", "--sizes", "150", "--no-ynn", "--tag", "no-ynn"])
    if "runs" not in args.skip:
        problems = ["allen_cahn"] if args.quick else ["allen_cahn", "burgers"]
        with tempfile.TemporaryDirectory() as cache:
            run(["solver.py", "--sizes", "--full", "--problems", *problems, "--cache-dir", cache, "--tag", "cold"])
            run(["solver.py", "--sizes", "--full", "--problems", "allen_cahn", "--cache-dir", cache, "--tag", "warm"])
    if "accurate" not in args.skip:
        run(["accurate_profile.py", "--steps", "5" if args.quick else "20"])
    if "sweeps" not in args.skip:
        run(["sweep_overhead.py", "--grid", "smoke"])
        if not args.quick:
            run(["sweep_overhead.py", "--grid", "fast"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
