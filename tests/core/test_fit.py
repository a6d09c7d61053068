import json
import re

import jax.numpy as jnp
import numpy as np
import pytest

import rsng.core._x64  # noqa: F401  (float64 available)
from rsng.core.config import ConfigError, resolve
from rsng.core.fit import SHIPPED_DIR, FitSettings, fit_key, initial_theta, t0_error
from rsng.core.network import Network
from rsng.core.problems import get_problem


def _net(cfg):
    pr = get_problem(cfg.problem)
    return pr, Network(pr.dim, pr.lengths, cfg.width, cfg.depth)


#: Shipped fits whose recipe trades t = 0 accuracy for directions kept above the cut-off, with the bound
#: their stated t = 0 error must meet instead of the preset's (docs/initial-fit.md, "Shipped fits").
RECIPE_T0_BOUND: dict[tuple[str, str, str], float] = {("allen_cahn", "accurate", "adam-lm,embed=2"): 2e-5}


@pytest.mark.parametrize(
    "problem,preset,max_err",
    [
        ("allen_cahn", "fast", 1e-5),
        ("burgers", "fast", 1e-5),
        ("allen_cahn", "smoke", 2e-5),
        ("burgers", "smoke", 2e-5),
        ("allen_cahn", "accurate", 1e-5),
        ("burgers", "accurate", 1e-5),
    ],
)
def test_shipped_theta0_reaches_its_stated_t0_error(problem, preset, max_err):
    cfg = resolve(preset, problem=problem)
    pr, net = _net(cfg)
    from rsng.core.recipe import parse

    # the preset's default fit (recipe and init seed) at the problem's cut-off and at every cut-off the problem
    # or the preset lists (Problem.default_theta0), the same recipe's init-seed-0 fit where the default is another
    # init seed's (the previous default, which `--init-seed 0` runs without a fit), and the first releases'
    # lbfgs-lm-adam
    own = pr.presets[preset].get("fit_recipe_at", {})
    at_cutoffs = [resolve(preset, problem=problem, rcond=r) for r in (*pr.fit_recipe_at, *own)]
    fits = {(c.fit_recipe, 0): f"--rcond {c.rcond:g} --init-seed 0" for c in at_cutoffs if c.init_seed}
    fits |= {(c.fit_recipe, c.init_seed): f"--rcond {c.rcond:g}" for c in reversed(at_cutoffs)}
    fits = {(cfg.fit_recipe, cfg.init_seed): "", ("lbfgs-lm-adam", 0): "--fit-recipe lbfgs-lm-adam", **fits}
    for (recipe, init_seed), how in fits.items():
        bound = RECIPE_T0_BOUND.get((problem, preset, recipe), max_err)
        ship = f"rsng fit --problem {problem} --preset {preset} {how} --ship".replace("  ", " ")
        _check_shipped(pr, net, cfg.n, init_seed, parse(recipe), ship, bound)


def _check_shipped(pr, net, n, init_seed, settings, ship, max_err):
    path = SHIPPED_DIR / f"{fit_key(pr, net, n, init_seed, settings)}.npz"
    assert path.exists(), f"missing shipped θ(0) {path.name}: regenerate with `{ship}`"
    with np.load(path, allow_pickle=False) as z:  # arrays only, no pickles
        theta, info = z["theta"], json.loads(str(z["info"]))
    assert theta.shape == (net.num_params,) and theta.dtype == np.float64
    err = t0_error(pr, net, jnp.asarray(theta), jnp.asarray(pr.grid(n)))
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


