"""The Galerkin pieces: the batch Jacobian ``J(θ)`` and the right-hand side ``F(θ)``.

Two ways to the Jacobian: :func:`jacobian` forms the full n × p matrix by vmapped reverse-mode
gradients (the authors' way, the ``reference`` solver); :func:`jacobian_factors` runs one
reverse pass per point for the ≈ (L−2)·m back-propagated vectors and the few hundred non-weight
parameters only, and any column is then a product of two factor columns
(:func:`columns_from_factors`) — the ``fast`` solver gathers just the s sampled columns.

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

__all__ = ["spatial_derivative", "fields", "rhs", "jacobian", "jacobian_factors", "columns_from_factors"]


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


def jacobian_factors(net: Network, theta: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Factors ``(A, B)`` of the batch Jacobian: ``J[:, k] = A[:, ia[k]] · B[:, ib[k]]`` with
    ``(ia, ib) = net.factor_maps``.

    One vmapped reverse pass with respect to the non-weight blocks and to zero "taps" on each dense
    pre-activation (giving ``δ_l = ∂u/∂z_l``); the inputs ``h_{l-1}`` of the dense layers come out of
    the forward pass. A is (n, (L−2)m + #non-weight params), B is (n, (L−2)m + 1); for depth 7, m = 25
    that is 393 + 126 columns instead of p = 3393.
    """
    P = net.unravel(theta)
    small = {k: v for k, v in P.items() if not net.is_dense_weight(k)}
    big = {k: v for k, v in P.items() if net.is_dense_weight(k)}
    taps0 = [jnp.zeros((net.width,), theta.dtype) for _ in range(net.depth - 2)]

    def point(xi):
        f = lambda sm, taps: net.forward({**sm, **big}, xi, taps)
        u, vjp, inputs = jax.vjp(f, small, taps0, has_aux=True)
        g_small, g_taps = vjp(jnp.ones_like(u))
        a = jnp.concatenate(inputs + [g_small[k].ravel() for k in P if k in small])
        b = jnp.concatenate(g_taps + [jnp.ones((1,), theta.dtype)])
        return a, b

    return jax.vmap(point)(x)


def columns_from_factors(net: Network, A: jax.Array, B: jax.Array, idx: jax.Array | None = None) -> jax.Array:
    """Columns ``idx`` (s,) of J from its factors — (n, s); all p columns when ``idx`` is None."""
    ia, ib = net.factor_maps
    if idx is None:
        return A[:, ia] * B[:, ib]
    return jnp.take(A, jnp.asarray(ia)[idx], axis=1) * jnp.take(B, jnp.asarray(ib)[idx], axis=1)
