"""The network ``u(x; θ)``: periodic embedding → rational activations → dense layers → scalar.

Layout (docs/method.md, "The network"), ``m`` = width, ``d`` = spatial dimension, ``L`` = depth::

    h_0 = Σ_d (a_{:,d} cos(2π x_d / P_d + φ_{:,d}) + c_{:,d})        a, φ, c ∈ R^{m×d}
    h_0 = R_0(h_0)
    h_l = R_l(W_l h_{l-1} + b_l)          l = 1 … L−2,  W_l ∈ R^{m×m}, b_l ∈ R^m
    u   = W_out h_{L-2} + b_out           W_out ∈ R^{m}, b_out ∈ R

with trainable rational activations of type (3, 2), ``R(z) = (α3 z³+α2 z²+α1 z+α0)/(β2 z²+β1 z+β0)``,
one (α, β) per activation. The embedding makes the periodic boundary condition exact. All
parameters live in one flat vector θ ∈ R^p (``p = 3dm + 7 + (L−2)(m² + m + 7) + m + 1``; for d = 1,
m = 25: ``p = 108 + 657 (L − 2)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

import rsng.core._x64  # noqa: F401  (float64 available)

__all__ = ["Network", "ALPHA_INIT", "BETA_INIT"]

#: Rational activation initialisation (highest power first): a (3, 2) fit of ReLU.
ALPHA_INIT = (1.1915, 1.5957, 0.5, 0.0218)
BETA_INIT = (2.383, 0.0, 1.0)


@dataclass(frozen=True)
class Network:
    """Shape of the network; ``θ`` is passed in as a flat vector.

    Attributes:
      dim: spatial dimension d.
      lengths: period ``P_d`` of each dimension.
      width: units per layer m.
      depth: layers counting the embedding and the output layer (≥ 2).
    """

    dim: int
    lengths: tuple[float, ...]
    width: int = 25
    depth: int = 7

    def __post_init__(self) -> None:
        if self.depth < 2:
            raise ValueError(f"depth must be ≥ 2 (embedding + output), got {self.depth}")
        if self.width < 1:
            raise ValueError(f"width must be ≥ 1, got {self.width}")
        if len(self.lengths) != self.dim:
            raise ValueError(f"lengths has {len(self.lengths)} entries for dim={self.dim}")

    # -- parameter layout -------------------------------------------------------------------
    @cached_property
    def layout(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """``(name, shape)`` of every parameter block in the order they sit in θ."""
        m, d = self.width, self.dim
        blocks: list[tuple[str, tuple[int, ...]]] = [
            ("embed/a", (m, d)),
            ("embed/phi", (m, d)),
            ("embed/c", (m, d)),
            ("act0/alpha", (4,)),
            ("act0/beta", (3,)),
        ]
        for l in range(1, self.depth - 1):
            blocks += [
                (f"dense{l}/w", (m, m)),
                (f"dense{l}/b", (m,)),
                (f"act{l}/alpha", (4,)),
                (f"act{l}/beta", (3,)),
            ]
        blocks += [("out/w", (m,)), ("out/b", (1,))]
        return tuple(blocks)

    @cached_property
    def offsets(self) -> dict[str, tuple[int, tuple[int, ...]]]:
        out, o = {}, 0
        for name, shape in self.layout:
            out[name] = (o, shape)
            o += math.prod(shape)
        return out

    @property
    def num_params(self) -> int:
        """p, the length of θ."""
        return sum(math.prod(shape) for _, shape in self.layout)

    def unravel(self, theta: jax.Array) -> dict[str, jax.Array]:
        """Split flat θ (p,) into named blocks (views, no copies under jit)."""
        return {name: theta[o : o + math.prod(shape)].reshape(shape) for name, (o, shape) in self.offsets.items()}

    # -- initialisation ---------------------------------------------------------------------
    def init(self, key: jax.Array, dtype=jnp.float32) -> jax.Array:
        """Random θ: embedding ~ truncated N(0, 1); dense W ~ truncated N(0, 1/fan_in), b = 0;
        rational activations at :data:`ALPHA_INIT` / :data:`BETA_INIT`."""
        parts = []
        for name, shape in self.layout:
            key, sub = jax.random.split(key)
            if name.startswith("embed/"):
                v = jax.random.truncated_normal(sub, -2.0, 2.0, shape, jnp.float64)
            elif name.endswith("/w"):
                fan_in = self.width
                v = jax.random.truncated_normal(sub, -2.0, 2.0, shape, jnp.float64) / np.sqrt(fan_in)
            elif name.endswith("/alpha"):
                v = jnp.asarray(ALPHA_INIT, jnp.float64)
            elif name.endswith("/beta"):
                v = jnp.asarray(BETA_INIT, jnp.float64)
            else:  # biases
                v = jnp.zeros(shape, jnp.float64)
            parts.append(v.ravel())
        return jnp.concatenate(parts).astype(dtype)

    # -- evaluation -------------------------------------------------------------------------
    def apply(self, theta: jax.Array, x: jax.Array) -> jax.Array:
        """``u(x; θ)`` at one point: θ (p,), x (d,) → scalar."""
        return self.forward(self.unravel(theta), x)[0]

    def forward(self, P: dict[str, jax.Array], x: jax.Array, taps: list[jax.Array] | None = None):
        """``(u, inputs)`` at one point from named blocks ``P`` (:meth:`unravel`).

        ``inputs[l-1]`` is the input ``h_{l-1}`` of dense layer ``l``; ``taps[l-1]`` (m,), if given, is
        added to that layer's pre-activation — differentiating with respect to the taps at zero gives
        ``δ_l = ∂u/∂z_l``, and ``∂u/∂W_l[i, j] = h_{l-1}[i] δ_l[j]`` (see
        :func:`rsng.core.galerkin.jacobian_factors`).
        """
        dtype = P["out/w"].dtype
        two_pi_over_P = jnp.asarray([2 * math.pi / L for L in self.lengths], dtype)
        h = jnp.sum(P["embed/a"] * jnp.cos(two_pi_over_P * x + P["embed/phi"]) + P["embed/c"], axis=1)
        h = rational(h, P["act0/alpha"], P["act0/beta"])
        inputs = []
        for l in range(1, self.depth - 1):
            inputs.append(h)
            z = h @ P[f"dense{l}/w"] + P[f"dense{l}/b"]
            if taps is not None:
                z = z + taps[l - 1]
            h = rational(z, P[f"act{l}/alpha"], P[f"act{l}/beta"])
        return h @ P["out/w"] + P["out/b"][0], inputs

    @cached_property
    def factor_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ia, ib)`` (p,) int32: ``J[:, k] = A[:, ia[k]] · B[:, ib[k]]`` for the factors ``(A, B)`` of
        :func:`rsng.core.galerkin.jacobian_factors`.

        ``A = [h_0 … h_{L-3} | ∂u/∂(other blocks)]``, ``B = [δ_1 … δ_{L-2} | 1]``: a dense weight
        ``W_l[i, j]`` maps to ``(h_{l-1}[i], δ_l[j])``, every other parameter to its own column of A times
        the ones column of B.
        """
        m, p = self.width, self.num_params
        ia, ib = np.zeros(p, np.int32), np.zeros(p, np.int32)
        n_dense = self.depth - 2
        col = n_dense * m
        for name, (o, shape) in self.offsets.items():
            size = math.prod(shape)
            if self.is_dense_weight(name):
                l = int(name[len("dense") : -len("/w")])
                i, j = np.divmod(np.arange(size), m)
                ia[o : o + size] = (l - 1) * m + i
                ib[o : o + size] = (l - 1) * m + j
            else:
                ia[o : o + size] = col + np.arange(size)
                ib[o : o + size] = n_dense * m
                col += size
        return ia, ib

    @staticmethod
    def is_dense_weight(name: str) -> bool:
        """Whether a block of :attr:`layout` is a hidden dense layer's weight matrix ``W_l``."""
        return name.startswith("dense") and name.endswith("/w")

    def apply_batch(self, theta: jax.Array, x: jax.Array) -> jax.Array:
        """``u(x_i; θ)`` for x (n, d) → (n,)."""
        return jax.vmap(self.apply, (None, 0))(theta, x)


def rational(z: jax.Array, alpha: jax.Array, beta: jax.Array) -> jax.Array:
    """Type-(3, 2) rational function, coefficients highest power first (Horner form)."""
    num = ((alpha[0] * z + alpha[1]) * z + alpha[2]) * z + alpha[3]
    den = (beta[0] * z + beta[1]) * z + beta[2]
    return num / den