def test_fit_cache_keys_on_the_recipe():
    from rsng.core.recipe import RECIPES, parse

    cfg = resolve("fast", problem="burgers")
    pr, net = _net(cfg)
    legacy = fit_key(pr, net, cfg.n, 0, parse("lbfgs-lm-adam"))
    # the recipe fields added later leave the keys of the fits shipped before them unchanged
    assert (SHIPPED_DIR / f"{legacy}.npz").exists()
    keys = {legacy} | {fit_key(pr, net, cfg.n, 0, s) for s in RECIPES.values()}
    keys |= {
        fit_key(pr, net, cfg.n, 0, parse(r))
        for r in ("embed=2", "weight=2", "beta0=0.5", "lm=10", "lr=1e-5", "wd=1e-5", "polish=5", "points=2000")
    }
    assert len(keys) == 11  # every recipe its own fit
    assert fit_key(pr, net, cfg.n, 0, parse("wd=0")) == legacy
    assert fit_key(pr, net, cfg.n, 0, parse("polish=0")) == legacy
    assert fit_key(pr, net, cfg.n, 0, parse("points=0")) == legacy
    assert fit_key(pr, net, cfg.n, 0, parse("rich")) == fit_key(pr, net, cfg.n, 0, parse("rich,lm=100"))


def test_fit_stores_the_jacobian_spectrum_and_rows_record_the_recipe(tmp_path):
    from rsng.core.fit import jacobian_spectrum
    from rsng.core.integrate import Trajectory
    from rsng.core.recipe import parse
    from rsng.results.rows import base_row, finish_row
    from rsng.results.schema import validate_row

    cfg = resolve("smoke", problem="heat", depth=2, width=6, n=32, s="dense", fit_recipe="lbfgs=20,lm=5,adam=5,embed=2")
    pr, net = _net(cfg)
    theta, info = initial_theta(pr, net, cfg.n, 0, parse(cfg.fit_recipe), cache_dir=tmp_path)
    sigma = info["sigma"]
    J = np.asarray(jacobian_spectrum(pr, net, theta, cfg.n))
    np.testing.assert_allclose(sigma, J)
    x = jnp.asarray(pr.grid(cfg.n), jnp.float64)
    import jax

    Jfull = np.asarray(jax.vmap(jax.grad(net.apply), (None, 0))(jnp.asarray(theta), x))
    S = np.linalg.svd(Jfull, compute_uv=False)
    # σ from the eigenvalues of the float64 Gram matrix: an eigenvalue is off by ≈ ε·σ_max², so σ_i by
    # ≈ ε·σ_max² / (2σ_i) — relative 1e-6 alone is too tight near 1e-6·σ_max (seen: 1.9e-6 at 1.3e-6·σ_max on one CPU)
    k = S > 1e-6 * S[0]
    bound = 1e-6 * S[k] + 64 * np.finfo(np.float64).eps * S[0] ** 2 / S[k]
    assert np.all(np.abs(sigma[: len(S)][k] - S[k]) <= bound), np.max(np.abs(sigma[: len(S)][k] - S[k]) / bound)
    assert info["j0_rank@0.0001"] == int(np.sum(S > 1e-4 * S[0]))
    # the cached file carries the spectrum; loading it gives the same
    _, again = initial_theta(pr, net, cfg.n, 0, parse(cfg.fit_recipe), cache_dir=tmp_path)
    assert again["source"] == "cache" and np.array_equal(again["sigma"], sigma)

    res = Trajectory(cfg, cache_dir=str(tmp_path)).run()
    assert res.fit["key"] == info["key"]
    import datetime as dt

    row = finish_row(
        base_row(
            "s",
            "t",
            cfg.to_dict(),
            batch_size=1,
            rsng_version="0",
            git_sha=None,
            jax_version="0",
            device="cpu",
            started_at=dt.datetime.now(dt.UTC),
        ),
        result=res,
    )
    clean = validate_row(row)
    assert clean["fit_recipe"] == "lbfgs=20,lm=5,adam=5,embed=2"
    assert clean["fit_rel_l2_t0"] == info["rel_l2_u"]
    assert clean["j0_sigma_max"] == pytest.approx(S[0], rel=1e-9)
    assert clean["j0_rank"] == int(np.sum(S > cfg.rcond * S[0]))


def _hidden_rms(net, theta):
    w = [np.ravel(v) for k, v in net.unravel(jnp.asarray(theta)).items() if net.is_dense_weight(k)]
    return float(np.sqrt(np.mean(np.concatenate(w) ** 2)))


