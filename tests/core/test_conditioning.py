"""Per-step conditioning diagnostics of the sketched least squares, and the θ(0) recipe as a run field."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rsng.core._x64  # noqa: F401  (float64 available)
from rsng.core import galerkin
from rsng.core.config import ConfigError, resolve
from rsng.core.integrate import CONDITIONING, Trajectory
from rsng.core.lstsq import lstsq
from rsng.core.network import Network
from rsng.core.problems import get_problem
from rsng.core.recipe import RECIPES, parse
from rsng.core.stepping import make_step


@pytest.mark.parametrize("method", ["qr", "svd", "gram"])
@pytest.mark.parametrize("shape", [(50, 8), (12, 30)])
def test_lstsq_conditioning_matches_numpy_svd(method, shape):
    rng = np.random.default_rng(3)
    n, s = shape
    A = rng.standard_normal(shape) @ np.diag(np.logspace(0, -7, s))
    b = rng.standard_normal(n)
    S = np.linalg.svd(A, compute_uv=False)
    for rcond in (1e-2, 1e-4, 1e-5):
        v, cond = lstsq(jnp.asarray(A), jnp.asarray(b), rcond, method, diagnostics=True)
        kept = S[S > rcond * S[0]]
        assert int(cond.rank) == len(kept) <= s
        assert float(cond.sigma_max) == pytest.approx(S[0], rel=1e-9)
        assert float(cond.sigma_min_kept) == pytest.approx(kept[-1], rel=1e-6)
        # the solution is the one without diagnostics, bit for bit
        plain = lstsq(jnp.asarray(A), jnp.asarray(b), rcond, method)
        assert np.asarray(v).tobytes() == np.asarray(plain).tobytes()


def test_step_conditioning_is_the_count_of_singular_values_above_the_cutoff():
    # a small float64 case: the kept rank of step 0 equals numpy's count on J(θ0)[:, idx]
    cfg = resolve(
        "smoke", problem="heat", depth=3, width=6, n=40, s=20, precision="f64", rcond=1e-4, t_end=0.05, save_every=1
    )
    pr = get_problem(cfg.problem)
    net = Network(pr.dim, pr.lengths, cfg.width, cfg.depth)
    theta0 = np.asarray(net.init(jax.random.PRNGKey(0), jnp.float64))
    x = jnp.asarray(pr.grid(cfg.n), jnp.float64)
    res = Trajectory(cfg, theta0=theta0, fit_info={}).run()
    series = res.series
    for name in CONDITIONING:
        assert np.isnan(series[name][0])  # t = 0: no step yet
        assert np.all(np.isfinite(series[name][1:]))
    assert np.all(series["ls_rank"][1:] <= cfg.s) and np.all(series["ls_rank"][1:] >= 1)
    assert np.all(series["ls_sigma_min_kept"][1:] > cfg.rcond * series["ls_sigma_max"][1:])
    assert np.all(series["ls_sigma_min_kept"][1:] <= series["ls_sigma_max"][1:])

    out = make_step(net, pr, cfg, x)(jnp.asarray(theta0), jnp.asarray(0), jax.random.PRNGKey(cfg.seed))
    J = np.asarray(galerkin.jacobian(net, jnp.asarray(theta0), x))[:, np.asarray(out.idx)]
    S = np.linalg.svd(J, compute_uv=False)
    assert series["ls_rank"][1] == np.sum(S > cfg.rcond * S[0])
    assert series["ls_sigma_max"][1] == pytest.approx(S[0], rel=1e-9)
    assert series["ls_sigma_min_kept"][1] == pytest.approx(S[S > cfg.rcond * S[0]][-1], rel=1e-6)


def test_state_round_trip_keeps_the_conditioning_series():
    cfg = resolve("smoke", problem="heat", depth=3, width=6, n=40, s=20, t_end=0.1, save_every=1)
    pr = get_problem(cfg.problem)
    net = Network(pr.dim, pr.lengths, cfg.width, cfg.depth)
    theta0 = np.asarray(net.init(jax.random.PRNGKey(0), jnp.float64))
    a = Trajectory(cfg, theta0=theta0, chunk=5)
    a.advance(5)
    st = a.state()
    b = Trajectory(cfg, theta0=theta0, chunk=5)
    b.load_state(st)
    a.run(), b.run()
    for name in CONDITIONING:
        assert a.result().series[name].tobytes() == b.result().series[name].tobytes()
    old = {k: v for k, v in st.items() if k != "rec_cond"}  # a state saved before the series existed
    c = Trajectory(cfg, theta0=theta0, chunk=5)
    c.load_state(old)
    c.run()
    assert np.isnan(c.result().series["ls_rank"][1]) and np.isfinite(c.result().series["ls_rank"][-1])


def test_fit_recipe_is_a_checked_run_field():
    assert parse(resolve("fast", problem="allen_cahn").fit_recipe) == parse("adam-lm,polish=200")
    assert parse(resolve("fast", problem="burgers").fit_recipe) == parse("adam-lm,lr=1e-3")
    cfg = resolve("fast", problem="burgers", fit_recipe="rich,lm=7")
    assert cfg.fit_recipe == "rich,lm=7" and cfg.to_dict()["fit_recipe"] == "rich,lm=7"
    assert parse(cfg.fit_recipe).lm_steps == 7 and parse(cfg.fit_recipe).weight_scale == RECIPES["rich"].weight_scale
    # a spelling equal to a named recipe is stored as its name
    r = RECIPES["rich"]
    spelled = f"lbfgs={r.lbfgs_steps},lm={r.lm_steps},adam={r.adam_steps},embed={r.embed_scale},weight={r.weight_scale}"
    assert resolve("fast", problem="burgers", fit_recipe=spelled).fit_recipe == "rich"
    bad_values = [("nope", "unknown recipe"), ("lm=-1", "lm"), ("lm=2,lm=3", "twice"), ("weight=0", "weight")]
    for bad, words in bad_values + [("polish=1.5", "polish"), ("adam-lm,lr=0", "lr")]:
        with pytest.raises(ConfigError, match=words) as e:
            resolve("fast", problem="burgers", fit_recipe=bad)
        assert e.value.field == "fit_recipe"


def test_weight_decay_without_hidden_dense_layer_is_a_clear_error():
    # depth 2 (embedding + output layer) has no hidden dense weights for wd to act on
    with pytest.raises(ConfigError, match="depth 2") as e:
        resolve("smoke", problem="heat", depth=2, fit_recipe="wd=1e-3")
    assert e.value.field == "fit_recipe" and "depth ≥ 3" in str(e.value)
    assert resolve("smoke", problem="heat", depth=2, fit_recipe="wd=0").depth == 2
    assert parse(resolve("smoke", problem="heat", depth=3, fit_recipe="wd=1e-3").fit_recipe).weight_decay == 1e-3
