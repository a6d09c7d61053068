"""Per-step time of a whole compiled chunk (``Trajectory.advance``: the RK4 steps and the host-side
bookkeeping) for one fast configuration, best and median of five 100-step runs after a warm-up.

    PYTHONPATH=<a checkout> python benchmarks/step_time.py allen_cahn 150

Used to compare two checkouts alternately in one session (benchmarks/README.md, "The refactor's
per-step time")."""

import json
import sys
import time


def main() -> None:
    from rsng.core.threads import configure_threads

    configure_threads(1)  # before JAX starts
    from rsng.core.config import resolve
    from rsng.core.integrate import Trajectory

    problem, s = sys.argv[1], int(sys.argv[2])
    traj = Trajectory(resolve(problem=problem, preset="fast", s=s, seed=0), chunk=50)
    traj.advance(50)  # compile and warm up
    times = []
    for _ in range(5):
        if traj.done:  # a short run: fewer timings
            break
        t0, k0 = time.perf_counter(), traj.k
        traj.advance(100)
        times.append((time.perf_counter() - t0) / (traj.k - k0) * 1000)
    print(json.dumps({"ms_per_step_min": min(times), "median": sorted(times)[len(times) // 2], "runs": len(times)}))


if __name__ == "__main__":
    main()