def test_weight_decay_lm_step_solves_the_regularised_normal_equations():
    """The weight-decayed Levenberg–Marquardt step (Woodbury, rows × rows) equals the dense p × p solve of
    (JᵀJ + diag(c² + λμ)) δ = −(Jᵀr + c²θ), J the Jacobian of the u and ∇u residual (autodiff)."""
    import jax

    from rsng.core.fit import _decay_weights, _decayed_lm_delta, _targets

    cfg = resolve("smoke", problem="heat", depth=3, width=4, n=24, s="dense")
    pr, net = _net(cfg)
    x = jnp.asarray(pr.grid(cfg.n), jnp.float64)
    u_ref, g_ref = _targets(pr, x)
    nu, ng = jnp.linalg.norm(u_ref), jnp.linalg.norm(g_ref)
    theta = net.init(jax.random.PRNGKey(3), jnp.float64)
    c = _decay_weights(net, 0.3)
    assert c is not None and float(jnp.linalg.norm(c * theta)) == pytest.approx(0.3 * _hidden_rms(net, theta))
    assert _decay_weights(net, 0.0) is None

    def residual(th):
        u = net.apply_batch(th, x)
        g = jax.vmap(jax.grad(net.apply, 1), (None, 0))(th, x)
        return jnp.concatenate([(u - u_ref) / nu, ((g - g_ref) / ng).T.ravel()])

    J, r = jax.jacfwd(residual)(theta), residual(theta)
    assert J.shape[0] < J.shape[1]  # the Woodbury side
    Jn, rn, c2, th = np.asarray(J), np.asarray(r), np.asarray(c) ** 2, np.asarray(theta)
    mu = np.sum(Jn * Jn) / min(Jn.shape)
    for lam in (1e-3, 0.1, 10.0):
        dense = -np.linalg.solve(Jn.T @ Jn + np.diag(c2 + lam * mu), Jn.T @ rn + c2 * th)
        np.testing.assert_allclose(np.asarray(_decayed_lm_delta(J, r, theta, lam, c)), dense, rtol=1e-6, atol=1e-9)


def test_weight_decay_shrinks_the_hidden_weights(tmp_path):
    from rsng.core.recipe import parse

    cfg = resolve("smoke", problem="heat", depth=3, width=6, n=32, s="dense")
    pr, net = _net(cfg)
    plain, info = initial_theta(pr, net, cfg.n, 0, parse("lbfgs=60,lm=20,adam=0"), cache_dir=tmp_path)
    decayed, info_wd = initial_theta(pr, net, cfg.n, 0, parse("lbfgs=60,lm=20,adam=0,wd=0.05"), cache_dir=tmp_path)
    assert info_wd["key"] != info["key"] and "wd=0.05" in info_wd["recipe"]
    assert _hidden_rms(net, decayed) < 0.8 * _hidden_rms(net, plain)
    assert info_wd["rel_l2_u"] < 0.05  # still a fit of u0


def test_polish_stage_runs_levenberg_marquardt_after_adam(tmp_path):
    from rsng.core.fit import fit
    from rsng.core.recipe import parse

    cfg = resolve("smoke", problem="heat", depth=3, width=6, n=32, s="dense")
    pr, net = _net(cfg)
    base = "lbfgs=0,lm=0,adam=200,lr=3e-3"
    th_a, info_a = fit(pr, net, cfg.n, 0, parse(base))
    th_b, info_b = fit(pr, net, cfg.n, 0, parse(base + ",polish=5"))
    # the same Adam run, then the polish lowers Levenberg–Marquardt's objective (on this grid, all of it:
    # the stacked relative residual of u and ∇u) from where Adam stopped
    assert info_b["polish_steps"] == 5 and info_a["polish_steps"] == 0
    lm_objective = [np.hypot(i["rel_l2_u"], i["rel_l2_grad"]) for i in (info_a, info_b)]
    assert lm_objective[1] < lm_objective[0] and not np.array_equal(th_a, th_b)
    assert "polish=5" in info_b["recipe"]


