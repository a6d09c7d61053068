import math

import pytest

from rsng.core.config import ConfigError, resolve


def test_presets_have_the_documented_settings():
    """The paper's n, s, depth, δt and T (its Table 1 / Sec. 5) with the rcond the README documents:
    1e-5 for allen_cahn and burgers, where the paper uses 1e-4 (rsng/core/problems.py, RCOND_SPECTRAL:
    with our fitted θ(0) the paper's cut-off discards directions the dynamics need), and vlasov's 1e-5,
    which is the paper's."""
    from rsng.core.problems import RCOND_SPECTRAL

    assert RCOND_SPECTRAL == 1e-5
    ac = resolve("fast", problem="allen_cahn")
    assert (ac.n, ac.s, ac.depth, ac.dt, ac.t_end, ac.rcond, ac.p) == (1000, 150, 7, 5e-3, 4.0, 1e-5, 3393)
    assert ac.steps == 800 and ac.save_every == 1
    bu = resolve("fast", problem="burgers")
    assert (bu.n, bu.s, bu.dt, bu.steps, bu.rcond) == (1000, 125, 1e-3, 4000, 1e-5)
    assert bu.save_every == 4  # ≤ 1000 stored times
    acc = resolve("accurate", problem="allen_cahn")
    assert (acc.n, acc.s) == (10_000, 800)
    vl = resolve(None, problem="vlasov")
    assert (vl.n, vl.rcond, vl.dt, vl.t_end) == (447**2, 1e-5, 5e-3, 3.0)


def test_dense_means_s_equals_p():
    cfg = resolve("fast", problem="allen_cahn", s="dense")
    assert cfg.sampler == "dense" and cfg.s == cfg.p and cfg.dense


BAD = [
    ({"problem": "navier_stokes"}, "problem", "allen_cahn"),
    ({"problem": "allen_cahn", "sampler": "random"}, "sampler", "uniform"),
    ({"problem": "allen_cahn", "s": 0}, "s", "≥ 1"),
    ({"problem": "allen_cahn", "s": 100_000}, "s", "≤ p=3393"),
    ({"problem": "allen_cahn", "n": 0}, "n", "≥ 1"),
    ({"problem": "allen_cahn", "n": -5}, "n", "≥ 1"),
    ({"problem": "allen_cahn", "dt": 0.0}, "dt", "> 0"),
    ({"problem": "allen_cahn", "dt": -1e-3}, "dt", "> 0"),
    ({"problem": "allen_cahn", "t_end": -1.0}, "t_end", "≥ 0"),
    ({"problem": "allen_cahn", "dt": math.nan}, "dt", "finite"),
    ({"problem": "allen_cahn", "t_end": math.inf}, "t_end", "finite"),
    ({"problem": "allen_cahn", "rcond": math.nan}, "rcond", "finite"),
    ({"problem": "allen_cahn", "rcond": 2.0}, "rcond", "< 1"),
    ({"problem": "allen_cahn", "depth": 1}, "depth", "≥ 2"),
    ({"problem": "allen_cahn", "width": 0}, "width", "≥ 1"),
    ({"problem": "allen_cahn", "seed": -1}, "seed", "≥ 0"),
    ({"problem": "allen_cahn", "seed": 1.5}, "seed", "integer"),
    ({"problem": "allen_cahn", "precision": "f16"}, "precision", "f32, f64"),
    ({"problem": "allen_cahn", "integrator": "rk45"}, "integrator", "rk4, euler"),
    ({"problem": "allen_cahn", "t_end": 1.0001}, "t_end", "integer number"),
    ({"problem": "vlasov", "n": 1000}, "n", "perfect"),
    ({"problem": "allen_cahn", "sampler": "dense", "s": 10}, "s", "dense"),
    ({"problem": "allen_cahn", "colour": "red"}, "colour", "accepted"),
    ({"problem": "allen_cahn", "n": "many"}, "n", "integer"),
]


@pytest.mark.parametrize("kwargs,field,fragment", BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_names_the_field(kwargs, field, fragment):
    with pytest.raises(ConfigError) as e:
        resolve(None, **kwargs)
    assert e.value.field == field
    assert fragment in str(e.value)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="preset.*smoke, fast, accurate"):
        resolve("turbo", problem="allen_cahn")


def test_least_squares_default_follows_precision():
    assert resolve("smoke", problem="heat").lstsq == "gram"  # float32: f64 normal equations
    assert resolve("smoke", problem="heat", precision="f64").lstsq == "qr"  # float64: keep κ unsquared
    assert resolve("smoke", problem="heat", precision="f64", lstsq="gram").lstsq == "gram"
