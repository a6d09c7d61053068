"""Golden values: short runs of every sampler, both Galerkin strategies, both integrators and both
precisions must reproduce, bit for bit, the rows and final θ stored in ``tests/core/golden.npz``.

The stored values were computed by the engine before it was restructured; any change to the time
step's arithmetic (operation order included) shows here. θ(0) is stored with the values, so a change
of the θ(0) fit does not touch this test; the ground truth comes from :mod:`rsng.core.reference`.

Regenerate (only when a numerical change is intended, and say so in the commit):
``python tests/core/test_golden.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).with_name("golden.npz")
STEPS = 12

# (case name, preset, overrides); t_end is set to STEPS steps of the problem's dt
CASES = [
    *[
        (f"allen_cahn-{s}", "smoke", {"problem": "allen_cahn", "sampler": s})
        for s in ("uniform", "column_norm", "leverage", "pivoted_qr", "gaussian")
    ],
    ("allen_cahn-dense", "smoke", {"problem": "allen_cahn", "s": "dense"}),
    *[
        (f"allen_cahn-{s}-full", "smoke", {"problem": "allen_cahn", "sampler": s, "solver": "full-jacobian"})
        for s in ("uniform", "column_norm", "gaussian")
    ],
    ("allen_cahn-dense-full", "smoke", {"problem": "allen_cahn", "s": "dense", "solver": "full-jacobian"}),
    ("allen_cahn-uniform-s=p", "smoke", {"problem": "allen_cahn", "sampler": "uniform", "s": 765}),
    (
        "allen_cahn-uniform-euler-f64",
        "smoke",
        {"problem": "allen_cahn", "sampler": "uniform", "integrator": "euler", "precision": "f64"},
    ),
    ("vlasov-gaussian", "smoke", {"problem": "vlasov", "sampler": "gaussian"}),
    ("advection-leverage-full", "smoke", {"problem": "advection", "sampler": "leverage", "solver": "full-jacobian"}),
    ("allen_cahn-fast-uniform", "fast", {"problem": "allen_cahn", "sampler": "uniform"}),
    ("burgers-fast-column_norm", "fast", {"problem": "burgers", "sampler": "column_norm"}),
]
FIELDS = ("step", "rel_l2_t", "ls_residual", "theta")


def _config(preset, overrides):
    from rsng.core.config import resolve
    from rsng.core.problems import get_problem

    dt = get_problem(overrides["problem"]).dt
    return resolve(preset, **overrides, dt=dt, t_end=STEPS * dt, save_every=1)


def _run(preset, overrides, theta0=None, cache_dir=None):
    from rsng.core.integrate import solve

    cfg = _config(preset, overrides)
    r = solve(cfg, theta0=theta0, chunk=5, cache_dir=cache_dir)
    assert r.status == "ok"
    return {
        "step": r.step,
        "rel_l2_t": r.rel_l2_t,
        "ls_residual": r.ls_residual,
        "theta": r.theta,
        "rel_l2": np.asarray(r.rel_l2),
    }


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("name,preset,overrides", CASES, ids=[c[0] for c in CASES])
def test_bit_identical_to_stored_values(name, preset, overrides, golden, tmp_path):
    got = _run(preset, overrides, theta0=golden[f"{name}/theta0"], cache_dir=str(tmp_path))
    for f in (*FIELDS, "rel_l2"):
        want = golden[f"{name}/{f}"]
        assert got[f].dtype == want.dtype, (name, f)
        # bit-identical: equal as raw bytes (NaN at t = 0 included)
        assert got[f].tobytes() == want.tobytes(), (name, f, np.max(np.abs(got[f] - want)))


def _generate() -> None:
    import tempfile

    from rsng.core.fit import initial_theta
    from rsng.core.network import Network
    from rsng.core.problems import get_problem

    out = {}
    with tempfile.TemporaryDirectory() as cache:
        for name, preset, overrides in CASES:
            cfg = _config(preset, overrides)
            pr = get_problem(cfg.problem)
            net = Network(pr.dim, pr.lengths, cfg.width, cfg.depth)
            theta0, _ = initial_theta(pr, net, cfg.n, cfg.init_seed, cache_dir=cache)
            vals = _run(preset, overrides, theta0=np.asarray(theta0), cache_dir=cache)
            out[f"{name}/theta0"] = np.asarray(theta0)
            for f, v in vals.items():
                out[f"{name}/{f}"] = np.asarray(v)
            print(name, cfg.p, cfg.s, float(vals["rel_l2"]), flush=True)
    np.savez_compressed(GOLDEN, **out)


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from rsng.core.threads import configure_threads

    configure_threads(1)
    _generate()