def test_fit_points_sets_the_grid_of_the_first_order_stages():
    """``points=m`` fits L-BFGS and Adam on the m-point grid whatever the run's n: an Adam-only fit of an
    n = 32 run with ``points=64`` is, bit for bit, the same fit of an n = 64 run; its t = 0 errors are
    measured on the run's own grid, and the Levenberg–Marquardt polish stays on that grid."""
    from rsng.core.fit import fit
    from rsng.core.recipe import parse

    cfg = resolve("smoke", problem="heat", depth=3, width=6, n=32, s="dense")
    pr, net = _net(cfg)
    adam = "lbfgs=0,lm=0,adam=200,lr=3e-3"
    th_dense, info_dense = fit(pr, net, 32, 0, parse(adam + ",points=64"))
    th_64, _ = fit(pr, net, 64, 0, parse(adam))
    th_32, _ = fit(pr, net, 32, 0, parse(adam))
    assert np.array_equal(th_dense, th_64) and not np.array_equal(th_dense, th_32)
    assert info_dense["fit_points"] == 64 and info_dense["n"] == 32 and "points=64" in info_dense["recipe"]
    on_run_grid = t0_error(pr, net, jnp.asarray(th_dense), jnp.asarray(pr.grid(32)))
    assert info_dense["rel_l2_u"] == pytest.approx(on_run_grid["rel_l2_u"], rel=1e-12)
    # the polish runs on the run's grid: polishing the n = 32 run's dense-grid fit is not polishing the n = 64 run's
    th_dense_p, _ = fit(pr, net, 32, 0, parse(adam + ",points=64,polish=3"))
    th_64_p, _ = fit(pr, net, 64, 0, parse(adam + ",polish=3"))
    assert not np.array_equal(th_dense_p, th_64_p)


def test_fit_points_must_be_a_grid_of_the_problem():
    with pytest.raises(ConfigError, match=re.escape("fit_recipe: points=1000 is not a grid of vlasov's box")):
        resolve("smoke", problem="vlasov", fit_recipe="points=1000")
    assert resolve("smoke", problem="vlasov", fit_recipe="points=1024").fit_recipe == "points=1024"
    with pytest.raises(ConfigError, match=re.escape("points: must be an integer ≥ 0, got '2.5'")):
        resolve("fast", problem="burgers", fit_recipe="adam-lm,points=2.5")


def test_long_stages_report_progress_and_the_log_does_not_change_the_fit():
    from rsng.core.fit import PROGRESS_REPORTS, fit
    from rsng.core.recipe import parse

    cfg = resolve("smoke", problem="heat", depth=3, width=6, n=32, s="dense")
    pr, net = _net(cfg)
    settings = parse("lbfgs=30,lm=2,adam=50,lr=3e-3,polish=2")
    lines: list[str] = []
    th_logged, info_logged = fit(pr, net, cfg.n, 0, settings, log=lines.append)
    th_quiet, info_quiet = fit(pr, net, cfg.n, 0, settings)
    # L-BFGS and Adam each report PROGRESS_REPORTS times (the last piece shorter), ending at their budget
    for stage, steps in (("L-BFGS", 30), ("Adam", 50)):
        done = [int(ln.split()[1].split("/")[0]) for ln in lines if ln.startswith(f"  {stage} ")]
        assert len(done) == min(steps, PROGRESS_REPORTS) and done[-1] == steps and done == sorted(done)
        assert all(f"/{steps}: loss " in ln and "s left" in ln for ln in lines if ln.startswith(f"  {stage} "))
    # the progress runs the same loop in pieces: the same θ, bit for bit
    assert np.array_equal(th_logged, th_quiet) and info_logged["loss"] == info_quiet["loss"]
    # Adam's last report is the best loss it kept, the one the polish starts from
    last_adam = [ln for ln in lines if ln.startswith("  Adam ")][-1]
    assert float(last_adam.split("loss ")[1].split(",")[0]) >= info_quiet["loss"]


