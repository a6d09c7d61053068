"""Sketches: which directions of parameter space a time step may move in (docs/method.md, "The sketch").

A sketch is drawn once per time step (from ``J(θ_k)`` where its distribution depends on it) and
shared by all stages of the step. Each sampler is one small class registered under its name in
:mod:`rsng.core.registry`; :meth:`Sampler.draw` returns a :class:`Drawn` sketch that knows how to
restrict the Jacobian to the sketch, how to move θ along the sketch and how to lift a sketch-space
velocity to R^p.

Column samplers (subclasses of :class:`ColumnSampler`) pick ``idx`` (s,) distinct indices of θ:

- ``uniform``: uniform without replacement (the paper);
- ``column_norm``: without replacement, probability ∝ ‖J[:, j]‖²;
  (both drawn as the s largest of p random keys — uniform keys, or Gumbel keys plus log-probabilities
  for the weighted ones — by ``lax.top_k``: the same distributions as ``jax.random.choice(replace=False)``
  at a fraction of its cost, which sorts all p keys: 0.2 ms instead of 1.4 ms for uniform at p = 3393);
- ``leverage``: without replacement, probability ∝ the column leverage scores of J truncated at
  rcond, ``ℓ_j = Σ_{i: σ_i > rcond σ_max} V[j, i]²``;
- ``pivoted_qr``: the first s column pivots of a rank-revealing QR of J (deterministic);
- ``dense``: all columns, in order (as is any column sampler asked for s = p).

``gaussian`` is not a column sampler: it draws ``S ∈ R^{p×s}`` with i.i.d. N(0, 1/s) entries and the
step moves along ``θ' = S v``.

Adding a sampler: a subclass of :class:`ColumnSampler` (implement :meth:`ColumnSampler.indices`) or of
:class:`Sampler` with a class attribute ``name = "..."`` (a string literal). A class declared in this
module is a built-in (:mod:`rsng.core.registry` finds it by its ``name`` without importing JAX); one
defined elsewhere is added with ``registry.register_sampler(name, cls)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

import rsng.core._x64  # noqa: F401  (float64 available)
from rsng.core import registry

__all__ = [
    "Sampler",
    "ColumnSampler",
    "Drawn",
    "Columns",
    "AllColumns",
    "GaussianDirections",
    "Uniform",
    "ColumnNorm",
    "Leverage",
    "PivotedQR",
    "Dense",
    "Gaussian",
    "get_sampler",
    "sample_columns",
    "probabilities",
    "gaussian_sketch",
    "needs_jacobian",
]


# -- drawn sketches ----------------------------------------------------------------------------------------
class Drawn:
    """One step's sketch. ``idx`` (s,) int32: the sampled columns (``arange`` for non-column sketches).

    A Galerkin strategy ``G`` (:mod:`rsng.core.stepping`) provides ``G.columns(q, idx)``,
    ``G.all_columns(q, idx)`` and ``G.times(q, S)`` for its stage quantities ``q``; the sketch picks which.
    """

    idx: jax.Array

    def restrict(self, G: Any, q: Any) -> jax.Array:
        """The sketched Jacobian ``J Σ`` (n, s) at stage quantities ``q``."""
        raise NotImplementedError

    def move(self, theta: jax.Array, d: jax.Array) -> jax.Array:
        """``θ + Σ d`` for a sketch-space increment ``d`` (s,)."""
        raise NotImplementedError

    def lift(self, v: jax.Array, theta: jax.Array) -> jax.Array:
        """``Σ v`` in R^p (shape and dtype of ``theta``)."""
        raise NotImplementedError


class Columns(Drawn):
    """The columns ``idx`` of θ."""

    def __init__(self, idx: jax.Array):
        self.idx = idx

    def restrict(self, G, q):
        return G.columns(q, self.idx)

    def move(self, theta, d):
        return theta.at[self.idx].add(d)

    def lift(self, v, theta):
        return jnp.zeros_like(theta).at[self.idx].set(v)


class AllColumns(Columns):
    """Every column in order: dense Neural Galerkin."""

    def __init__(self, p: int):
        self.idx = jnp.arange(p, dtype=jnp.int32)

    def restrict(self, G, q):
        return G.all_columns(q, self.idx)

    def move(self, theta, d):
        return theta + d


class GaussianDirections(Drawn):
    """Directions ``S`` (p, s): the step moves along ``S v``."""

    def __init__(self, S: jax.Array):
        self.S = S
        self.idx = jnp.arange(S.shape[1], dtype=jnp.int32)

    def restrict(self, G, q):
        return G.times(q, self.S)

    def move(self, theta, d):
        return theta + self.S @ d

    def lift(self, v, theta):
        return self.S @ v


# -- samplers ----------------------------------------------------------------------------------------------
class Sampler:
    """A family of sketches. ``needs_jacobian``: whether the distribution depends on ``J(θ_k)``."""

    name: ClassVar[str] = ""
    needs_jacobian: ClassVar[bool] = False

    def draw(
        self, key: jax.Array, s: int, p: int, jacobian: Callable[[], jax.Array], rcond: float, dtype: Any
    ) -> Drawn:
        """This step's sketch; ``jacobian()`` gives ``J(θ_k)`` (n, p) and is called only if needed."""
        raise NotImplementedError


