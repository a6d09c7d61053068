"""Least squares with an ``rcond`` cut-off — the method's only regularisation.

``v = argmin ‖A v − b‖`` restricted to the singular directions with ``σ_i > rcond · σ_max``
(the pseudo-inverse of the truncated SVD), exactly what ``numpy.linalg.lstsq(A, b, rcond)`` does.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

import rsng.core._x64  # noqa: F401  (float64 available)

__all__ = ["lstsq", "Conditioning"]


class Conditioning(NamedTuple):
    """What the cut-off saw, from the decomposition the solve computed anyway (float64 scalars)."""

    rank: jax.Array  # singular values kept (σ_i > rcond·σ_max)
    sigma_max: jax.Array  # σ_max of A
    sigma_min_kept: jax.Array  # the smallest kept σ


def lstsq(A: jax.Array, b: jax.Array, rcond: float, method: str = "qr", *, diagnostics: bool = False):
    """Solve ``min ‖A v − b‖`` for A (n, s), b (n,) → v (s,); with ``diagnostics=True``
    ``(v, Conditioning)``, read off the same decomposition (the solution is unchanged).

    ``gram`` (the default for float32 runs): eigen-decomposition of ``AᵀA`` in float64, keeping
    eigenvalues ``λ_i > rcond² · λ_max`` (σ = √λ, the same cut-off). Float64 because ``rcond² = 1e-10``
    is far below float32 resolution; the products of float32 entries are exact in float64, so the
    kept eigenvalues carry relative errors ≈ 1e-16·κ² ≤ 1e-6 — no worse than the float32 QR below.
    Measured (benchmarks/README.md): 16–18 ms per fast allen_cahn step against 20 ms with ``qr``,
    the same errors. A wide A (s > n, e.g. dense at n = 1000) is solved by the SVD of A instead (the
    s × s Gram would be larger than A: 474 ms against 216 ms at n = 1000, s = 1600). ``qr`` (the default for float64 runs, where squaring κ would cost accuracy):
    ``[A | b] = Q [R | c]`` (R factor only), then the SVD of the s × s R — the singular values of R
    are those of A, so the cut-off is the same, at a third of the cost of ``svd``: the thin SVD of
    A in its own dtype (what the authors' code does).
    """
    out = _solve(A, b, rcond, method)
    return out if diagnostics else out[0]


def _solve(A: jax.Array, b: jax.Array, rcond: float, method: str) -> tuple[jax.Array, Conditioning]:
    if method == "svd":
        return _truncated_solve(A, b, rcond)
    if method == "qr":
        s = A.shape[1]
        if A.shape[0] < s + 1:  # wide or square: no room for the augmented column, plain SVD
            return _truncated_solve(A, b, rcond)
        Rc = jnp.linalg.qr(jnp.concatenate([A, b[:, None]], axis=1), mode="r")
        return _truncated_solve(Rc[:s, :s], Rc[:s, s], rcond)
    if method == "gram":
        if A.shape[0] < A.shape[1]:  # wide (s > n): the s × s Gram is larger than A itself, SVD of A
            return _truncated_solve(A, b, rcond)
        A64, b64 = A.astype(jnp.float64), b.astype(jnp.float64)
        lam, V = jnp.linalg.eigh(A64.T @ A64)
        keep = lam > (rcond**2) * lam[-1]
        coef = jnp.where(keep, (V.T @ (A64.T @ b64)) / jnp.where(keep, lam, 1), 0)
        sigma = jnp.sqrt(jnp.maximum(lam, 0))
        return (V @ coef).astype(A.dtype), _conditioning(keep, sigma[-1], sigma)
    raise ValueError(f"lstsq method: unknown value {method!r}; accepted: qr, svd, gram")


def _conditioning(keep: jax.Array, sigma_max: jax.Array, sigma: jax.Array) -> Conditioning:
    f64 = jnp.float64
    return Conditioning(
        jnp.sum(keep).astype(f64),
        sigma_max.astype(f64),
        jnp.min(jnp.where(keep, sigma, jnp.inf)).astype(f64),
    )


def _truncated_solve(A: jax.Array, b: jax.Array, rcond: float) -> tuple[jax.Array, Conditioning]:
    """Pseudo-inverse solution through the thin SVD of A, σ_i ≤ rcond·σ_max dropped."""
    U, S, Vt = jnp.linalg.svd(A, full_matrices=False)
    keep = S > rcond * S[0]
    return Vt.T @ jnp.where(keep, (U.T @ b) / jnp.where(keep, S, 1), 0), _conditioning(keep, S[0], S)
