"""The Galerkin pieces: the batch Jacobian ``J(θ)`` and the right-hand side ``F(θ)``.

``J(θ) = [∇_θ u(x_i; θ)]_i`` (n × p) and ``F(θ) = [f(x_i, u(·; θ))]_i`` (n,), with the spatial
derivatives of ``u`` that ``f`` needs taken by forward-mode autodiff of the network in ``x``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax

import rsng.core._x64  # noqa: F401  (float64 available)
import jax.numpy as jnp

from rsng.core.network import Network
from rsng.core.problems import Problem

__all__ = ["spatial_derivative", "fields", "rhs", "jacobian"]


def spatial_derivative(fn: Callable[[jax.Array], jax.Array], alpha: tuple[int, ...]) -> Callable:
    """``∂^α fn`` for scalar ``fn(x (d,))`` by nested JVPs along the unit directions."""
    for d, order in enumerate(alpha):
        for _ in range(order):
            fn = _directional(fn, d)
    return fn


def _directional(fn: Callable, d: int) -> Callable:
    def dfn(x):
        e = jnp.zeros_like(x).at[d].set(1)
        return jax.jvp(fn, (x,), (e,))[1]

    return dfn


def fields(net: Network, problem: Problem, theta: jax.Array, x: jax.Array) -> dict[str, jax.Array]:
    """``{"u": (n,), name: (n,) …}`` for every derivative the problem's rhs names; x is (n, d)."""

    def point(xi):
        u = lambda y: net.apply(theta, y)
        out = {"u": u(xi)}
        for name, alpha in problem.derivatives.items():
            out[name] = spatial_derivative(u, alpha)(xi)
        return out

    return jax.vmap(point)(x)


def rhs(net: Network, problem: Problem, theta: jax.Array, x: jax.Array) -> jax.Array:
    """``F(θ)`` (n,)."""
    return problem.rhs(x, fields(net, problem, theta, x))


def jacobian(net: Network, theta: jax.Array, x: jax.Array) -> jax.Array:
    """Full batch Jacobian ``J(θ)`` (n, p): vmap of reverse-mode gradients over the points."""
    return jax.vmap(jax.grad(net.apply), (None, 0))(theta, x)
