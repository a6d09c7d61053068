import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rsng.core._x64  # noqa: F401  (float64 available)
from rsng.core.lstsq import lstsq
from rsng.core.samplers import gaussian_sketch, probabilities, sample_columns

P, S, N = 60, 12, 40


@pytest.fixture(scope="module")
def J():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((N, P)) * np.logspace(0, -3, P)  # columns of very different norms
    return jnp.asarray(A)


@pytest.mark.parametrize("sampler", ["uniform", "column_norm", "leverage", "pivoted_qr"])
def test_indices_are_distinct_and_in_range(sampler, J):
    for k in range(5):
        idx = np.asarray(sample_columns(sampler, jax.random.PRNGKey(k), S, P, J, 1e-4))
        assert idx.shape == (S,) and idx.dtype == np.int32
        assert len(set(idx.tolist())) == S
        assert idx.min() >= 0 and idx.max() < P


@pytest.mark.parametrize("sampler", ["column_norm", "leverage"])
def test_probabilities_sum_to_one(sampler, J):
    prob = np.asarray(probabilities(sampler, J, 1e-4))
    assert prob.shape == (P,) and np.all(prob >= 0)
    assert prob.sum() == pytest.approx(1.0, abs=1e-12)


def test_leverage_scores_sum_to_rank(J):
    _, s, Vt = np.linalg.svd(np.asarray(J), full_matrices=False)
    r = int(np.sum(s > 1e-4 * s[0]))
    w = np.sum(Vt[:r] ** 2, axis=0)
    np.testing.assert_allclose(np.asarray(probabilities("leverage", J, 1e-4)), w / r, rtol=1e-10)


def test_column_norm_prefers_large_columns(J):
    counts = np.zeros(P)
    for k in range(200):
        counts[np.asarray(sample_columns("column_norm", jax.random.PRNGKey(k), S, P, J))] += 1
    assert counts[:10].sum() > 5 * counts[-10:].sum()


def test_uniform_is_roughly_uniform():
    counts = np.zeros(P)
    for k in range(500):
        counts[np.asarray(sample_columns("uniform", jax.random.PRNGKey(k), S, P))] += 1
    expected = 500 * S / P
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))


def test_pivoted_qr_is_deterministic_and_picks_pivots(J):
    a = sample_columns("pivoted_qr", jax.random.PRNGKey(0), S, P, J)
    b = sample_columns("pivoted_qr", jax.random.PRNGKey(1), S, P, J)
    np.testing.assert_array_equal(a, b)
    assert int(a[0]) == int(np.argmax(np.linalg.norm(np.asarray(J), axis=0)))


def test_dense_and_full_s_are_identity():
    np.testing.assert_array_equal(sample_columns("dense", jax.random.PRNGKey(0), P, P), np.arange(P))
    np.testing.assert_array_equal(sample_columns("uniform", jax.random.PRNGKey(0), P, P), np.arange(P))


def test_gaussian_sketch_shape_and_scale():
    Sm = gaussian_sketch(jax.random.PRNGKey(0), 400, 50, jnp.float32)
    assert Sm.shape == (400, 50) and Sm.dtype == jnp.float32
    assert float(jnp.var(Sm)) == pytest.approx(1 / 50, rel=0.1)


@pytest.mark.parametrize("method", ["qr", "svd", "gram"])
def test_lstsq_matches_numpy_with_rcond(method):
    rng = np.random.default_rng(1)
    U, _ = np.linalg.qr(rng.standard_normal((50, 8)))
    V, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    sv = np.array([1, 0.5, 1e-1, 1e-2, 1e-3, 5e-5, 1e-6, 1e-7])  # last three fall below rcond = 1e-4
    A = U @ np.diag(sv) @ V.T
    b = rng.standard_normal(50)
    expected = np.linalg.lstsq(A, b, rcond=1e-4)[0]
    got = np.asarray(lstsq(jnp.asarray(A), jnp.asarray(b), 1e-4, method))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("method", ["qr", "svd", "gram"])
def test_lstsq_wide_matrix_matches_numpy(method):
    # s > n (dense at small n): every method falls back to the SVD of A, same cut-off
    rng = np.random.default_rng(2)
    A = rng.standard_normal((12, 30)) @ np.diag(np.logspace(0, -7, 30))
    b = rng.standard_normal(12)
    expected = np.linalg.lstsq(A, b, rcond=1e-4)[0]
    got = np.asarray(lstsq(jnp.asarray(A), jnp.asarray(b), 1e-4, method))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8)


def test_every_sampler_class_declared_in_the_module_is_built_in():
    # the class (its ``name``) is the one declaration: the registry reads it without importing JAX
    from rsng.core import registry, samplers

    declared = {
        c.name: c
        for c in vars(samplers).values()
        if isinstance(c, type) and issubclass(c, samplers.Sampler) and "name" in vars(c) and c.name
    }
    assert set(declared) == {"uniform", "column_norm", "leverage", "pivoted_qr", "dense", "gaussian"}
    assert {n: registry.sampler_class(n) for n in registry.declared_samplers()} == declared
    assert set(declared) <= set(registry.sampler_names())


def test_declared_samplers_reads_a_module_without_importing_it(tmp_path, monkeypatch):
    import sys

    from rsng.core import registry

    (tmp_path / "my_sketches.py").write_text(
        "import no_such_package_here\n\n"
        "class Base:\n    name = ''\n\n"
        "class Odd(Base):\n    '''doc'''\n    name = 'odd'\n\n"
        "class Helper(Base):\n    pass\n\n"
        "class Even(Base):\n    name: str = 'even'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert registry.declared_samplers("my_sketches") == {"odd": "my_sketches:Odd", "even": "my_sketches:Even"}
    assert "my_sketches" not in sys.modules
