"""The rsng command line: one clear line and exit code 2 for bad input, before any computation."""

import json
import subprocess
import sys

import numpy as np
import pytest

from rsng.cli import main

BAD = [
    (["solve", "--problem", "navier"], "--problem", "allen_cahn"),
    (["solve", "--problem", "allen_cahn", "--sampler", "best"], "--sampler", "uniform"),
    (["solve", "--problem", "allen_cahn", "--sparsity", "0"], "--sparsity", "≥ 1"),
    (["solve", "--problem", "allen_cahn", "--sparsity", "99999"], "--sparsity", "≤ p=3393"),
    (["solve", "--problem", "allen_cahn", "--n", "0"], "--n", "≥ 1"),
    (["solve", "--problem", "allen_cahn", "--dt", "-1"], "--dt", "> 0"),
    (["solve", "--problem", "allen_cahn", "--dt", "nan"], "--dt", "finite"),
    (["solve", "--problem", "allen_cahn", "--t-end", "-2"], "--t-end", "≥ 0"),
    (["solve", "--problem", "allen_cahn", "--depth", "1"], "--depth", "≥ 2"),
    (["solve", "--problem", "allen_cahn", "--precision", "f16"], "--precision", "f32, f64"),
    (["solve", "--problem", "allen_cahn", "--rcond", "inf"], "--rcond", "finite"),
    (["solve", "--problem", "allen_cahn", "--seed", "-3"], "--sketch-seed", "≥ 0"),
    (["solve", "--problem", "vlasov", "--n", "1000"], "--n", "perfect"),
    (["solve", "--problem", "allen_cahn", "--threads", "0"], "--threads", "≥ 1"),
    (["reference", "--problem", "nope"], "--problem", "accepted"),
    (["fit", "--problem", "allen_cahn", "--lm-steps", "-1"], "--lm-steps", "≥ 0"),
    (["fit", "--problem", "allen_cahn", "--width", "0"], "--width", "≥ 1"),
    (["solve", "--problem", "heat", "--lstsq", "chol"], "--lstsq", "qr, svd, gram"),
    (["solve", "--problem", "heat", "--integrator", "rk5"], "--integrator", "rk4, euler"),
    (["solve", "--problem", "heat", "--t-end", "nan"], "--t-end", "finite"),
    (["solve", "--problem", "heat", "--save-every", "0"], "--save-every", "≥ 1"),
    (["solve", "--problem", "heat", "--sampler", "dense", "--sparsity", "10"], "--sparsity", "dense"),
    (["solve", "--problem", "heat", "--init-seed", "-1"], "--init-seed", "≥ 0"),
    (["solve", "--problem", "heat", "--theta0", "t.npy", "--init-seed", "1"], "--theta0", "--init-seed cannot be"),
    (["solve", "--problem", "heat", "--theta0", "t.npy", "--fit-recipe", "rich"], "--theta0", "--fit-recipe cannot"),
    (["reference", "--problem", "heat", "--n", "0"], "--n", "≥ 1"),
    (["reference", "--problem", "heat", "--dt", "nan"], "--dt", "finite"),
    (["reference", "--problem", "heat", "--threads", "0"], "--threads", "≥ 1"),
    (["fit", "--problem", "nope"], "--problem", "accepted"),
    (["fit", "--problem", "heat", "--adam-steps", "-2"], "--adam-steps", "≥ 0"),
    (["fit", "--problem", "heat", "--fit-recipe", "nope"], "--fit-recipe", "accepted: a recipe name"),
    (["fit", "--problem", "burgers", "--rcond", "2"], "--rcond", "< 1"),
    (["solve", "--problem", "heat", "--fit-recipe", "lm=1.5"], "--fit-recipe", "integer"),
    (["mlflow-sync", "/nonexistent/sweep"], "sweep_dir", "not a sweep folder"),
    (["pareto", "/nonexistent/sweep"], "sweep_dir", "not a sweep folder"),
    (["report", "/nonexistent/sweep", "--out", "/nonexistent/report"], "sweep_dir", "not a sweep folder"),
]


