"""The Galerkin pieces: the batch Jacobian ``J(θ)`` and the right-hand side ``F(θ)``.

Two ways to the Jacobian: :func:`jacobian` forms the full n × p matrix by vmapped reverse-mode
gradients (the authors' way, the ``reference`` solver); :func:`jacobian_factors` runs one
reverse pass per point for the ≈ (L−2)·m back-propagated vectors and the few hundred non-weight
parameters only, and any column is then a product of two factor columns
(:func:`columns_from_factors`) — the ``fast`` solver gathers just the s sampled columns, and gets
the factors (transposed: :func:`rows_from_factors`) together with F from :func:`stage_quantities`,
the same computation written out as one batched forward/backward pass (the autodiff pieces remain its
check and its fallback).

``J(θ) = [∇_θ u(x_i; θ)]_i`` (n × p) and ``F(θ) = [f(x_i, u(·; θ))]_i`` (n,), with the spatial
derivatives of ``u`` that ``f`` needs taken by forward-mode autodiff of the network in ``x``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

import rsng.core._x64  # noqa: F401  (float64 available)
from rsng.core.network import Network
from rsng.core.problems import Problem

__all__ = [
    "spatial_derivative",
    "fields",
    "rhs",
    "jacobian",
    "jacobian_factors",
    "columns_from_factors",
    "rows_from_factors",
    "stage_quantities",
    "supports_stage_quantities",
]


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
    return rows_from_factors(net, A.T, B.T, idx).T


def rows_from_factors(net: Network, At: jax.Array, Bt: jax.Array, idx: jax.Array | None = None) -> jax.Array:
    """Columns ``idx`` (s,) of J as rows, ``J[:, idx]ᵀ`` (s, n), from the transposed factors of
    :func:`stage_quantities`; all p when ``idx`` is None."""
    ia, ib = net.factor_maps
    if idx is None:
        return At[ia] * Bt[ib]
    return jnp.take(At, jnp.asarray(ia)[idx], axis=0) * jnp.take(Bt, jnp.asarray(ib)[idx], axis=0)


def supports_stage_quantities(problem: Problem) -> bool:
    """Whether :func:`stage_quantities` covers the problem's derivatives: each one along a single
    dimension, of order 1 or 2 (every problem shipped; others use the autodiff pieces)."""
    return all(sum(1 for o in a if o) == 1 and max(a) <= 2 for a in problem.derivatives.values())


def _rational_parts(z, alpha, beta):
    """``R(z) = N/D``, ``R'(z)`` and ``1/D`` with the pieces the second derivative and the gradients
    reuse (one reciprocal, then products, instead of three divisions — part of the layout change,
    not timed on its own)."""
    N = ((alpha[0] * z + alpha[1]) * z + alpha[2]) * z + alpha[3]
    D = (beta[0] * z + beta[1]) * z + beta[2]
    D1 = 2 * beta[0] * z + beta[1]
    rD = 1 / D
    q = N * rD
    q1 = ((3 * alpha[0] * z + 2 * alpha[1]) * z + alpha[2] - q * D1) * rD
    return rD, D1, q, q1


def stage_quantities(
    net: Network, problem: Problem, theta: jax.Array, x: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(Aᵀ, Bᵀ, F)``: the Jacobian factors of :func:`jacobian_factors`, **transposed** ((k, n): one row
    per factor column, so that a sampled column of J is a product of two contiguous rows —
    :func:`rows_from_factors`), and ``F(θ)`` of :func:`rhs`, in one batched pass written out by hand —
    what one stage of the fast solver needs.

    Forward over all n points at once as (m, n) matrices, carrying the spatial Taylor streams the
    problem's derivatives need (``∂_d h`` and ``∂²_d h`` through ``R(z)'' = R''(z) z'² + R'(z) z''``;
    the streams of a dense layer go through one matrix product ``Wᵀ [h | ∂h | ∂²h]``); then the
    reverse pass for ``δ_l = ∂u/∂z_l`` and the non-weight gradients. The embedding uses ``cos(ωx + φ) = cos ωx cos φ −
    sin ωx sin φ`` (trigonometry on n + m values instead of n·m). Points run along the minor axis, so
    every elementwise operation and every sum over units is vectorised over points (the (n, m) layout
    reduced along rows of 25 and gathered strided columns: 0.3 ms more per stage at n = 1000). Same
    quantities as the autodiff pieces to rounding (tests: 1e-13 in float64 for every problem, depth
    2…7). Needs :func:`supports_stage_quantities`.
    """
    P = net.unravel(theta)
    m, d, L, n = net.width, net.dim, net.depth, x.shape[0]
    dtype = theta.dtype
    orders: dict[int, int] = {}  # dimension → highest derivative order along it
    for alpha in problem.derivatives.values():
        e = next(i for i, o in enumerate(alpha) if o)
        orders[e] = max(orders.get(e, 0), alpha[e])
    omega = jnp.asarray([2 * jnp.pi / length for length in net.lengths], dtype)
    xw = (x * omega).T  # (d, n)
    cx, sx = jnp.cos(xw)[:, None, :], jnp.sin(xw)[:, None, :]  # (d, 1, n)
    phi = P["embed/phi"].T  # (d, m)
    cp, sp = jnp.cos(phi)[:, :, None], jnp.sin(phi)[:, :, None]  # (d, m, 1)
    cos_arg, sin_arg = cx * cp - sx * sp, sx * cp + cx * sp  # cos, sin of ω x + φ: (d, m, n)
    a = P["embed/a"].T[:, :, None]  # (d, m, 1)
    z = jnp.sum(a * cos_arg + P["embed/c"].T[:, :, None], axis=0)  # (m, n)
    dz = {}  # (dimension, order) → derivative of the pre-activation
    for e, k in orders.items():
        dz[(e, 1)] = -(a[e] * omega[e]) * sin_arg[e]
        if k >= 2:
            dz[(e, 2)] = -(a[e] * omega[e] ** 2) * cos_arg[e]
    streams = list(dz)
    saved, hidden = [], []
    h: jax.Array = z  # the layer input and its streams, set by the embedding's activation (l = 0)
    dh: dict = {}
    for l in range(L - 1):
        if l > 0:
            W = P[f"dense{l}/w"]  # (m_in, m_out)
            Z = W.T @ jnp.concatenate([h] + [dh[key] for key in streams], axis=1) if streams else W.T @ h
            z = Z[:, :n] + P[f"dense{l}/b"][:, None]
            dz = {key: Z[:, (i + 1) * n : (i + 2) * n] for i, key in enumerate(streams)}
        alpha, beta = P[f"act{l}/alpha"], P[f"act{l}/beta"]
        rD, D1, q, q1 = _rational_parts(z, alpha, beta)
        dh = {}
        for (e, k), dzk in dz.items():
            if k == 1:
                dh[(e, k)] = q1 * dzk
            else:
                q2 = (6 * alpha[0] * z + 2 * alpha[1] - 2 * q1 * D1 - q * (2 * beta[0])) * rD
                dh[(e, k)] = q2 * dz[(e, 1)] ** 2 + q1 * dzk
        saved.append((z, rD, q, q1))
        h = q
        hidden.append(h)
    w_out = P["out/w"]
    fields = {"u": w_out @ h + P["out/b"][0]}
    for name, alpha in problem.derivatives.items():
        e = next(i for i, o in enumerate(alpha) if o)
        fields[name] = w_out @ dh[(e, alpha[e])]
    F = problem.rhs(x, fields)

    grads = {"out/w": hidden[-1], "out/b": jnp.ones((1, n), dtype)}
    g = jnp.broadcast_to(w_out[:, None], (m, n))  # ∂u/∂h_l
    deltas = [None] * (L - 1)
    for l in range(L - 2, -1, -1):
        z, rD, q, q1 = saved[l]
        gD = g * rD  # ∂R/∂α_k = z^(3−k)/D, ∂R/∂β_k = −q z^(2−k)/D
        gqD = -gD * q
        z2 = z * z
        # seven sums over the units, each along the major axis (stacking them first makes XLA reduce
        # along a middle axis: 3× slower)
        grads[f"act{l}/alpha"] = jnp.stack([jnp.sum(t, 0) for t in (gD * z2 * z, gD * z2, gD * z, gD)])
        grads[f"act{l}/beta"] = jnp.stack([jnp.sum(t, 0) for t in (gqD * z2, gqD * z, gqD)])
        deltas[l] = g * q1
        if l > 0:
            grads[f"dense{l}/b"] = deltas[l]
            g = P[f"dense{l}/w"] @ deltas[l]
    d0 = deltas[0][None]  # ∂u/∂(embedding pre-activation), (1, m, n)
    unit_major = lambda t: jnp.swapaxes(t, 0, 1).reshape(m * d, n)  # rows in θ's (m, d) order
    grads["embed/a"] = unit_major(d0 * cos_arg)
    grads["embed/phi"] = unit_major(-(d0 * a) * sin_arg)
    grads["embed/c"] = unit_major(jnp.broadcast_to(d0, (d, m, n)))
    At = jnp.concatenate(hidden[: L - 2] + [grads[k] for k, _ in net.layout if not net.is_dense_weight(k)], axis=0)
    Bt = jnp.concatenate(deltas[1 : L - 1] + [jnp.ones((1, n), dtype)], axis=0)
    return At, Bt, F
