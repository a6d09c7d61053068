import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rsng.core._x64  # noqa: F401  (float64 available)
from rsng.core import galerkin
from rsng.core.network import ALPHA_INIT, BETA_INIT, Network, rational
from rsng.core.problems import get_problem


@pytest.mark.parametrize("depth,expected", [(3, 765), (7, 3393), (2, 108)])
def test_parameter_count_matches_public_code(depth, expected):
    # docs/method.md, "The network": p = 108 + 657 (depth − 2) for d = 1, width 25
    assert Network(1, (2 * math.pi,), 25, depth).num_params == expected


def test_parameter_count_2d():
    net = Network(2, (2 * math.pi, 12.0), 25, 7)
    assert net.num_params == 3393 + 75  # embedding gains a, φ, c per extra dimension


def test_depth_below_two_is_refused():
    with pytest.raises(ValueError, match="depth"):
        Network(1, (1.0,), 25, 1)


def test_rational_activation_initial_coefficients():
    z = jnp.linspace(-3, 3, 13)
    a, b = jnp.asarray(ALPHA_INIT), jnp.asarray(BETA_INIT)
    expected = np.polyval(np.asarray(ALPHA_INIT), np.asarray(z)) / np.polyval(np.asarray(BETA_INIT), np.asarray(z))
    np.testing.assert_allclose(rational(z, a, b), expected, rtol=1e-12)


@pytest.mark.parametrize("name", ["allen_cahn", "burgers", "vlasov"])
def test_embedding_makes_network_periodic(name):
    pr = get_problem(name)
    net = Network(pr.dim, pr.lengths, 25, 4)
    theta = net.init(jax.random.PRNGKey(3), jnp.float64)
    x = jnp.asarray(pr.grid(16 if pr.dim == 1 else 16))
    for d, L in enumerate(pr.lengths):
        shifted = x.at[:, d].add(L)
        np.testing.assert_allclose(net.apply_batch(theta, shifted), net.apply_batch(theta, x), rtol=1e-10, atol=1e-12)


def test_spatial_derivatives_match_finite_differences():
    pr = get_problem("burgers")
    net = Network(1, pr.lengths, 25, 4)
    theta = net.init(jax.random.PRNGKey(0), jnp.float64)
    x = jnp.linspace(-0.9, 0.9, 7)[:, None]
    f = galerkin.fields(net, pr, theta, x)
    h = 1e-4
    up, um = net.apply_batch(theta, x + h), net.apply_batch(theta, x - h)
    np.testing.assert_allclose(f["u_x"], (up - um) / (2 * h), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(f["u_xx"], (up - 2 * f["u"] + um) / h**2, rtol=1e-4, atol=1e-6)


def test_mixed_2d_derivatives_match_finite_differences():
    pr = get_problem("vlasov")
    net = Network(2, pr.lengths, 25, 3)
    theta = net.init(jax.random.PRNGKey(1), jnp.float64)
    x = jnp.asarray([[0.3, -1.0], [2.0, 0.5], [5.0, 3.0]])
    f = galerkin.fields(net, pr, theta, x)
    h = 1e-5
    for name, d in (("u_x", 0), ("u_v", 1)):
        e = jnp.zeros(2).at[d].set(h)
        fd = (net.apply_batch(theta, x + e) - net.apply_batch(theta, x - e)) / (2 * h)
        np.testing.assert_allclose(f[name], fd, rtol=1e-6, atol=1e-8)


def test_jacobian_matches_finite_differences():
    net = Network(1, (2 * math.pi,), 5, 3)
    theta = net.init(jax.random.PRNGKey(2), jnp.float64)
    x = jnp.linspace(0, 6, 4)[:, None]
    J = galerkin.jacobian(net, theta, x)
    assert J.shape == (4, net.num_params)
    h = 1e-6
    for j in (0, 17, net.num_params - 1):
        e = jnp.zeros_like(theta).at[j].set(h)
        fd = (net.apply_batch(theta + e, x) - net.apply_batch(theta - e, x)) / (2 * h)
        np.testing.assert_allclose(J[:, j], fd, rtol=1e-6, atol=1e-9)
