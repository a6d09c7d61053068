"""benchmarks/theta0_screen.py: its reparametrisations leave u unchanged, and the screen marches and records."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rsng.core._x64  # noqa: F401  (float64 for the comparison of u)
from rsng.core.network import Network

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "theta0_screen.py"


@pytest.fixture(scope="module")
def screen():
    spec = importlib.util.spec_from_file_location("theta0_screen", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rescale_is_an_exact_symmetry(screen):
    net = Network(1, (2.0,), 7, 5)
    rng = np.random.default_rng(0)
    theta = np.asarray(net.init(jax.random.PRNGKey(3), jnp.float64))
    x = jnp.asarray(rng.uniform(-1, 1, (64, 1)))
    u = np.asarray(net.apply_batch(jnp.asarray(theta), x))
    n_act = net.depth - 1
    factors = {k: rng.uniform(0.3, 3.0, n_act) for k in ("cin", "dout", "e")}
    moved = screen.rescale(net, theta, **factors)
    assert np.max(np.abs(moved - theta)) > 0.1  # θ itself moves …
    u_moved = np.asarray(net.apply_batch(jnp.asarray(moved), x))
    np.testing.assert_allclose(u_moved, u, rtol=0, atol=1e-12 * np.max(np.abs(u)))  # … u does not
    # one factor at a time changes u if the compensating half is left out (the test can fail)
    broken = theta.copy()
    o, _ = net.offsets["embed/a"]
    broken[o : o + 7] *= 2.0
    assert np.max(np.abs(np.asarray(net.apply_batch(jnp.asarray(broken), x)) - u)) > 1e-3
    np.testing.assert_array_equal(screen.rescale(net, theta), theta)


def test_bad_factors_and_specs_are_named(screen):
    net = Network(1, (2.0,), 5, 4)
    theta = np.asarray(net.init(jax.random.PRNGKey(0), jnp.float64))
    with pytest.raises(ValueError, match="dout: 3 finite non-zero factors"):
        screen.rescale(net, theta, dout=[1.0, 0.0, 1.0])
    with pytest.raises(SystemExit, match="accepted keys: cin, dout, e"):
        screen.parse_variant("x:scale=2", 3)
    with pytest.raises(SystemExit, match="1 or 3 factors"):
        screen.parse_variant("x:cin=1/2", 3)
    assert screen.parse_variant("w:cin=1/0.5/0.5;e=2", 3) == (
        "w",
        {"cin": [1.0, 0.5, 0.5], "dout": [1.0, 1.0, 1.0], "e": [2.0, 2.0, 2.0]},
    )
    assert screen.parse_seeds("5-7") == [5, 6, 7] and screen.parse_seeds("0,3") == [0, 3]
    with pytest.raises(SystemExit, match="--seeds"):
        screen.parse_seeds("1,1")


def test_screen_marches_each_variant_and_appends_rows(screen, tmp_path, capsys):
    out = tmp_path / "rows.jsonl"
    argv = ["--problem", "burgers", "--preset", "smoke", "--t-end", "0.02", "--seeds", "0-1", "--out", str(out)]
    screen.main([*argv, "--variant", "base:", "--variant", "mixed:cin=2/0.5;dout=3;e=0.5"])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["variant"] for r in rows] == ["base", "mixed"]
    for r in rows:
        assert r["seeds"] == [0, 1] and r["status"] == ["ok", "ok"] and r["rcond"] == 1e-4
        assert np.all(np.isfinite(r["errors"])) and r["mean"] == pytest.approx(np.mean(r["errors"]))
        assert r["e_t0.1"] is None  # past t_end
        assert r["du_max"] < 1e-12 and r["mean_kept_rank"] > 0
        assert set(r["j_normsq_by_group"]) == {"embedding", "rational", "dense W", "dense b", "out/w", "out/b"}
    # the same θ(0) up to an exact symmetry: the same function at t = 0, a different Jacobian
    assert rows[1]["j0_sigma_max"] != pytest.approx(rows[0]["j0_sigma_max"], rel=1e-3)
    assert "mixed" in capsys.readouterr().out
