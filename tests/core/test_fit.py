import json

import jax.numpy as jnp
import numpy as np
import pytest

import rsng.core._x64  # noqa: F401  (float64 available)
from rsng.core.config import resolve
from rsng.core.fit import SHIPPED_DIR, FitSettings, fit_key, initial_theta, t0_error
from rsng.core.network import Network
from rsng.core.problems import get_problem


def _net(cfg):
    pr = get_problem(cfg.problem)
    return pr, Network(pr.dim, pr.lengths, cfg.width, cfg.depth)


@pytest.mark.parametrize(
    "problem,preset,max_err",
    [
        ("allen_cahn", "fast", 1e-5),
        ("burgers", "fast", 1e-5),
        ("allen_cahn", "smoke", 2e-5),
        ("burgers", "smoke", 2e-5),
    ],
)
def test_shipped_theta0_reaches_its_stated_t0_error(problem, preset, max_err):
    cfg = resolve(preset, problem=problem)
    pr, net = _net(cfg)
    path = SHIPPED_DIR / f"{fit_key(pr, net, cfg.n, 0, FitSettings())}.npz"
    assert path.exists(), (
        f"missing shipped θ(0) {path.name}: regenerate with `rsng fit --problem {problem} --preset {preset} --ship`"
    )
    with np.load(path, allow_pickle=False) as z:  # arrays only, no pickles
        theta, info = z["theta"], json.loads(str(z["info"]))
    assert theta.shape == (net.num_params,) and theta.dtype == np.float64
    err = t0_error(pr, net, jnp.asarray(theta), jnp.asarray(pr.grid(cfg.n)))
    assert err["rel_l2_u"] == pytest.approx(info["rel_l2_u"], rel=1e-6)
    assert err["rel_l2_u"] < max_err


def test_fit_is_cached_by_content_hash(tmp_path):
    cfg = resolve("smoke", problem="heat", depth=2, width=6, n=32, s="dense")
    pr, net = _net(cfg)
    settings = FitSettings(lbfgs_steps=20, lm_steps=5, adam_steps=5)
    a, info_a = initial_theta(pr, net, cfg.n, 0, settings, cache_dir=tmp_path)
    b, info_b = initial_theta(pr, net, cfg.n, 0, settings, cache_dir=tmp_path)
    assert info_a["source"] == "fitted" and info_b["source"] == "cache"
    np.testing.assert_array_equal(a, b)
    assert info_a["rel_l2_u"] < 0.05
    other = fit_key(pr, net, cfg.n, 1, settings)
    assert other != info_a["key"] and fit_key(pr, net, cfg.n, 0, FitSettings()) != info_a["key"]
    assert list((tmp_path / "theta0").glob(".*")) == []  # no temp files left behind