def test_default_recipe_comes_from_the_problem():
    from rsng.core.recipe import DEFAULT_RECIPE

    for name, recipe in (
        ("allen_cahn", "adam-lm,polish=200"),
        ("burgers", "adam-lm,lr=1e-3"),
        ("heat", DEFAULT_RECIPE),
    ):
        for preset in ("fast", "accurate", None):
            assert resolve(preset, problem=name).fit_recipe == recipe
        # the smoke presets keep the first releases' recipe (a fit of seconds for a wiring check)
        assert resolve("smoke", problem=name).fit_recipe == DEFAULT_RECIPE
        assert resolve("smoke", problem=name, fit_recipe="default").fit_recipe == DEFAULT_RECIPE
    assert resolve("fast", problem="burgers", fit_recipe="lbfgs-lm-adam").fit_recipe == "lbfgs-lm-adam"
    assert resolve("fast", problem="burgers", fit_recipe="default").fit_recipe == "adam-lm,lr=1e-3"
    assert resolve("fast", problem="heat", fit_recipe="default").fit_recipe == DEFAULT_RECIPE


def test_default_recipe_follows_the_cut_off():
    """allen_cahn's and burgers' defaults at the paper's cut-off (rcond 1e-4) are their own
    (docs/initial-fit.md); an explicit recipe, a preset's own recipe and any other cut-off are left alone."""
    burgers = get_problem("burgers")
    # burgers' fast preset has its own recipe there (a fit on a denser grid), the others the problem's
    at_paper = {"fast": burgers.presets["fast"]["fit_recipe_at"][1e-4], "accurate": burgers.fit_recipe_at[1e-4]}
    assert "adam-lm,lr=1e-3" not in at_paper.values() and at_paper["fast"] != at_paper["accurate"]
    for preset in ("fast", "accurate", None):
        expected = at_paper.get(preset, at_paper["accurate"])
        assert resolve(preset, problem="burgers", rcond=1e-4).fit_recipe == expected
        assert resolve(preset, problem="burgers", rcond=0.0001, fit_recipe="default").fit_recipe == expected
        assert resolve(preset, problem="burgers", rcond=1e-5).fit_recipe == "adam-lm,lr=1e-3"
        assert resolve(preset, problem="burgers", rcond=2e-4).fit_recipe == "adam-lm,lr=1e-3"
        # allen_cahn's accurate preset has a recipe of its own at the paper's cut-off (Problem.presets)
        ac_at_paper = "adam-lm,embed=2" if preset == "accurate" else "adam-lm"
        assert resolve(preset, problem="allen_cahn", rcond=1e-4).fit_recipe == ac_at_paper
        assert resolve(preset, problem="allen_cahn", rcond=1e-5).fit_recipe == "adam-lm,polish=200"
    explicit = resolve("fast", problem="burgers", rcond=1e-4, fit_recipe="adam-lm,lr=1e-3")
    assert explicit.fit_recipe == "adam-lm,lr=1e-3"
    assert resolve("smoke", problem="burgers", rcond=1e-4).fit_recipe == resolve("smoke", problem="burgers").fit_recipe
    # a bad cut-off is still reported as such, not hidden by the recipe lookup
    with pytest.raises(ConfigError, match="rcond"):
        resolve("fast", problem="burgers", rcond="x")