class ColumnSampler(Sampler):
    """Samplers of s distinct columns; s = p is dense Neural Galerkin (all columns, in order)."""

    def indices(self, key: jax.Array, s: int, p: int, J: jax.Array | None, rcond: float) -> jax.Array:
        """Distinct column indices (s,) int32, for s < p."""
        raise NotImplementedError

    def draw(self, key, s, p, jacobian, rcond, dtype):
        if s == p:
            return AllColumns(p)
        return Columns(self.indices(key, s, p, jacobian() if self.needs_jacobian else None, rcond))


class Uniform(ColumnSampler):
    name = "uniform"

    def indices(self, key, s, p, J, rcond):
        # float32 keys (0.2 ms; float64 keys cost 0.8 ms): a tie at the s-th key (chance ≈ p·2⁻²³ per
        # step) is broken by index instead of at random — a bias far below anything measurable
        return jax.lax.top_k(jax.random.uniform(key, (p,), jnp.float32), s)[1].astype(jnp.int32)


class _Weighted(ColumnSampler):
    needs_jacobian = True

    def probabilities(self, J: jax.Array, rcond: float) -> jax.Array:
        """Sampling probabilities (p,) summing to 1."""
        w = self.weights(J, rcond)
        return w / jnp.sum(w)

    def weights(self, J: jax.Array, rcond: float) -> jax.Array:
        raise NotImplementedError

    def indices(self, key, s, p, J, rcond):
        prob = self.probabilities(J, rcond).astype(jnp.float64)
        # Gumbel-top-k: the s largest log p_j + G_j are a draw without replacement ∝ p (zero p: never)
        keys = jnp.where(prob > 0, jnp.log(prob) + jax.random.gumbel(key, (p,), jnp.float64), -jnp.inf)
        return jax.lax.top_k(keys, s)[1].astype(jnp.int32)


class ColumnNorm(_Weighted):
    name = "column_norm"

    def weights(self, J, rcond):
        return jnp.sum(J * J, axis=0)


class Leverage(_Weighted):
    name = "leverage"

    def weights(self, J, rcond):
        _, S, Vt = jnp.linalg.svd(J, full_matrices=False)
        keep = S > rcond * S[0]
        return jnp.sum(jnp.where(keep[:, None], Vt * Vt, 0), axis=0)


class PivotedQR(ColumnSampler):
    name = "pivoted_qr"
    needs_jacobian = True

    def indices(self, key, s, p, J, rcond):
        _, _, piv = jax.scipy.linalg.qr(J, mode="economic", pivoting=True)
        if piv.shape[0] < s:
            raise ValueError(f"pivoted_qr gives at most min(n, p)={piv.shape[0]} pivots, s={s} asked")
        return piv[:s].astype(jnp.int32)


class Dense(ColumnSampler):
    name = "dense"

    def draw(self, key, s, p, jacobian, rcond, dtype):
        return AllColumns(p)


class Gaussian(Sampler):
    name = "gaussian"

    def draw(self, key, s, p, jacobian, rcond, dtype):
        return GaussianDirections(gaussian_sketch(key, p, s, dtype))


# -- functions over the registry ----------------------------------------------------------------------------
def get_sampler(name: str) -> Sampler:
    """An instance of the sampler registered as ``name``."""
    return registry.sampler_class(name)()


def needs_jacobian(sampler: str) -> bool:
    """Whether the sampler's distribution depends on ``J(θ_k)``."""
    return get_sampler(sampler).needs_jacobian


def probabilities(sampler: str, J: jax.Array, rcond: float) -> jax.Array:
    """Sampling probabilities (p,) summing to 1 of a weighted column sampler (``column_norm``, ``leverage``)."""
    smp = get_sampler(sampler)
    if not isinstance(smp, _Weighted):
        raise ValueError(f"sampler {sampler!r} has no probabilities")
    return smp.probabilities(J, rcond)


def sample_columns(
    sampler: str, key: jax.Array, s: int, p: int, J: jax.Array | None = None, rcond: float = 0.0
) -> jax.Array:
    """Distinct column indices (s,) int32 of a column sampler for one time step (``arange(p)`` for s = p)."""
    smp = get_sampler(sampler)
    if not isinstance(smp, ColumnSampler):
        raise ValueError(f"sampler {sampler!r} does not sample columns")
    return smp.draw(key, s, p, lambda: J, rcond, None).idx


def gaussian_sketch(key: jax.Array, p: int, s: int, dtype) -> jax.Array:
    """Dense random sketch S (p, s) with N(0, 1/s) entries."""
    return jax.random.normal(key, (p, s), dtype) / jnp.sqrt(jnp.asarray(s, dtype))
