"""The sampling distributions against each other at fixed sparsity s.

    python sweeps/samplers.py --smoke
    python sweeps/samplers.py --storage /shared/results

Full grid: allen_cahn and burgers (fast presets, p = 3393) at s = 150 × samplers {uniform,
column_norm, leverage, pivoted_qr, gaussian} × seeds {0, 1, 2}. Non-uniform probabilities are
recomputed once per time step from J(θ_k); pivoted_qr is deterministic (seeds coincide in value).
"""

import sys

from rsng.service.cli import sweep_main
from rsng.service.spec import SweepSpec

SAMPLERS = ["uniform", "column_norm", "leverage", "pivoted_qr", "gaussian"]


def build(args):
    if args.smoke:
        return SweepSpec(
            "samplers-smoke",
            grid={"problem": ["allen_cahn"], "sampler": SAMPLERS, "seed": [0, 1]},
            fixed={"preset": "smoke"},
            description="smoke: every sampler, 2 seeds, allen_cahn smoke",
        )
    return SweepSpec(
        "samplers",
        grid={"problem": ["allen_cahn", "burgers"], "sampler": SAMPLERS, "seed": [0, 1, 2]},
        fixed={"preset": "fast", "s": 150},
        description=__doc__.splitlines()[0],
    )


if __name__ == "__main__":
    sys.exit(sweep_main("samplers", __doc__, build))
