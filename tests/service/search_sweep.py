"""A small sweep for the search tests: the ``heat`` smoke preset (T = 1, 100 steps) over s × rcond, where
rcond = 0.5 drops nearly every direction of the least squares, so those configurations are far off the
front, and at s = 128 or 256 several times as expensive as s = 8: a search stops them early once the
cheap, accurate s = 8 configuration has finished.

Run like the scripts in ``sweeps/`` (same options, via :func:`rsng.service.cli.sweep_main`)::

    python tests/service/search_sweep.py --search pareto --budget 8 --storage DIR --ray-address local
"""

import sys

from rsng.service.cli import sweep_main
from rsng.service.spec import SweepSpec


def extra(p):
    p.add_argument("--seeds", type=int, default=2, help="seeds 0..N-1 per configuration")
    p.add_argument("--t-end", type=float, default=1.0, help="final time (heat smoke: dt = 0.01)")


def build(args):
    return SweepSpec(
        "search",
        grid={"s": [8, 128, 256], "rcond": [1e-4, 0.5], "seed": list(range(args.seeds))},
        fixed={"problem": "heat", "preset": "smoke", "t_end": args.t_end},
        description="search test sweep (heat smoke, s × rcond)",
    )


if __name__ == "__main__":
    sys.exit(sweep_main("search", __doc__, build, extra))
