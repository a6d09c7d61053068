"""The baseline (the authors' approach), written here as a baseline (docs/method.md, "Galerkin strategies"): per RK4 stage, form the full
n × p Jacobian by vmapped reverse-mode gradients, slice the s sampled columns, solve by the SVD-based
``jnp.linalg.lstsq`` with rcond, lift the velocity to R^p.

It is deliberately independent of ``rsng.core.stepping`` (only the network and the right-hand side
are shared), so that ``benchmarks/phases.py`` can time it side by side with the rsng solver on the
same inputs and check that both give the same velocity θ'.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rsng.core import galerkin
from rsng.core.samplers import sample_columns

RK4_A = ((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0))
RK4_B = (1 / 6, 1 / 3, 1 / 3, 1 / 6)


def velocity(net, problem, x, rcond):
    """``(θ, idx) -> θ'`` (p,): full Jacobian (materialised: an optimisation barrier keeps XLA from
    computing only the sliced columns, as the public code's separate Jacobian call does), column
    slice, SVD least squares, lift."""

    def f(theta, idx):
        J = jax.lax.optimization_barrier(jax.vmap(jax.grad(net.apply), (None, 0))(theta, x))
        F = galerkin.rhs(net, problem, theta, x)
        v = jnp.linalg.lstsq(J[:, idx], F, rcond=rcond)[0]
        return jnp.zeros_like(theta).at[idx].set(v)

    return f


def make_step(net, problem, x, dt, s, rcond):
    """``(θ, k, key) -> θ_{k+1}``: one RK4 step with one uniform index set drawn from fold_in(key, k)."""
    vel = velocity(net, problem, x, rcond)
    p = net.num_params

    def step(theta, k, key):
        idx = sample_columns("uniform", jax.random.fold_in(key, k), s, p)
        ks = []
        for a_i in RK4_A:
            th = theta
            for a_ij, k_j in zip(a_i, ks):
                if a_ij:
                    th = th + (dt * a_ij) * k_j
            ks.append(vel(th, idx))
        return theta + dt * sum(b * k_i for b, k_i in zip(RK4_B, ks))

    return step
