"""Reference solvers: self-convergence, independent checks, evaluation paths, cache.

Tolerances are ~10× the values measured when the tests were written (noted per test).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from rsng.core.problems import (
    CharacteristicsReference,
    Problem,
    SpectralReference,
    get_problem,
)
from rsng.core.reference import (
    backward_flow,
    characteristics,
    default_cache_dir,
    etdrk4,
    fourier_interpolate,
    reference_solution,
)

T_AC = np.arange(81) * 0.05  # allen_cahn, t in [0, 4]
T_BURGERS = np.arange(41) * 0.1  # burgers, t in [0, 4]


def _run(name: str, N: int, dt: float, t: np.ndarray) -> np.ndarray:
    problem = get_problem(name)
    ((lo, hi),) = problem.box
    x = lo + (hi - lo) * np.arange(N) / N
    spec = dataclasses.replace(problem.reference, N=N, dt=dt)
    return etdrk4(problem.u0(np, x[:, None]), hi - lo, spec, t)


def _rel(coarse: np.ndarray, fine: np.ndarray) -> float:
    """Relative space-time L2 on the coarse grid (the fine grid is a refinement of it)."""
    fine = fine[:, :: fine.shape[1] // coarse.shape[1]]
    return float(np.linalg.norm(coarse - fine) / np.linalg.norm(fine))


@pytest.fixture(scope="module")
def allen_cahn_default() -> np.ndarray:
    spec = get_problem("allen_cahn").reference
    return _run("allen_cahn", spec.N, spec.dt, T_AC)


# ------------------------------------------------------------------------------ ETDRK4


def test_allen_cahn_coarse_vs_default(allen_cahn_default):
    # measured 1.9e-10 (N=256, dt=1e-2 vs N=512, dt=1e-3)
    assert _rel(_run("allen_cahn", 256, 1e-2, T_AC), allen_cahn_default) < 2e-9


def test_allen_cahn_default_self_convergence(allen_cahn_default):
    # measured 2.0e-13 (N=512, dt=1e-3 vs N=1024, dt=5e-4); time-step dominated
    assert _rel(allen_cahn_default, _run("allen_cahn", 1024, 5e-4, T_AC)) < 2e-12


def test_burgers_self_convergence():
    # measured 3.3e-6 (N=1024, dt=1e-3 vs default N=2048, dt=2.5e-4)
    spec = get_problem("burgers").reference
    coarse = _run("burgers", 1024, 1e-3, T_BURGERS)
    assert _rel(coarse, _run("burgers", spec.N, spec.dt, T_BURGERS)) < 3e-5


def test_linear_problems_are_exact():
    # measured 3e-15: zero nonlinearity makes ETDRK4 exact, checks k, the grid and complex L̂
    x = 2 * math.pi * np.arange(64) / 64
    t = np.linspace(0.0, 1.0, 11)
    zero = lambda v, k: np.zeros_like(v)  # noqa: E731
    for name, symbol in [("heat", lambda k: -0.1 * k**2), ("advection", lambda k: -1j * k)]:
        exact = get_problem(name).reference.exact
        spec = SpectralReference(linear=symbol, nonlinear_hat=zero, N=64, dt=1e-2)
        u = etdrk4(exact(np, x[:, None], 0.0), 2 * math.pi, spec, t)
        want = np.stack([exact(np, x[:, None], s) for s in t])
        assert np.abs(u - want).max() < 1e-13, name


def test_allen_cahn_matches_dop853():
    # measured 1.7e-11 relative (N=128, whole [0, 4]); DOP853's own error is of that size
    problem = get_problem("allen_cahn")
    spec, N = problem.reference, 128
    x = 2 * math.pi * np.arange(N) / N
    k = np.fft.fftfreq(N, 1.0 / N)
    u0 = problem.u0(np, x[:, None])

    def rhs(_, u):
        v = np.fft.fft(u)
        return np.fft.ifft(spec.linear(k) * v + spec.nonlinear_hat(v, k)).real

    sol = solve_ivp(rhs, (0.0, 4.0), u0, method="DOP853", rtol=1e-11, atol=1e-13, t_eval=T_AC)
    assert sol.success
    u = etdrk4(u0, 2 * math.pi, spec, T_AC)
    assert np.linalg.norm(u - sol.y.T) / np.linalg.norm(sol.y) < 2e-10


def test_save_times_must_be_whole_steps():
    spec = get_problem("allen_cahn").reference
    u0 = np.cos(2 * math.pi * np.arange(32) / 32)
    u = etdrk4(u0, 2 * math.pi, spec, np.array([0.0, 0.1, 3 * 0.1]))  # 0.30000000000000004 snaps
    assert np.array_equal(u[0], u0)
    with pytest.raises(ValueError, match="whole number"):
        etdrk4(u0, 2 * math.pi, spec, np.array([0.0015]))


# ------------------------------------------------------------------------------ evaluation paths


def test_fourier_interpolate_is_exact_for_trig_polynomials():
    lo, length, N = -1.0, 2.0, 16
    f = lambda x: 1 + np.sin(math.pi * x) + 0.3 * np.cos(7 * math.pi * (x - 0.2))  # noqa: E731
    grid = lo + length * np.arange(N) / N
    x = np.random.default_rng(0).uniform(-3.0, 3.0, 50)
    assert np.abs(fourier_interpolate(f(grid)[None], lo, length, x)[0] - f(x)).max() < 1e-13


def test_subsample_path_equals_interpolation_path():
    problem = get_problem("allen_cahn")
    t = np.arange(11) * 0.1
    delta = 0.3 * 2 * math.pi / 200
    x = problem.grid(200) + delta
    # the same points are the grid of the shifted box → run at N=600, subsample every 3rd point
    shifted = dataclasses.replace(problem, box=((delta, 2 * math.pi + delta),))
    sub = reference_solution(shifted, x, t)
    inter = reference_solution(problem, x, t)
    assert sub.method.startswith("spectral-etdrk4 N=600 ") and sub.method.endswith("subsampled")
    assert inter.method.startswith("spectral-etdrk4 N=512 ") and inter.method.endswith("interpolated")
    # measured 1.3e-14; both are spectrally accurate at N ≥ 512
    assert np.abs(sub.u - inter.u).max() < 1e-12


def test_spectral_reference_respects_box_lower_end():
    # u_t = -c u_x on [-1, 1): exact u0(x - c t); grid path and interpolation path
    c = 0.7
    u0 = lambda xp, x: xp.sin(math.pi * x[..., 0]) + 0.5 * xp.cos(2 * math.pi * x[..., 0] + 0.3)  # noqa: E731
    problem = Problem(
        name="test_advection_box",
        equation="u_t = -0.7 u_x on [-1, 1)",
        box=((-1.0, 1.0),),
        derivatives={"u_x": (1,)},
        rhs=lambda x, f: -c * f["u_x"],
        u0=u0,
        t_end=1.0,
        dt=1e-2,
        n=40,
        rcond=1e-4,
        reference=SpectralReference(
            linear=lambda k: -1j * c * k, nonlinear_hat=lambda v, k: np.zeros_like(v), N=64, dt=1e-2
        ),
    )
    t = np.arange(11) * 0.1
    for x in (problem.grid(40), problem.grid(40) + 0.0123):
        want = np.stack([u0(np, x - c * s) for s in t])
        assert np.abs(reference_solution(problem, x, t).u - want).max() < 1e-13


def test_exact_reference():
    problem = get_problem("heat")
    x, t = problem.grid(50), np.linspace(0.0, 1.0, 5)
    ref = reference_solution(problem, x, t)
    assert ref.method == "exact" and ref.u.shape == (5, 50)
    assert np.array_equal(ref.u[2], problem.reference.exact(np, x, t[2]))


# ------------------------------------------------------------------------------ characteristics


def test_vlasov_backward_flow_conserves_energy():
    problem = get_problem("vlasov")
    z, t = problem.grid(24**2), np.arange(601) * 5e-3
    energy = lambda Z: Z[..., 1] ** 2 / 2 + np.cos(Z[..., 0])  # noqa: E731
    feet = backward_flow(problem.reference.velocity, z, t, problem.reference.substeps)
    assert feet.shape == (601, 24**2, 2)
    assert np.array_equal(feet[0], z)
    # measured 2.5e-12 over t in [0, 3]
    assert np.abs(energy(feet) - energy(z)).max() < 3e-11


def test_vlasov_characteristics_substeps_and_initial_value():
    problem = get_problem("vlasov")
    z, t = problem.grid(24**2), np.arange(601) * 5e-3
    velocity = problem.reference.velocity
    u4 = characteristics(problem.u0, velocity, z, t, 4)
    u16 = characteristics(problem.u0, velocity, z, t, 16)
    assert np.array_equal(u4[0], problem.u0(np, z))
    # measured 3.7e-14
    assert np.abs(u4 - u16).max() < 5e-13
    ref = reference_solution(problem, z, t[:21])
    assert ref.method == "characteristics-rk4 substeps=4"
    assert np.array_equal(ref.u, u4[:21])


def test_characteristics_box_wraps_foot_points():
    # a = 1 on [0, 2π): u0 given only by a non-periodic formula, wrapping makes it periodic
    velocity = lambda xp, z: xp.ones_like(z)  # noqa: E731
    u0 = lambda xp, z: z[..., 0]  # noqa: E731
    z = np.array([[0.5], [3.0]])
    u = characteristics(u0, velocity, z, np.array([1.0]), 2, box=((0.0, 2 * math.pi),))
    assert np.allclose(u[0], [0.5 - 1.0 + 2 * math.pi, 2.0], atol=1e-14)


# ------------------------------------------------------------------------------ cache


def test_cache_roundtrip(tmp_path):
    problem = dataclasses.replace(
        get_problem("vlasov"), reference=CharacteristicsReference(get_problem("vlasov").reference.velocity, 2)
    )
    x, t = problem.grid(16**2), np.arange(5) * 0.1
    first = reference_solution(problem, x, t, cache_dir=tmp_path)
    second = reference_solution(problem, x, t, cache_dir=tmp_path)
    assert not first.cached and second.cached
    assert second.u.tobytes() == first.u.tobytes()
    assert (second.method, second.wall_s) == (first.method, first.wall_s)
    (path,) = tmp_path.iterdir()  # one file, no temp files left behind
    assert path.suffix == ".npz"
    with np.load(path, allow_pickle=False) as f:
        assert np.array_equal(f["u"], first.u)
    # other times → another key
    reference_solution(problem, x, t[:3], cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2


def test_spectral_cache_hit(tmp_path):
    problem = get_problem("allen_cahn")
    x, t = problem.grid(128), np.arange(3) * 0.05
    first = reference_solution(problem, x, t, cache_dir=tmp_path)
    second = reference_solution(problem, x, t, cache_dir=tmp_path)
    assert second.cached and second.u.tobytes() == first.u.tobytes()
    assert first.method == "spectral-etdrk4 N=512 dt=0.001 subsampled"
    assert np.array_equal(first.u[0], problem.u0(np, x))


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("RSNG_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "reference"
    monkeypatch.delenv("RSNG_CACHE_DIR")
    assert default_cache_dir().parts[-3:] == (".cache", "rsng", "reference")


# ------------------------------------------------------------------------------ cache shared by processes

_CONCURRENT = """
import json, sys
from rsng.core.config import resolve
from rsng.core.reference import run_reference
ref = run_reference(resolve("smoke", problem="allen_cahn"), sys.argv[1])
print(json.dumps({"cached": ref.cached, "u0": ref.u[-1, :3].tolist()}))
"""


def test_concurrent_processes_compute_a_reference_once(tmp_path):
    """Trials starting together (and the sweep driver, which computes references while Ray starts)
    share one computation: the cache entry is locked while it is computed, the others load the file."""
    import json
    import subprocess
    import sys

    procs = [
        subprocess.Popen([sys.executable, "-c", _CONCURRENT, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outs = [json.loads(p.communicate(timeout=300)[0].splitlines()[-1]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(o["cached"] for o in outs) == [False, True, True]
    assert outs[0]["u0"] == outs[1]["u0"] == outs[2]["u0"]
    assert [p.suffix for p in (tmp_path / "reference").iterdir()] == [".npz"]  # no lock or temp file left
