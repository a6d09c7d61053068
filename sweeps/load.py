"""A load sweep: N seeds of one small configuration, for load tests and benchmarks of the service itself.

    python sweeps/load.py --trajectories 1000 --ray-address local      # heat smoke, t_end = 2: ≈ 0.4 s each
    python sweeps/load.py --trajectories 100 --problem allen_cahn --preset fast --t-end 0.5

Every trajectory is the same configuration with its own sketch seed (seeds 0 … N-1), so the work per
trajectory is even and what varies with N is the service's own cost: scheduling, Parquet, MLflow.
Grids of more than 5000 trajectories need --yes.
"""

import sys

from rsng.service.cli import sweep_main
from rsng.service.spec import SweepSpec


def extra(p):
    p.add_argument("--trajectories", type=int, default=100, help="number of trajectories, seeds 0..N-1 (default 100)")
    p.add_argument("--problem", default="heat", help="the problem (default heat)")
    p.add_argument("--preset", default="smoke", help="the preset: smoke, fast or accurate (default smoke)")
    p.add_argument(
        "--t-end",
        type=float,
        default=2.0,
        help="final time (default 2.0: 200 steps of heat smoke, ≈ 0.3–0.5 s each on one CPU)",
    )


def build(args):
    from rsng.service.spec import SweepSpecError

    if args.trajectories < 1:
        raise SweepSpecError("--trajectories", f"must be an integer ≥ 1, got {args.trajectories}")
    name = f"load-{args.problem}-{args.preset}-{args.trajectories}"
    return SweepSpec(
        name,
        grid={"seed": list(range(args.trajectories))},
        fixed={"problem": args.problem, "preset": args.preset, "t_end": args.t_end},
        description=f"load: {args.trajectories} seeds of {args.problem} {args.preset}, t_end={args.t_end}",
    )


if __name__ == "__main__":
    sys.exit(sweep_main("load", __doc__, build, extra))
