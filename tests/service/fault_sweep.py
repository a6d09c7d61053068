"""A small sweep for the fault-injection and load tests: the ``heat`` smoke preset over a grid of seeds
(and optionally of time steps — ``--dt 0.01 2.0`` adds a configuration that diverges within a few steps).

Run like the scripts in ``sweeps/`` (same options, via :func:`rsng.service.cli.sweep_main`)::

    python tests/service/fault_sweep.py --seeds 4 --t-end 4 --storage DIR --ray-address local
"""

import sys

from rsng.service.cli import sweep_main
from rsng.service.spec import SweepSpec


def extra(p):
    p.add_argument("--seeds", type=int, default=4, help="seeds 0..N-1 (one trajectory each)")
    p.add_argument("--t-end", type=float, default=2.0, help="final time (heat smoke: dt = 0.01, so 100 steps per unit)")
    p.add_argument("--dt", type=float, nargs="+", default=[0.01], help="time steps (a grid axis)")


def build(args):
    grid = {"seed": list(range(args.seeds))}
    if len(args.dt) > 1:
        grid["dt"] = list(args.dt)
    fixed = {"problem": "heat", "preset": "smoke", "t_end": args.t_end}
    if len(args.dt) == 1:
        fixed["dt"] = args.dt[0]
    return SweepSpec("faults", grid=grid, fixed=fixed, description="fault-injection test sweep (heat smoke)")


if __name__ == "__main__":
    sys.exit(sweep_main("faults", __doc__, build, extra))
