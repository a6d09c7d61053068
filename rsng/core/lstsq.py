"""Least squares with an ``rcond`` cut-off — the method's only regularisation.

``v = argmin ‖A v − b‖`` restricted to the singular directions with ``σ_i > rcond · σ_max``
(the pseudo-inverse of the truncated SVD), exactly what ``numpy.linalg.lstsq(A, b, rcond)`` does.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["lstsq"]


def lstsq(A: jax.Array, b: jax.Array, rcond: float, method: str = "svd") -> jax.Array:
    """Solve ``min ‖A v − b‖`` for A (n, s), b (n,) → v (s,).

    ``svd``: thin SVD of A in its own dtype. ``gram``: eigen-decomposition of ``AᵀA`` in float64,
    keeping eigenvalues ``λ_i > rcond² · λ_max`` (σ = √λ, the same cut-off); cheaper for n ≫ s,
    and float64 because ``rcond² = 1e-8`` is below float32 resolution.
    """
    if method == "svd":
        U, S, Vt = jnp.linalg.svd(A, full_matrices=False)
        keep = S > rcond * S[0]
        coef = jnp.where(keep, (U.T @ b) / jnp.where(keep, S, 1), 0)
        return Vt.T @ coef
    if method == "gram":
        A64, b64 = A.astype(jnp.float64), b.astype(jnp.float64)
        lam, V = jnp.linalg.eigh(A64.T @ A64)
        keep = lam > (rcond**2) * lam[-1]
        coef = jnp.where(keep, (V.T @ (A64.T @ b64)) / jnp.where(keep, lam, 1), 0)
        return (V @ coef).astype(A.dtype)
    raise ValueError(f"lstsq method: unknown value {method!r}; accepted: svd, gram")
