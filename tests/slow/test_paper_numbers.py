"""The paper's fast results (its Table 1), reproduced against the product's own references.
Slow: ``.venv/bin/python -m pytest -m slow``. Measured (float32, the shipped θ(0) of the problems'
default recipes, default rcond 1e-5, the fast solver; docs/initial-fit.md): allen_cahn fast seeds
0/1/2 → 9.47e-6, 1.28e-5, 7.89e-6 (mean 1.0e-5; paper 5.34e-5; recipe adam-lm,polish=200, a 2-core
Intel Xeon VM); burgers fast → 6.32e-5, 5.70e-5, 3.19e-5 (mean 5.1e-5; paper 2.05e-4; adam-lm,lr=1e-3,
one sweep on a 2-core AMD EPYC VM), ≈ 35 s each. The bound is the paper's figure: these runs amplify
rounding, so another CPU gives other digits.
"""

import numpy as np
import pytest

from rsng.core.config import resolve
from rsng.core.integrate import solve

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("problem,target", [("allen_cahn", 5.34e-5), ("burgers", 2.05e-4)])
def test_fast_preset_mean_error_over_three_seeds(problem, target):
    errors = []
    for seed in (0, 1, 2):
        res = solve(resolve("fast", problem=problem, seed=seed))
        assert res.status == "ok"
        assert res.rel_l2_t0 < 1e-5
        errors.append(res.rel_l2)
    print(problem, errors, np.mean(errors))
    assert np.mean(errors) <= target


def test_vlasov_reduced_size_end_to_end():
    # n = 100², s = 800, T = 1 (the fast preset); measured 1.08e-4 (final time 2.07e-4) in 205 s on 2 threads
    res = solve(resolve("fast", problem="vlasov"))
    assert res.status == "ok"
    assert res.rel_l2 < 1e-3


def test_reference_agrees_with_an_independent_high_resolution_solution():
    # ETDRK4 at the product's resolution vs a 2× finer grid and 4× smaller step (required: ≤ 1e-7)
    from dataclasses import replace

    from rsng.core.problems import get_problem
    from rsng.core.reference import etdrk4

    for name in ("allen_cahn", "burgers"):
        pr = get_problem(name)
        spec = pr.reference
        t = np.linspace(0, pr.t_end, 41)
        fine_spec = replace(spec, N=2 * spec.N, dt=spec.dt / 4)
        xc = pr.grid(spec.N)
        xf = pr.grid(fine_spec.N)
        coarse = etdrk4(pr.u0(np, xc), pr.lengths[0], spec, t)
        fine = etdrk4(pr.u0(np, xf), pr.lengths[0], fine_spec, t)[:, ::2]
        err = np.linalg.norm(coarse - fine) / np.linalg.norm(fine)
        print(name, err)
        assert err <= 1e-7