@pytest.mark.parametrize("argv,option,fragment", BAD, ids=[" ".join(b[0][:1] + b[0][3:]) for b in BAD])
def test_bad_input_is_one_line_and_exit_2(argv, option, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and option in err[0] and fragment in err[0], err


@pytest.mark.parametrize(
    "argv,option",
    [
        (["solve", "--problem", "allen_cahn", "--n", "abc"], "--n"),
        (["solve", "--problem", "allen_cahn", "--sparsity", "most"], "--sparsity"),
        (["solve", "--problem", "allen_cahn", "--preset", "turbo"], "--preset"),
        (["solve"], "--problem"),
        (["solve", "--problem", "heat", "--width", "nan"], "--width"),
        (["fit", "--problem", "heat", "--lbfgs-steps", "x"], "--lbfgs-steps"),
        (["problems", "--bogus"], "--bogus"),
        (["mlflow-sync"], "sweep_dir"),
        (["pareto"], "sweep_dir"),
        (["report", "somewhere"], "--out"),
        (["teleport"], "teleport"),
    ],
)
def test_malformed_values_exit_2(argv, option, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and option in capsys.readouterr().err


#: Bad paths and URIs ({file}: an existing file, {sweep}: an empty sweep folder, {tmp}: a folder holding an
#: .npy of 3 numbers and an .npz without 'theta').
BAD_PATHS = [
    (["solve", "--problem", "heat", "--preset", "smoke", "--cache-dir", "{file}"], "--cache-dir"),
    (["solve", "--problem", "heat", "--preset", "smoke", "--out", "{file}"], "--out"),
    (["solve", "--problem", "heat", "--preset", "smoke", "--out", "{file}/run"], "--out"),
    (["solve", "--problem", "heat", "--preset", "smoke", "--theta0", "{file}"], "--theta0"),
    (["solve", "--problem", "heat", "--preset", "smoke", "--theta0", "{tmp}"], "--theta0"),
    (["solve", "--problem", "heat", "--preset", "smoke", "--theta0", "{tmp}/missing.npy"], "--theta0"),
    (["solve", "--problem", "heat", "--preset", "smoke", "--theta0", "{tmp}/short.npy"], "--theta0"),
    (["solve", "--problem", "heat", "--preset", "smoke", "--theta0", "{tmp}/nokey.npz"], "--theta0"),
    (["reference", "--problem", "heat", "--preset", "smoke", "--cache-dir", "{file}/sub"], "--cache-dir"),
    (["reference", "--problem", "heat", "--preset", "smoke", "--out", "{file}/ref.npz"], "--out"),
    (["reference", "--problem", "heat", "--preset", "smoke", "--out", "{tmp}"], "--out"),
    (["fit", "--problem", "heat", "--preset", "smoke", "--cache-dir", "{file}"], "--cache-dir"),
    (["mlflow-sync", "{file}"], "sweep_dir"),
    (["mlflow-sync", "{sweep}", "--mlflow-uri", "ftp://host/x"], "--mlflow-uri"),
    (["mlflow-sync", "{sweep}", "--mlflow-uri", "sqlite://"], "--mlflow-uri"),
    (["mlflow-sync", "{sweep}", "--mlflow-uri", "http://"], "--mlflow-uri"),
    (["pareto", "{file}"], "sweep_dir"),
    (["pareto", "{sweep}", "--plot", "{file}/front.png"], "--plot"),
    (["report", "{sweep}", "--out", "{file}/report"], "--out"),
    (["report", "{sweep}", "--out", "{tmp}/report", "--cache-dir", "{file}"], "--cache-dir"),
]


@pytest.mark.parametrize("argv,option", BAD_PATHS, ids=[" ".join(b[0][:1] + b[0][-2:]) for b in BAD_PATHS])
def test_bad_paths_exit_2_and_write_nothing(argv, option, tmp_path, monkeypatch, capsys):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "sweep" / "trajectories").mkdir(parents=True)
    np.save(tmp_path / "short.npy", np.zeros(3))
    np.savez(tmp_path / "nokey.npz", x=np.zeros(3))
    monkeypatch.chdir(tmp_path)
    before = sorted((str(p), p.stat().st_mtime_ns if p.is_file() else 0) for p in tmp_path.rglob("*"))
    argv = [a.format(file=tmp_path / "afile", sweep=tmp_path / "sweep", tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    cap = capsys.readouterr()
    err = cap.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"rsng {argv[0]}: error: {option}"), cap.err
    assert cap.out == ""
    assert sorted((str(p), p.stat().st_mtime_ns if p.is_file() else 0) for p in tmp_path.rglob("*")) == before


def test_problems_lists_each_default_recipe(capsys):
    # the --fit-recipe help sends users here for the defaults, so they come from the registry
    from rsng.core.problems import get_problem, problem_names

    assert main(["problems"]) == 0
    blocks: dict[str, list[str]] = {}
    for line in capsys.readouterr().out.splitlines():
        if not line.startswith(" "):
            blocks[line] = []
        else:
            blocks[list(blocks)[-1]].append(line.strip())
    assert list(blocks) == list(problem_names())
    for name, lines in blocks.items():
        pr = get_problem(name)
        (line,) = [ln for ln in lines if ln.startswith("fit_recipe=")]
        assert line.startswith(f"fit_recipe={pr.fit_recipe}")
        assert all(f"at rcond {r:g}: {rec}" in line for r, rec in pr.fit_recipe_at.items())
        assert all(f"at rcond {r:g}: {pr.fit_recipe_at[r]} (init_seed={k})" in line for r, k in pr.init_seed_at.items())
        for preset, own in pr.presets.items():  # a preset's recipes, its own and at a cut-off
            (line,) = [ln for ln in lines if ln.startswith(f"--preset {preset}: ")]
            assert "_at" not in line and "mappingproxy" not in line
            assert ("fit_recipe" in own) == (f"fit_recipe={own.get('fit_recipe')}" in line)
            assert all(f"at rcond {r:g}: fit_recipe={rec}" in line for r, rec in own.get("fit_recipe_at", {}).items())
            for r, k in own.get("init_seed_at", {}).items():  # the init seed of a default fit, where not 0
                assert f"at rcond {r:g}: fit_recipe={own['fit_recipe_at'][r]} (init_seed={k})" in line
    assert "fit_recipe=adam-lm,lr=1e-3, at rcond 0.0001: adam-lm,lr=1e-3,embed=3" in blocks["burgers"]


def test_a_reader_that_goes_away_stops_the_command_quietly():
    """``rsng problems | head -3``: the write into a pipe whose reader has gone fails, and rsng stops with
    128 + SIGPIPE and no traceback (the read end is closed before rsng starts, so the write always fails)."""
    import os
    import subprocess
    import sys

    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run(
            [sys.executable, "-c", "import sys; from rsng.cli import main; sys.exit(main(['problems']))"],
            stdout=w,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(w)
    assert p.returncode == 141 and p.stderr == "", (p.returncode, p.stderr[-2000:])


def test_fit_takes_the_default_recipe_of_the_cut_off(tmp_path, capsys):
    # allen_cahn and burgers at the paper's cut-off have a default recipe of their own, shipped: no fit runs
    from rsng.core.problems import get_problem
    from rsng.core.recipe import describe, parse

    for name in ("allen_cahn", "burgers"):
        pr = get_problem(name)
        assert pr.default_recipe(1e-4, "fast") != pr.fit_recipe
        argv = ["fit", "--problem", name, "--preset", "fast", "--cache-dir", str(tmp_path), "--json"]
        for rcond, recipe in ((None, pr.fit_recipe), (1e-4, pr.default_recipe(1e-4, "fast"))):
            assert main(argv + ([] if rcond is None else ["--rcond", str(rcond)])) == 0
            out = json.loads(capsys.readouterr().out)
            assert out["source"] == "shipped" and out["recipe"] == describe(parse(recipe))
            assert out["j0_rank@0.0001"] > 0 and out["j0_rank@1e-05"] >= out["j0_rank@0.0001"]
    assert not any(tmp_path.rglob("*.npz"))  # nothing fitted into the cache


def test_fit_reports_its_progress_on_stderr_and_json_stays_quiet(tmp_path, capsys):
    argv = ["fit", "--problem", "heat", "--preset", "smoke", "--depth", "3", "--width", "6", "--n", "32"]
    argv += ["--fit-recipe", "lbfgs=25,lm=2,adam=40,lr=3e-3", "--cache-dir", str(tmp_path)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    progress = [ln for ln in captured.err.splitlines() if ln.startswith(("  L-BFGS ", "  Adam "))]
    assert progress[-1].startswith("  Adam     40/40: loss ") and progress[-1].endswith("s left")
    assert sum(ln.startswith("  L-BFGS ") for ln in progress) == 20 and "source          fitted" in captured.out
    assert main(argv + ["--json", "--refit"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and json.loads(captured.out)["source"] == "fitted"


def test_solve_json_is_exactly_one_object(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "rsng.cli",
            "solve",
            "--problem",
            "heat",
            "--preset",
            "smoke",
            "--json",
            "--out",
            str(tmp_path / "run"),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)  # the whole stdout is one JSON object
    for key in (
        "problem",
        "sampler",
        "s",
        "p",
        "n",
        "depth",
        "width",
        "dt",
        "t_end",
        "seed",
        "precision",
        "rel_l2",
        "rel_l2_t0",
        "wall_s",
        "compile_s",
        "steps",
        "status",
    ):
        assert key in d
    assert d["status"] == "ok" and d["steps"] == 50 and d["rel_l2"] < 1e-4
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"summary.json", "series.csv", "theta_final.npy", "error.png"} <= files
    assert (tmp_path / "run" / "error.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import pandas as pd

    series = pd.read_csv(tmp_path / "run" / "series.csv")
    assert list(series.columns) == [
        "step", "t", "rel_l2_t", "ls_residual", "ls_rank", "ls_sigma_max", "ls_sigma_min_kept", "wall_s_cumulative"
    ]  # fmt: skip
    stepped = series[series["step"] > 0]  # t = 0 has no least squares: NaN there
    assert len(stepped) == 50 and series["ls_rank"].iloc[0] != series["ls_rank"].iloc[0]
    assert (stepped["ls_rank"] >= 1).all() and (stepped["ls_rank"] <= d["s"]).all()
    assert (stepped["ls_sigma_min_kept"] <= stepped["ls_sigma_max"]).all()


def test_diverged_run_exits_1_with_status(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "rsng.cli",
            "solve",
            "--problem",
            "heat",
            "--preset",
            "smoke",
            "--dt",
            "20",
            "--t-end",
            "2000",
            "--sparsity",
            "dense",
            "--json",
            "--cache-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    d = json.loads(out.stdout)
    # explicit RK4 at δt = 20 on u_t = 0.1 u_xx (δt = 5 diverged on one VM's CPU and stayed bounded, error
    # 1.08, on an AMD EPYC's; δt = 10 diverges at the first step on the latter)
    assert out.returncode == 1 and d["status"] == "diverged"
    assert d["diverged_step"] >= 1 and d["rel_l2"] is None and d["steps"] == d["diverged_step"] - 1
