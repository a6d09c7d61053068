"""Whole-pipeline properties of the time stepper on small problems (random θ(0), exact references)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rsng.core._x64  # noqa: F401  (float64 available)
from rsng.core import galerkin
from rsng.core.config import resolve
from rsng.core.integrate import Trajectory
from rsng.core.network import Network
from rsng.core.problems import get_problem


def exact_reference(cfg):
    pr = get_problem(cfg.problem)
    x = pr.grid(cfg.n)
    t = np.arange(0, cfg.steps + 1, cfg.save_every) * cfg.dt
    return np.stack([pr.reference.exact(np, x, ti) for ti in t])


def random_theta(cfg, key=0):
    pr = get_problem(cfg.problem)
    return np.asarray(Network(pr.dim, pr.lengths, cfg.width, cfg.depth).init(jax.random.PRNGKey(key), jnp.float64))


def traj(cfg, **kw):
    return Trajectory(cfg, theta0=random_theta(cfg), reference=exact_reference(cfg), **kw)


SMALL = dict(problem="heat", n=64, depth=3, width=8, dt=1e-2, t_end=0.2)


def test_same_seed_same_bits_other_seed_other_bits():
    cfg = resolve(None, **SMALL, s=40, seed=3)
    a, b = traj(cfg).run(), traj(cfg).run()
    np.testing.assert_array_equal(a.theta, b.theta)
    c = traj(resolve(None, **SMALL, s=40, seed=4)).run()
    assert not np.array_equal(a.theta, c.theta)


@pytest.mark.parametrize("sampler", ["uniform", "column_norm", "leverage", "pivoted_qr", "gaussian", "dense"])
def test_resume_from_step_k_is_bit_identical(sampler):
    s = None if sampler == "dense" else 30
    cfg = resolve(None, **SMALL, s=s, sampler=sampler, seed=7)
    full = traj(cfg, chunk=4).run()
    t1 = traj(cfg, chunk=4)
    t1.advance(9)  # stops at a chunk boundary past 9: k = 12
    state = t1.state()
    t2 = traj(cfg, chunk=3)  # a different chunking: resuming must not depend on it
    t2.load_state(state)
    resumed = t2.run()
    assert state["k"] == 12
    np.testing.assert_array_equal(resumed.theta, full.theta)
    np.testing.assert_array_equal(resumed.rel_l2_t, full.rel_l2_t)
    assert resumed.rel_l2 == full.rel_l2


def test_sparse_update_touches_exactly_s_coordinates():
    cfg = resolve(None, **dict(SMALL, t_end=0.01), s=17, seed=1)  # one step
    t = traj(cfg)
    theta0 = np.asarray(t.theta)
    t.run()
    changed = np.flatnonzero(np.asarray(t.theta) != theta0)
    assert len(changed) == 17
    from rsng.core.samplers import sample_columns

    idx = sample_columns("uniform", jax.random.fold_in(jax.random.PRNGKey(1), 0), 17, cfg.p)
    np.testing.assert_array_equal(np.sort(changed), np.sort(np.asarray(idx)))


def test_full_s_uniform_is_dense_exactly():
    a = traj(resolve(None, **SMALL, sampler="uniform", seed=5)).run()  # s defaults to p
    b = traj(resolve(None, **SMALL, s="dense")).run()
    assert a.config.s == a.config.p
    np.testing.assert_array_equal(a.theta, b.theta)


def test_dense_equals_hand_written_dense_neural_galerkin():
    cfg = resolve(None, **SMALL, s="dense", precision="f64")
    res = traj(cfg).run()
    pr = get_problem(cfg.problem)
    net = Network(pr.dim, pr.lengths, cfg.width, cfg.depth)
    x = jnp.asarray(pr.grid(cfg.n))

    def velocity(th):
        J = jax.vmap(jax.grad(net.apply), (None, 0))(th, x)
        F = 0.1 * jax.vmap(jax.grad(jax.grad(lambda xi, th=th: net.apply(th, jnp.atleast_1d(xi)))))(x[:, 0])
        return np.linalg.lstsq(np.asarray(J), np.asarray(F), rcond=cfg.rcond)[0]

    th, h = jnp.asarray(random_theta(cfg)), cfg.dt
    for _ in range(cfg.steps):
        k1 = velocity(th)
        k2 = velocity(th + h / 2 * k1)
        k3 = velocity(th + h / 2 * k2)
        k4 = velocity(th + h * k3)
        th = th + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    np.testing.assert_allclose(res.theta, th, rtol=1e-7, atol=1e-9)


def _blowup_problem():
    # u_t = u³ blows up at t = 1/(2 u0²): a new PDE is one declaration, no solver change
    from rsng.core.problems import ExactReference, Problem, problem_names, register

    if "test_blowup" not in problem_names():
        register(
            Problem(
                name="test_blowup",
                equation="u_t = u^3",
                box=((0.0, 2 * np.pi),),
                derivatives={},
                rhs=lambda x, f: f["u"] ** 3,
                u0=lambda xp, x: 2.0 + xp.sin(x[..., 0]),
                t_end=1.0,
                dt=1e-2,
                n=32,
                rcond=1e-4,
                reference=ExactReference(exact=lambda xp, x, t: 2.0 + xp.sin(x[..., 0])),
            )
        )
    return "test_blowup"


def test_diverging_run_is_reported_not_crashed():
    cfg = resolve(None, problem=_blowup_problem(), depth=3, width=8, s="dense")
    pr = get_problem(cfg.problem)
    net = Network(1, pr.lengths, cfg.width, cfg.depth)
    theta0 = np.asarray(net.init(jax.random.PRNGKey(0), jnp.float64)).copy()
    theta0[-1] += 2.0  # output bias: u(0) ≈ 2, blow-up near t = 0.12
    res = Trajectory(cfg, theta0=theta0, reference=exact_reference(cfg), chunk=20).run()
    assert res.status == "diverged"
    assert res.diverged_step is not None and 2 <= res.diverged_step <= cfg.steps
    assert res.steps == res.diverged_step - 1
    assert np.isnan(res.rel_l2)
    assert np.all(np.isfinite(res.rel_l2_t))  # the recorded history stops before the first non-finite step
    assert len(res.rel_l2_t) == res.steps + 1


def test_rk4_converges_at_fourth_order_and_euler_at_first(tmp_path):
    # Self-convergence of u(·, T) in δt from the shipped θ(0) of the heat problem (dense, float64):
    # halving δt divides the change by ≈ 2^order (measured: euler 2.00, rk4 21.5).
    pr = get_problem("heat")

    def u_end(integ, dt):
        cfg = resolve("smoke", problem="heat", s="dense", precision="f64", dt=dt, t_end=0.5, integrator=integ)
        th = Trajectory(cfg, cache_dir=str(tmp_path)).run().theta
        net = Network(1, pr.lengths, cfg.width, cfg.depth)
        return np.asarray(net.apply_batch(jnp.asarray(th), jnp.asarray(pr.grid(cfg.n))))

    for integ, order in (("euler", 1), ("rk4", 4)):
        u = [u_end(integ, dt) for dt in (0.1, 0.05, 0.025)]
        ratio = np.linalg.norm(u[0] - u[1]) / np.linalg.norm(u[1] - u[2])
        assert 2 ** (order - 0.6) < ratio < 2 ** (order + 0.6), (integ, ratio)


def test_spatial_fields_used_by_rhs_are_those_declared():
    pr = get_problem("burgers")
    net = Network(1, pr.lengths, 6, 3)
    th = net.init(jax.random.PRNGKey(0), jnp.float64)
    f = galerkin.fields(net, pr, th, jnp.zeros((3, 1)))
    assert set(f) == {"u", "u_x", "u_xx"}


@pytest.mark.parametrize("problem,bound", [("advection", 3e-4), ("heat", 2e-5)])
def test_exact_solution_problems_are_solved_end_to_end(problem, bound, tmp_path):
    # shipped θ(0), the product's reference path (closed form here), RSNG with s < p
    from rsng.core.integrate import solve

    cfg = resolve("smoke", problem=problem)
    assert cfg.s < cfg.p
    res = solve(cfg, cache_dir=str(tmp_path))
    assert res.status == "ok" and res.reference == "exact"
    assert res.rel_l2_t0 < 1e-6  # the fitted θ(0)
    assert res.rel_l2 < bound  # measured: advection 6.6e-5, heat 3.1e-6
    assert res.fit["source"] == "shipped"


def test_compiled_chunk_is_reused_across_seeds_with_identical_results():
    from rsng.core import integrate

    cfg = dict(SMALL, s=40, t_end=0.1)
    first = traj(resolve(None, **cfg, seed=11)).run()
    reused = traj(resolve(None, **cfg, seed=12)).run()  # same shapes and settings, other seed
    assert reused.compile_s == 0.0
    integrate._COMPILED.clear()
    fresh = traj(resolve(None, **cfg, seed=12)).run()
    assert fresh.compile_s > 0
    np.testing.assert_array_equal(reused.theta, fresh.theta)
    assert not np.array_equal(first.theta, reused.theta)
    # a setting that changes the compiled step is not served from the cache
    other = traj(resolve(None, **dict(cfg, dt=5e-3), seed=12)).run()
    assert other.compile_s > 0


def test_finite_blow_up_is_diverged_at_the_first_step_over_the_bound():
    """Explicit RK4 far beyond its stability limit (heat, dt = 2) grows ‖u‖ by orders of magnitude per
    step while staying finite for a while: diverged at the first step with ‖u‖ > BLOWUP_FACTOR × the
    reference's largest norm, the steps before it kept, no error value."""
    from rsng.core.integrate import BLOWUP_FACTOR

    cfg = resolve(None, **dict(SMALL, dt=2.0, t_end=10.0), s=40, seed=0)
    twin = traj(cfg, chunk=1)
    bound = twin._u_bound
    assert bound == BLOWUP_FACTOR * max(
        np.sqrt((exact_reference(cfg) ** 2).sum(axis=1)).max(), np.linalg.norm(twin._eval(twin.theta))
    )
    twin._u_bound = np.inf  # the same run, unchecked: ‖u‖ after every step
    norms = []
    while not twin.done:
        twin.advance(1)
        norms.append(np.linalg.norm(twin._eval(twin.theta)))
    over = [k for k, nrm in enumerate(norms, start=1) if not nrm <= bound]
    assert over and np.isfinite(norms[over[0] - 1])  # finite when it crosses the bound: only the bound catches it
    res = traj(cfg, chunk=5).run()
    assert res.status == "diverged" and np.isnan(res.rel_l2)
    assert res.diverged_step == over[0] and res.steps == over[0] - 1
    assert np.all(np.isfinite(res.rel_l2_t)) and len(res.rel_l2_t) == res.steps + 1
