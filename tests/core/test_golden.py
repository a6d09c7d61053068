"""Golden values: short runs of every sampler, both Galerkin strategies, both integrators and both
precisions must reproduce, bit for bit, the rows and final θ stored in ``tests/core/golden/``.

The stored values were computed by the engine before it was restructured; any change to the time
step's arithmetic (operation order included) shows here. θ(0) is stored with the values, so a change
of the θ(0) fit does not touch this test; the ground truth comes from :mod:`rsng.core.reference`.

Bits depend on the CPU as well as on the code: XLA compiles for the host's instruction set (vector
width, hence summation order), and in float32 the truncated least squares amplifies a last-bit
difference to 1e-3–3e-2 relative after 12 steps (an AMD EPYC with AVX-512 against the Intel Xeon that
wrote the first set; float64 agreed to 1e-11). So ``golden/`` holds one set per CPU kind it was
written on (``<vendor>-<family>-<model>-<isa>.npz``). A case
passes when its values equal, bit for bit, those of some stored set. On a CPU whose kind has a set,
nothing else passes. On a CPU of another kind, where bits cannot be compared, the values must lie
within :data:`ACROSS_CPUS` of every set (a warning says so): a check that fails when the results move
by more than a change of CPU moved them, though not on a mere reordering of the arithmetic.

Regenerate (only when a numerical change is intended, and say so in the commit):
``python tests/core/test_golden.py`` — it writes this CPU's set and deletes the others, which no
longer describe the code. On a new CPU kind with the code unchanged, ``--add`` writes its set from the
stored θ(0) and keeps the others.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rsng.core.threads import cpu_kind

GOLDEN_DIR = Path(__file__).with_name("golden")
#: Relative tolerances on CPUs without a set of their own: (float32, float64). ``theta`` is compared
#: norm-wise, the rows element-wise (max over steps). About 3× the largest difference seen between two
#: CPU kinds (float32: rel_l2_t 3.3e-2, ls_residual 3.7e-3, θ 2.1e-3, rel_l2 5.9e-3; float64 ≤ 1.4e-11).
ACROSS_CPUS = {
    "rel_l2_t": (1e-1, 1e-8),
    "ls_residual": (1e-2, 1e-8),
    "theta": (1e-2, 1e-8),
    "rel_l2": (2e-2, 1e-8),
}
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
def golden() -> dict[str, dict[str, np.ndarray]]:
    """The stored sets, by CPU kind."""
    sets = {}
    for path in sorted(GOLDEN_DIR.glob("*.npz")):
        with np.load(path, allow_pickle=False) as z:
            sets[path.stem] = {k: z[k] for k in z.files}
    assert sets, f"no golden sets in {GOLDEN_DIR}"
    return sets


def _bit_equal(got, want, name) -> bool:
    return all(
        got[f].dtype == want[f"{name}/{f}"].dtype and got[f].tobytes() == want[f"{name}/{f}"].tobytes()
        for f in (*FIELDS, "rel_l2")
    )


@pytest.mark.parametrize("name,preset,overrides", CASES, ids=[c[0] for c in CASES])
def test_bit_identical_to_stored_values(name, preset, overrides, golden, tmp_path):
    kind = cpu_kind()
    theta0 = {k: v[f"{name}/theta0"] for k, v in golden.items()}
    assert all(np.array_equal(t, next(iter(theta0.values()))) for t in theta0.values()), "sets of different θ(0)"
    got = _run(preset, overrides, theta0=next(iter(theta0.values())), cache_dir=str(tmp_path))
    if any(_bit_equal(got, want, name) for want in golden.values()):
        return
    if kind in golden:  # this CPU's own set: only bits count (NaN at t = 0 included)
        want = golden[kind]
        for f in (*FIELDS, "rel_l2"):
            w = want[f"{name}/{f}"]
            assert got[f].dtype == w.dtype and got[f].tobytes() == w.tobytes(), (name, f, np.max(np.abs(got[f] - w)))
    import warnings

    warnings.warn(
        f"no golden set for this CPU ({kind}); {name} compared within ACROSS_CPUS of {sorted(golden)}: "
        "`python tests/core/test_golden.py --add` writes one (with the numerics unchanged)",
        stacklevel=1,
    )
    f64 = overrides.get("precision") == "f64"
    for set_name, want in golden.items():
        assert np.array_equal(got["step"], want[f"{name}/step"]), (name, set_name, "step")
        for f, tol in ACROSS_CPUS.items():
            w, g = want[f"{name}/{f}"], np.asarray(got[f])
            assert g.dtype == w.dtype and np.array_equal(np.isnan(g), np.isnan(w)), (name, set_name, f)
            m = ~np.isnan(w)
            if f == "theta":
                rel = np.linalg.norm(g - w) / np.linalg.norm(w)
            else:
                rel = np.max(np.abs(g[m] - w[m]) / np.abs(w[m])) if m.any() else 0.0
            assert rel <= tol[f64], (name, set_name, f, rel, tol[f64])


def _generate(add: bool) -> None:
    """Write this CPU's set. ``add``: the code is unchanged and this is a new CPU kind — start from the
    stored θ(0) and keep the other sets; otherwise fit θ(0) afresh and delete the other sets."""
    import tempfile

    from rsng.core.fit import initial_theta
    from rsng.core.network import Network
    from rsng.core.problems import get_problem

    stored = {}
    if add:
        first = sorted(GOLDEN_DIR.glob("*.npz"))[0]
        with np.load(first, allow_pickle=False) as z:
            stored = {k: z[k] for k in z.files if k.endswith("/theta0")}
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        for name, preset, overrides in CASES:
            cfg = _config(preset, overrides)
            if add:
                theta0 = stored[f"{name}/theta0"]
            else:
                pr = get_problem(cfg.problem)
                net = Network(pr.dim, pr.lengths, cfg.width, cfg.depth)
                theta0, _ = initial_theta(pr, net, cfg.n, cfg.init_seed, cache_dir=cache)
            vals = _run(preset, overrides, theta0=np.asarray(theta0), cache_dir=cache)
            out[f"{name}/theta0"] = np.asarray(theta0)
            for f, v in vals.items():
                out[f"{name}/{f}"] = np.asarray(v)
            print(name, cfg.p, cfg.s, float(vals["rel_l2"]), flush=True)
    GOLDEN_DIR.mkdir(exist_ok=True)
    path = GOLDEN_DIR / f"{cpu_kind()}.npz"
    np.savez_compressed(path, **out)
    if not add:
        for other in GOLDEN_DIR.glob("*.npz"):  # other CPUs' sets describe the code before this change
            if other != path:
                other.unlink()
    print(f"wrote {path}")


if __name__ == "__main__":
    import argparse
    import sys

    ap = argparse.ArgumentParser(description="Write this CPU's golden set (tests/core/golden/<cpu kind>.npz).")
    ap.add_argument(
        "--add",
        action="store_true",
        help="the numerics are unchanged, this is a new CPU kind: reuse the stored θ(0), keep the other sets",
    )
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from rsng.core.threads import configure_threads

    configure_threads(1)
    _generate(args.add)