def test_a_preset_may_name_its_own_recipe_at_a_cut_off():
    """A preset's ``fit_recipe_at`` comes before the preset's own recipe, which comes before the problem's
    at that cut-off and the problem's (Problem.default_recipe); resolve follows it, and an explicit recipe
    wins over all of them."""
    import dataclasses

    from rsng.core import problems

    base = get_problem("heat")
    pr = dataclasses.replace(
        base,
        name="heat_recipes",
        fit_recipe="lm=11",
        fit_recipe_at={1e-4: "lm=12", 1e-3: "lm=13"},
        init_seed_at={1e-3: 7},
        presets={
            "smoke": {**base.presets["smoke"], "fit_recipe": "lm=21", "fit_recipe_at": {"1e-4": "lm=22"}},
            "fast": {**base.presets["fast"], "fit_recipe_at": {1e-4: "lm=31"}, "init_seed_at": {"1e-4": 3}},
        },
    )
    assert dict(pr.presets["smoke"]["fit_recipe_at"]) == {1e-4: "lm=22"}  # keys are cut-offs, as floats
    expected = {
        ("smoke", 1e-4): "lm=22",  # the preset's at the cut-off
        ("smoke", 1e-3): "lm=21",  # the preset's own, before the problem's at the cut-off
        ("smoke", 1e-5): "lm=21",
        ("fast", 1e-4): "lm=31",  # the preset's at the cut-off
        ("fast", 1e-3): "lm=13",  # the problem's at the cut-off
        ("fast", 1e-5): "lm=11",  # the problem's
        ("accurate", 1e-4): "lm=12",  # a preset with no recipe of its own
        (None, 1e-4): "lm=12",
        (None, 2e-4): "lm=11",
    }
    # the init seed goes with the recipe listed beside it at the same level, and is 0 everywhere else
    init_seed = {("fast", 1e-4): 3, ("fast", 1e-3): 7}
    for (preset, rcond), recipe in expected.items():
        assert pr.default_recipe(rcond, preset) == recipe, (preset, rcond)
        assert pr.default_theta0(rcond, preset) == (recipe, init_seed.get((preset, rcond), 0)), (preset, rcond)
    assert pr.default_recipe("x", "fast") == "lm=11" and pr.default_recipe("x", "smoke") == "lm=21"
    problems.register(pr)
    try:
        for (preset, rcond), recipe in expected.items():
            seed = init_seed.get((preset, rcond), 0)
            cfg = resolve(preset, problem=pr.name, rcond=rcond)
            assert (cfg.fit_recipe, cfg.init_seed) == (recipe, seed), (preset, rcond)
            cfg = resolve(preset, problem=pr.name, rcond=rcond, fit_recipe="default")
            assert (cfg.fit_recipe, cfg.init_seed) == (recipe, seed)
            cfg = resolve(preset, problem=pr.name, rcond=rcond, fit_recipe="default", init_seed=5)
            assert (cfg.fit_recipe, cfg.init_seed) == (recipe, 5)  # a run's own init seed wins
            cfg = resolve(preset, problem=pr.name, rcond=rcond, fit_recipe="lm=5")
            assert (cfg.fit_recipe, cfg.init_seed) == ("lm=5", 0)  # another recipe: the field's default
    finally:
        problems._REGISTRY.pop(pr.name)
    # an init seed needs a recipe at its cut-off beside it, and is a seed
    for bad, says in (
        ({"init_seed_at": {1e-5: 1}}, "init_seed_at[1e-05] needs a fit_recipe_at[1e-05] beside it"),
        ({"fit_recipe_at": {1e-5: "lm=1"}, "init_seed_at": {1e-5: -1}}, "init_seed_at[1e-05] must be an integer ≥ 0"),
    ):
        with pytest.raises(ValueError, match=re.escape(f"heat_bad: {says}")):
            dataclasses.replace(base, name="heat_bad", **bad)
        with pytest.raises(ValueError, match=re.escape(f"heat_bad --preset fast: {says}")):
            dataclasses.replace(base, name="heat_bad", presets={"fast": bad})


def test_docs_state_every_recipe_as_the_code_defines_it():
    """docs/initial-fit.md's recipe table and docs/results-schema.md's `fit_recipe` row list the named
    recipes and keys of :mod:`rsng.core.recipe`, with its values (a new recipe or key is a doc change too)."""
    import re
    from dataclasses import asdict
    from pathlib import Path

    from rsng.core.recipe import KEYS, RECIPES

    docs = Path(__file__).resolve().parents[2] / "docs"
    lines = (docs / "initial-fit.md").read_text().splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("| key | meaning |"))
    names = re.findall(r"`([^`]+)`", lines[head].split("| meaning |", 1)[1])
    assert names == list(RECIPES), names
    rows = {}
    for line in lines[head + 2 :]:
        if not line.startswith("| `"):
            break
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        rows[cells[0].strip("`")] = cells[-len(names) :]
    assert sorted(rows) == sorted(KEYS), list(rows)
    for j, name in enumerate(names):
        values = asdict(RECIPES[name])
        for key, cells in rows.items():
            assert float(cells[j].replace(" ", "")) == float(values[KEYS[key]]), (name, key, cells[j])

    schema = next(
        line for line in (docs / "results-schema.md").read_text().splitlines() if line.startswith("| `fit_recipe` |")
    )
    listed = re.search(r"a name \(([^)]*)\)", schema).group(1)
    assert re.findall(r"`([^`]+)`", listed) == list(RECIPES), listed
