"""The fast solver (sampled Jacobian columns from per-layer factors, stages in sketch coordinates)
against the reference solver (full n × p Jacobian per stage, lifted stage velocities).

In float64 the two are the same computation up to rounding: identical index sets at every step, and
after 20 steps u equal to 1e-8 and θ to 1e-6 relative (of its change), for every sampler — rounding
(1e-16) amplified by κ(J_s) ≈ 1e10 bounds θ's agreement; measured: θ 4e-9 (uniform) … 2e-14, u ≤ 2e-10. In float32 the rcond-truncated least
squares (κ(J_s) ≈ 1e10) amplifies rounding: the reference solver itself, started from θ(0) perturbed
at float32 resolution, moves u by up to ~1e-2 after 20 steps of a smoke-sized run. The float32 check therefore
measures that spread in the same test and requires the fast solver to stay within it.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rsng.core import galerkin, stepping
from rsng.core.config import SAMPLERS, resolve
from rsng.core.network import Network
from rsng.core.problems import get_problem

STEPS = 20


@pytest.mark.parametrize("dim,depth,width", [(1, 7, 25), (2, 4, 6), (1, 3, 5), (1, 2, 4)])
def test_factors_reproduce_the_full_jacobian(dim, depth, width):
    net = Network(dim, (2.0,) * dim, width, depth)
    theta = net.init(jax.random.PRNGKey(1), jnp.float64)
    x = jax.random.uniform(jax.random.PRNGKey(2), (40, dim), jnp.float64, 0.0, 2.0)
    J = galerkin.jacobian(net, theta, x)
    A, B = galerkin.jacobian_factors(net, theta, x)
    assert A.shape[1] + B.shape[1] < net.num_params or depth <= 3
    np.testing.assert_allclose(galerkin.columns_from_factors(net, A, B), J, rtol=1e-12, atol=1e-12)
    idx = jax.random.choice(jax.random.PRNGKey(3), net.num_params, (min(30, net.num_params),), replace=False)
    np.testing.assert_allclose(galerkin.columns_from_factors(net, A, B, idx), J[:, idx], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(galerkin.rows_from_factors(net, A.T, B.T, idx), J[:, idx].T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(galerkin.rows_from_factors(net, A.T, B.T), J.T, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("problem", ["allen_cahn", "burgers", "heat", "advection", "vlasov"])
@pytest.mark.parametrize("depth", [2, 3, 7])
def test_stage_quantities_match_the_autodiff_pieces(problem, depth):
    """The hand-written batched pass against vmapped reverse-mode factors and nested-JVP fields."""
    pr = get_problem(problem)
    assert galerkin.supports_stage_quantities(pr)
    net = Network(pr.dim, pr.lengths, 6, depth)
    theta = 1.3 * net.init(jax.random.PRNGKey(depth), jnp.float64)  # off the initialisation's symmetries
    x = jnp.asarray(pr.grid(49 if pr.dim == 2 else 40), jnp.float64)
    At, Bt, F = galerkin.stage_quantities(net, pr, theta, x)  # factors transposed: one row per column
    A0, B0 = galerkin.jacobian_factors(net, theta, x)
    for got, want in ((At.T, A0), (Bt.T, B0), (F, galerkin.rhs(net, pr, theta, x))):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-13 * float(jnp.max(jnp.abs(want))))


def test_stage_quantities_decline_mixed_and_third_derivatives():
    pr = get_problem("vlasov")
    for derivs in ({"u_xv": (1, 1)}, {"u_xxx": (3, 0)}):
        assert not galerkin.supports_stage_quantities(dataclasses.replace(pr, derivatives=derivs))


@functools.cache
def _runner(cfg, solver):
    """Compiled: θ(0) → (θ after STEPS steps, index sets (STEPS, s), u on the grid)."""
    problem = get_problem(cfg.problem)
    net = Network(problem.dim, problem.lengths, cfg.width, cfg.depth)
    dtype = jnp.float64 if cfg.precision == "f64" else jnp.float32
    x = jnp.asarray(problem.grid(cfg.n), dtype)
    step = stepping.make_step(net, problem, dataclasses.replace(cfg, solver=solver), x)

    @jax.jit
    def run(theta):
        def body(th, k):
            out = step(th, k, jax.random.PRNGKey(cfg.seed))
            return out.theta, out.idx

        theta, idx = jax.lax.scan(body, theta, jnp.arange(STEPS, dtype=jnp.int32))
        return theta, idx, net.apply_batch(theta, x)

    return run, dtype


def _march(cfg, theta0, solver):
    run, dtype = _runner(cfg, solver)
    return tuple(np.asarray(a) for a in run(jnp.asarray(theta0, dtype)))


def _setup(sampler, precision):
    """allen_cahn on a small network (depth 4, width 12: p = 382; n = 128, s = 40) from a random θ(0)."""
    cfg = resolve(
        "smoke",
        problem="allen_cahn",
        sampler=sampler,
        precision=precision,
        seed=3,
        n=128,
        depth=4,
        width=12,
        s="dense" if sampler == "dense" else 40,
    )
    problem = get_problem(cfg.problem)
    net = Network(problem.dim, problem.lengths, cfg.width, cfg.depth)
    return cfg, np.asarray(net.init(jax.random.PRNGKey(0), jnp.float64))


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_fast_equals_reference_in_float64(sampler):
    cfg, theta0 = _setup(sampler, "f64")
    th_f, idx_f, u_f = _march(cfg, theta0, "fast")
    th_r, idx_r, u_r = _march(cfg, theta0, "full-jacobian")
    np.testing.assert_array_equal(idx_f, idx_r)  # identical index sets at every one of the 20 steps
    assert np.linalg.norm(th_f - th_r) <= 1e-6 * np.linalg.norm(th_r - theta0)
    assert np.linalg.norm(u_f - u_r) <= 1e-8 * np.linalg.norm(u_r)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_fast_within_float32_rounding_spread_of_reference(sampler):
    cfg, theta0 = _setup(sampler, "f32")
    th32 = theta0.astype(np.float32)
    _, idx_f, u_f = _march(cfg, th32, "fast")
    _, idx_r, u_r = _march(cfg, th32, "full-jacobian")
    # the reference's own spread: θ(0) perturbed by a few float32 ulps
    noise = np.random.default_rng(0).standard_normal(th32.shape).astype(np.float32)
    _, _, u_p = _march(cfg, th32 * (1 + 4 * np.finfo(np.float32).eps * noise), "full-jacobian")
    spread = np.linalg.norm(u_p - u_r) / np.linalg.norm(u_r)
    diff = np.linalg.norm(u_f - u_r) / np.linalg.norm(u_r)
    assert diff <= max(10 * spread, 1e-5), (diff, spread)
    if sampler in ("uniform", "gaussian", "dense"):  # index sets that do not depend on J's rounding
        np.testing.assert_array_equal(idx_f, idx_r)
