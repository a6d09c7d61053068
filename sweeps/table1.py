"""The paper's Table 1 settings, 3 seeds each.

    python sweeps/table1.py --storage /shared/results      # GPU cluster sized (accurate rows)
    python sweeps/table1.py --smoke                        # the fast rows only, seed 0

Rows: allen_cahn and burgers × {fast: n = 1000, s = 150 / 125; accurate: n = 10 000, s = 800},
depth 7, seeds {0, 1, 2}. Paper (V100): allen_cahn 5.34e-5 in 63 s (fast), 1.66e-5 in 776 s
(accurate); burgers 2.05e-4 in 188 s (fast), 6.07e-5 in 2378 s (accurate).
"""

import sys

from rsng.service.cli import sweep_main
from rsng.service.spec import SweepSpec


def build(args):
    if args.smoke:
        return SweepSpec(
            "table1-smoke",
            grid={"problem": ["allen_cahn", "burgers"]},
            fixed={"preset": "fast", "seed": 0},
            description="fast rows, seed 0",
        )
    return SweepSpec(
        "table1",
        grid={"problem": ["allen_cahn", "burgers"], "preset": ["fast", "accurate"], "seed": [0, 1, 2]},
        description=__doc__.splitlines()[0],
    )


if __name__ == "__main__":
    sys.exit(sweep_main("table1", __doc__, build))
