"""θ(0) study: fit recipe × rcond × sketch seeds on the fast presets (docs/initial-fit.md).

    python sweeps/initial_fit.py --ray-address local --storage results     # 2 × 2 × 2 × 5 = 40 trajectories
    python sweeps/initial_fit.py --smoke                                     # smoke presets, seed 0 (fits adam-lm: minutes)

Grid: allen_cahn and burgers (fast: n = 1000, s = 150 / 125) × fit_recipe {lbfgs-lm-adam (the first
releases'), the problem's default at the run's cut-off (allen_cahn: adam-lm,polish=200, at 1e-4 adam-lm
from init seed 2; burgers: adam-lm,lr=1e-3, at 1e-4 adam-lm,lr=1e-3,embed=3,points=2000 from init seed 9)}
× rcond {1e-4 (the paper's), 1e-5} × seeds 0–4. Each trajectory's row records its recipe, the t = 0 error its fit
reached (``fit_rel_l2_t0``) and the full J(θ(0)) spectrum at its cut-off (``j0_sigma_max``, ``j0_rank``);
its steps record the kept rank of every step's sketched least squares. All six fits ship with the package; another recipe fits θ(0) on
its first trial (minutes on one CPU) unless it is cached:
``rsng fit --problem P --preset fast --fit-recipe R`` beforehand fills the cache.
``sweeps/initial_fit_report.py <storage>/initial-fit`` draws the write-up's table and plots from the Parquet results.
"""

import sys

from rsng.service.cli import sweep_main
from rsng.service.spec import SweepSpec

#: the first releases' recipe and each problem's own at the run's cut-off (Problem.default_recipe)
RECIPES = ["lbfgs-lm-adam", "default"]


def build(args):
    if args.smoke:
        return SweepSpec(
            "initial-fit-smoke",
            # the smoke presets' own recipe is lbfgs-lm-adam, so "default" would repeat it: name adam-lm
            grid={"problem": ["allen_cahn", "burgers"], "fit_recipe": ["lbfgs-lm-adam", "adam-lm"]},
            fixed={"preset": "smoke", "rcond": 1e-4, "seed": 0},
            description="smoke presets, rcond 1e-4, seed 0",
        )
    return SweepSpec(
        "initial-fit",
        grid={
            "problem": ["allen_cahn", "burgers"],
            "fit_recipe": RECIPES,
            "rcond": [1e-4, 1e-5],
            "seed": [0, 1, 2, 3, 4],
        },
        fixed={"preset": "fast"},
        description=__doc__.splitlines()[0],
    )


if __name__ == "__main__":
    sys.exit(sweep_main("initial_fit", __doc__, build))
