"""Accuracy versus cost over the sparsity s (the paper's Fig. 4b/5), with the samplers added.

    python sweeps/sparsity.py --smoke                    # 12 short trajectories (times: README)
    python sweeps/sparsity.py --storage /shared/results  # the full study (GPU cluster sized)
    ray submit cluster/gpu.yaml sweeps/sparsity.py -- --storage /mnt/shared/rsng/results \
        --mlflow-uri http://<head-private-ip>:5000 --gpus-per-trial 0.25   # on a cluster (cluster/README.md)

Smoke grid: allen_cahn (smoke preset: n = 256, depth 3, p = 765, T = 0.5) × s ∈ {25, 50, 100} ×
samplers {uniform, column_norm} × seeds {0, 1}; it ends with the accuracy-versus-cost table and
<storage>/sparsity-smoke/front.png.

Full grid: allen_cahn and burgers (fast presets, n = 1000, depth 7, p = 3393) × s ∈ {50, 100, 200,
400, 800, 1600, 3200, dense} × samplers {uniform, column_norm} × seeds {0, 1, 2}.
"""

import sys

from rsng.service.cli import sweep_main
from rsng.service.spec import SweepSpec


def build(args):
    if args.smoke:
        return SweepSpec(
            "sparsity-smoke",
            grid={
                "problem": ["allen_cahn"],
                "s": [25, 50, 100],
                "sampler": ["uniform", "column_norm"],
                "seed": [0, 1],
            },
            fixed={"preset": "smoke"},
            description="smoke: allen_cahn × s ∈ {25, 50, 100} × 2 samplers × 2 seeds",
        )
    return SweepSpec(
        "sparsity",
        grid={
            "problem": ["allen_cahn", "burgers"],
            "s": [50, 100, 200, 400, 800, 1600, 3200, "dense"],
            "sampler": ["uniform", "column_norm"],
            "seed": [0, 1, 2],
        },
        fixed={"preset": "fast"},
        description=__doc__.splitlines()[0],
    )


if __name__ == "__main__":
    sys.exit(sweep_main("sparsity", __doc__, build))
