"""Network size p (depth × width) at fixed sparsity s — the paper's Fig. 4a.

    python sweeps/architecture.py --smoke
    python sweeps/architecture.py --storage /shared/results

Full grid: allen_cahn (fast preset, n = 1000) with depth {3, 4, 5, 6, 7} × width {15, 25} at s = 150,
seeds {0, 1, 2}. Each new architecture fits its own θ(0) on first use (cached on every node, keyed
by a hash of problem, architecture, n and fit settings), which adds minutes to its first trial.
"""

import sys

from rsng.service.cli import sweep_main
from rsng.service.spec import SweepSpec


def build(args):
    if args.smoke:
        return SweepSpec(
            "architecture-smoke",
            grid={"depth": [2, 3], "seed": [0, 1]},
            fixed={"preset": "smoke", "problem": "allen_cahn", "s": 40},
            description="smoke: depth 2 and 3, allen_cahn smoke",
        )
    return SweepSpec(
        "architecture",
        grid={"depth": [3, 4, 5, 6, 7], "width": [15, 25], "seed": [0, 1, 2]},
        fixed={"preset": "fast", "problem": "allen_cahn", "s": 150},
        description=__doc__.splitlines()[0],
    )


if __name__ == "__main__":
    sys.exit(sweep_main("architecture", __doc__, build))
