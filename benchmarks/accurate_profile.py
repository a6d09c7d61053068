"""Time and memory of the accurate preset (n = 10 000, s = 800, depth 7) on one CPU, fast and reference solver.

    python benchmarks/accurate_profile.py              # allen_cahn, 20 steps per solver
    python benchmarks/accurate_profile.py --steps 50 --threads 2

Each solver runs in its own process (so peak memory is its own): compile time, ms per step, the
projected whole run (T/δt steps), and the process's peak resident memory, next to the memory the
Jacobian would take if materialised (n × p × 4 bytes per stage). θ(0) is the fast preset's fit (the
same network; the accurate preset's own fit costs a few minutes and does not change the cost).
Writes benchmarks/results/accurate-profile-<date>.csv.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from rsng.core.threads import cpu_kind

CHILD = r"""
import json, resource, sys, time
from rsng.core.threads import configure_threads
configure_threads(int(sys.argv[3]), override=True)
import numpy as np
from rsng.core.config import resolve
from rsng.core.fit import initial_theta
from rsng.core.integrate import Trajectory
from rsng.core.network import Network
from rsng.core.problems import get_problem
problem, solver, steps = sys.argv[1], sys.argv[2], int(sys.argv[4])
full = resolve("accurate", problem=problem, solver=solver)
cfg = resolve("accurate", problem=problem, solver=solver, t_end=steps * full.dt)
pr = get_problem(problem)
theta0, _ = initial_theta(pr, Network(pr.dim, pr.lengths, cfg.width, cfg.depth), 1000, 0)
t0 = time.perf_counter()
res = Trajectory(cfg, theta0=theta0, chunk=min(10, steps)).run()
print(json.dumps({"solver": solver, "n": cfg.n, "s": cfg.s, "p": cfg.p, "steps": res.steps,
                  "compile_s": res.compile_s, "ms_per_step": 1e3 * res.wall_s / res.steps,
                  "projected_run_s": res.wall_s / res.steps * full.steps, "full_steps": full.steps,
                  "end_to_end_s": time.perf_counter() - t0, "status": res.status,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "dense_jacobian_mib": cfg.n * cfg.p * 4 / 2**20}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", default="allen_cahn")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--solvers", nargs="+", default=["fast", "full-jacobian"])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    machine = f"{cpu_kind()}, {os.cpu_count()} CPUs, threads={args.threads}"
    print(f"# {machine}")
    print(
        f"{'solver':<10} {'n':>6} {'s':>5} {'compile_s':>9} {'ms/step':>9} {'run_s (proj.)':>14} "
        f"{'peak RSS MiB':>12} {'J if dense MiB':>14}"
    )
    rows = []
    for solver in args.solvers:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, args.problem, solver, str(args.threads), str(args.steps)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(r)
        print(
            f"{solver:<10} {r['n']:>6} {r['s']:>5} {r['compile_s']:>9.1f} {r['ms_per_step']:>9.1f} "
            f"{r['projected_run_s']:>14.0f} {r['peak_rss_mib']:>12.0f} {r['dense_jacobian_mib']:>14.0f}",
            flush=True,
        )
    import pandas as pd

    path = Path(args.out) / f"accurate-profile-{dt.date.today().isoformat()}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        f.write(f"# {machine}\n")
        pd.DataFrame(rows).to_csv(f, index=False, float_format="%.6g")
    print(f"# written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
