"""One RSNG time step: a sketch drawn once, then an explicit Runge–Kutta step on the sketched
Galerkin velocity ``θ' = lift(argmin_v ‖J(θ) Σ v − F(θ)‖)``.

Runge–Kutta methods are data (:class:`Tableau`) driven by one engine. The sketch of step k is a pure
function of ``(seed key, k)`` — ``fold_in(key, k)`` — so a run resumed at step k draws exactly the
index sets an uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax

import rsng.core._x64  # noqa: F401  (float64 available)
import jax.numpy as jnp

from rsng.core import galerkin
from rsng.core.config import RunConfig
from rsng.core.lstsq import lstsq
from rsng.core.network import Network
from rsng.core.problems import Problem
from rsng.core.samplers import gaussian_sketch, needs_jacobian, sample_columns

__all__ = ["Tableau", "RK4", "EULER", "TABLEAUS", "make_step", "StepOut"]


class Tableau(NamedTuple):
    """Butcher tableau of an explicit method: stage i uses ``θ + δt Σ_j a[i][j] k_j`` at ``t + c_i δt``."""

    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    c: tuple[float, ...]


RK4 = Tableau(a=((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)), b=(1 / 6, 1 / 3, 1 / 3, 1 / 6), c=(0.0, 0.5, 0.5, 1.0))
EULER = Tableau(a=((),), b=(1.0,), c=(0.0,))
TABLEAUS = {"rk4": RK4, "euler": EULER}


class StepOut(NamedTuple):
    theta: jax.Array  # (p,) θ_{k+1}
    idx: jax.Array  # (s,) int32 columns of step k (arange(s) for gaussian)
    ls_residual: jax.Array  # () relative residual ‖J_s v − F‖/‖F‖ of the first stage


def make_step(net: Network, problem: Problem, cfg: RunConfig, x: jax.Array) -> Callable[..., StepOut]:
    """``step(theta (p,), k (), key (PRNG key)) -> StepOut`` for this configuration.

    ``x`` (n, d) are the collocation points in the run's dtype. Everything configuration-dependent
    (shapes, sampler, tableau) is static; θ, k and the key are traced, so one compilation serves
    every seed and every step. ``cfg.solver`` picks :func:`_fast_step` (default) or
    :func:`_reference_step` (the authors' way, kept for checking).
    """
    if cfg.solver == "reference":
        return _reference_step(net, problem, cfg, x)
    if cfg.solver == "fast":
        return _fast_step(net, problem, cfg, x)
    raise ValueError(f"solver: unknown value {cfg.solver!r}; accepted: fast, reference")


def _solver(cfg: RunConfig):
    def solve(J_s, F):
        v = lstsq(J_s, F, cfg.rcond, cfg.lstsq)
        res = jnp.linalg.norm(J_s @ v - F) / jnp.maximum(jnp.linalg.norm(F), jnp.finfo(F.dtype).tiny)
        return v, res

    return solve


def _reference_step(net: Network, problem: Problem, cfg: RunConfig, x: jax.Array) -> Callable[..., StepOut]:
    """The plain formulation: the full n × p Jacobian at every stage (vmapped reverse-mode
    gradients), sliced to the sketch; each stage's velocity lifted to R^p before the RK update."""
    tableau = TABLEAUS[cfg.integrator]
    p, s = net.num_params, cfg.s
    dt = jnp.asarray(cfg.dt, x.dtype)

    J_fn = lambda th: galerkin.jacobian(net, th, x)
    F_fn = lambda th: galerkin.rhs(net, problem, th, x)
    solve = _solver(cfg)

    def step(theta: jax.Array, k: jax.Array, key: jax.Array) -> StepOut:
        key_k = jax.random.fold_in(key, k)
        J1 = J_fn(theta)
        if cfg.sampler == "gaussian":
            S = gaussian_sketch(key_k, p, s, theta.dtype)
            idx = jnp.arange(s, dtype=jnp.int32)
            sketch = lambda J: J @ S
            lift = lambda v: S @ v
        else:
            idx = sample_columns(cfg.sampler, key_k, s, p, J1 if needs_jacobian(cfg.sampler) else None, cfg.rcond)
            sketch = lambda J: J[:, idx]
            lift = lambda v: jnp.zeros_like(theta).at[idx].set(v)

        ks, res0 = [], None
        for i, (a_i, c_i) in enumerate(zip(tableau.a, tableau.c)):
            th_i = theta
            for a_ij, k_j in zip(a_i, ks):
                if a_ij != 0.0:
                    th_i = th_i + (dt * a_ij) * k_j
            J = J1 if i == 0 else J_fn(th_i)
            v, res = solve(sketch(J), F_fn(th_i))
            res0 = res if res0 is None else res0
            ks.append(lift(v))
        incr = sum(b_i * k_i for b_i, k_i in zip(tableau.b, ks) if b_i != 0.0)
        return StepOut(theta + dt * incr, idx, res0)

    return step


def _fast_step(net: Network, problem: Problem, cfg: RunConfig, x: jax.Array) -> Callable[..., StepOut]:
    """Same method, computed where it is cheap: only the s sampled Jacobian columns are formed, as
    products of the factor columns (≈ 500 instead of p = 3393 gradient entries per point), which
    come with F from one hand-written batched forward/backward pass
    (:func:`galerkin.stage_quantities`; the vmapped autodiff pieces for problems it does not cover),
    and the stages stay in the
    s-dimensional sketch coordinates — θ moves only at the sampled indices (or along ``S v`` for
    ``gaussian``). The full Jacobian is formed (from the factors) only where the sampler's
    distribution needs it. Same index sets as :func:`_reference_step`; θ agrees to rounding."""
    tableau = TABLEAUS[cfg.integrator]
    p, s = net.num_params, cfg.s
    dt = jnp.asarray(cfg.dt, x.dtype)
    if galerkin.supports_stage_quantities(problem):  # one hand-written batched pass
        stage = lambda th: galerkin.stage_quantities(net, problem, th, x)
    else:  # autodiff pieces, transposed like stage_quantities' factors
        stage = lambda th: (*(f.T for f in galerkin.jacobian_factors(net, th, x)), galerkin.rhs(net, problem, th, x))
    solve = _solver(cfg)
    dense = cfg.sampler == "dense" or s == p

    def step(theta: jax.Array, k: jax.Array, key: jax.Array) -> StepOut:
        key_k = jax.random.fold_in(key, k)
        A1, B1, F1 = stage(theta)  # factors as rows: J[:, idx]ᵀ = rows_from_factors(…, idx)
        if cfg.sampler == "gaussian":
            S = gaussian_sketch(key_k, p, s, theta.dtype)
            idx = jnp.arange(s, dtype=jnp.int32)
            sketch = lambda A, B: (S.T @ galerkin.rows_from_factors(net, A, B)).T
            move = lambda th, d: th + S @ d
        elif dense:
            idx = jnp.arange(p, dtype=jnp.int32)
            sketch = lambda A, B: galerkin.rows_from_factors(net, A, B).T
            move = lambda th, d: th + d
        else:
            J1 = galerkin.rows_from_factors(net, A1, B1).T if needs_jacobian(cfg.sampler) else None
            idx = sample_columns(cfg.sampler, key_k, s, p, J1, cfg.rcond)
            sketch = lambda A, B: galerkin.rows_from_factors(net, A, B, idx).T
            move = lambda th, d: th.at[idx].add(d)

        vs, res0 = [], None
        for i, a_i in enumerate(tableau.a):
            if i == 0:
                A, B, F = A1, B1, F1
            else:
                terms = [(dt * a_ij) * v_j for a_ij, v_j in zip(a_i, vs) if a_ij != 0.0]
                A, B, F = stage(move(theta, sum(terms)) if terms else theta)
            v, res = solve(sketch(A, B), F)
            res0 = res if res0 is None else res0
            vs.append(v)
        incr = sum(b_i * v_i for b_i, v_i in zip(tableau.b, vs) if b_i != 0.0)
        return StepOut(move(theta, dt * incr), idx, res0)

    return step
