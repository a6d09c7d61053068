"""One RSNG time step: a sketch drawn once, then an explicit Runge–Kutta step on the sketched
Galerkin velocity ``θ' = Σ argmin_v ‖J(θ) Σ v − F(θ)‖`` (docs/method.md, "The time step").

One engine (:func:`make_step`) combines three independent parts:

- a Runge–Kutta method, as data (:class:`Tableau`);
- a sketch family (:mod:`rsng.core.samplers`), drawn once per step;
- a Galerkin strategy — how ``J(θ)`` (or the part of it the sketch needs) and ``F(θ)`` are formed:
  :class:`FactorGalerkin` (``fast``, default) or :class:`FullJacobianGalerkin` (``full-jacobian``).

The sketch of step k is a pure function of ``(seed key, k)`` — ``fold_in(key, k)`` — so a run resumed
at step k draws exactly the index sets an uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

import rsng.core._x64  # noqa: F401  (float64 available)
from rsng.core import galerkin, registry
from rsng.core.config import RunConfig
from rsng.core.lstsq import Conditioning, lstsq
from rsng.core.network import Network
from rsng.core.problems import Problem
from rsng.core.samplers import get_sampler

__all__ = ["Tableau", "RK4", "EULER", "TABLEAUS", "make_step", "StepOut", "FactorGalerkin", "FullJacobianGalerkin"]


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
    conditioning: Conditioning  # of the first stage's sketched Jacobian J_s: rank kept, σ_max, smallest kept σ


# -- Galerkin strategies ---------------------------------------------------------------------------------
class FactorGalerkin:
    """Only the sketch's Jacobian columns are formed, as products of per-layer factor columns
    (≈ 500 instead of p = 3393 gradient entries per point), which come with F from one hand-written
    batched forward/backward pass (:func:`galerkin.stage_quantities`; the vmapped autodiff pieces for
    problems it does not cover). The stages stay in the s-dimensional sketch coordinates: θ moves only
    along the sketch. The full Jacobian is formed (from the factors) only where the sketch needs it."""

    lifted = False  # stage velocities stay in sketch coordinates

    def __init__(self, net: Network, problem: Problem, x: jax.Array):
        self.net = net
        if galerkin.supports_stage_quantities(problem):  # one hand-written batched pass
            self.quantities = lambda th: galerkin.stage_quantities(net, problem, th, x)
        else:  # autodiff pieces, transposed like stage_quantities' factors
            self.quantities = lambda th: (
                *(f.T for f in galerkin.jacobian_factors(net, th, x)),
                galerkin.rhs(net, problem, th, x),
            )

    def rhs(self, q):
        return q[2]

    def jacobian(self, q):
        return galerkin.rows_from_factors(self.net, q[0], q[1]).T

    def columns(self, q, idx):
        return galerkin.rows_from_factors(self.net, q[0], q[1], idx).T

    def all_columns(self, q, idx):
        return self.jacobian(q)

    def times(self, q, S):
        return (S.T @ galerkin.rows_from_factors(self.net, q[0], q[1])).T


class FullJacobianGalerkin:
    """The plain formulation: the full n × p Jacobian at every stage (vmapped reverse-mode gradients),
    restricted to the sketch; each stage's velocity lifted to R^p before the Runge–Kutta update.
    The same method and index sets as :class:`FactorGalerkin`; θ agrees to rounding."""

    lifted = True  # stage velocities lifted to R^p

    def __init__(self, net: Network, problem: Problem, x: jax.Array):
        self.quantities = lambda th: (galerkin.jacobian(net, th, x), galerkin.rhs(net, problem, th, x))

    def rhs(self, q):
        return q[1]

    def jacobian(self, q):
        return q[0]

    def columns(self, q, idx):
        return q[0][:, idx]

    def all_columns(self, q, idx):
        # the gather ``J[:, arange(p)]`` copies, but XLA fuses the step differently without it:
        # kept so that this strategy's rounding stays as stored in tests/core/golden/
        return self.columns(q, idx)

    def times(self, q, S):
        return q[0] @ S


# -- the engine ---------------------------------------------------------------------------------------------
def make_step(net: Network, problem: Problem, cfg: RunConfig, x: jax.Array) -> Callable[..., StepOut]:
    """``step(theta (p,), k (), key (PRNG key)) -> StepOut`` for this configuration.

    ``x`` (n, d) are the collocation points in the run's dtype. Everything configuration-dependent
    (shapes, sampler, tableau, strategy) is static; θ, k and the key are traced, so one compilation
    serves every seed and every step.
    """
    tableau = TABLEAUS[cfg.integrator]
    G = registry.galerkin_class(cfg.solver)(net, problem, x)
    sampler = get_sampler(cfg.sampler)
    p, s = net.num_params, cfg.s
    dt = jnp.asarray(cfg.dt, x.dtype)

    def solve(J_s, F):
        v, cond = lstsq(J_s, F, cfg.rcond, cfg.lstsq, diagnostics=True)
        res = jnp.linalg.norm(J_s @ v - F) / jnp.maximum(jnp.linalg.norm(F), jnp.finfo(F.dtype).tiny)
        return v, res, cond

    def step(theta: jax.Array, k: jax.Array, key: jax.Array) -> StepOut:
        q1 = G.quantities(theta)
        sk = sampler.draw(jax.random.fold_in(key, k), s, p, lambda: G.jacobian(q1), cfg.rcond, theta.dtype)
        if G.lifted:  # velocities in R^p
            velocity: Callable[[Any], Any] = lambda v: sk.lift(v, theta)
            move = lambda th, d: th + d
        else:  # velocities in sketch coordinates
            velocity = lambda v: v
            move = sk.move

        vs, res0, cond0 = [], None, None
        for i, a_i in enumerate(tableau.a):
            if i == 0:
                q = q1
            else:
                terms = [(dt * a_ij) * v_j for a_ij, v_j in zip(a_i, vs) if a_ij != 0.0]
                q = G.quantities(move(theta, sum(terms)) if terms else theta)
            v, res, cond = solve(sk.restrict(G, q), G.rhs(q))
            if res0 is None:
                res0, cond0 = res, cond
            vs.append(velocity(v))
        incr = sum(b_i * v_i for b_i, v_i in zip(tableau.b, vs) if b_i != 0.0)
        return StepOut(move(theta, dt * incr), sk.idx, res0, cond0)

    return step
