"""Sweep definitions are validated before anything runs (no Ray needed here)."""

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rsng.service.spec import GRID_KEYS, SweepSpec, SweepSpecError

ROOT = Path(__file__).resolve().parents[2]


def test_expand_is_deterministic_and_deduplicates():
    spec = SweepSpec("t", grid={"problem": ["heat"], "s": [10, "dense"], "sampler": ["uniform", "column_norm"]},
                     fixed={"preset": "smoke"})
    trials = spec.expand()
    assert [t.trial_id for t in trials] == [t.trial_id for t in spec.expand()]
    # (uniform, dense) and (column_norm, dense) are the same run
    assert len(trials) == 3
    assert len({t.trial_id for t in trials}) == 3


@pytest.mark.parametrize("spec,key,fragment", [
    (SweepSpec("t", grid={"problem": ["heat"], "colour": ["red"]}), "colour", "unknown grid key"),
    (SweepSpec("t", grid={"problem": []}), "problem", "empty"),
    (SweepSpec("t", grid={"problem": ["nope"]}), "problem", "accepted"),
    (SweepSpec("t", grid={"problem": ["heat"], "s": [10, -1]}, fixed={"preset": "smoke"}), "s", "≥ 1"),
    (SweepSpec("t", grid={"problem": ["heat"], "dt": [float("nan")]}), "dt", "finite"),
    (SweepSpec("t", grid={"problem": ["heat"], "seed": [0, 0]}), "seed", "duplicate"),
    (SweepSpec("t", grid={"problem": ["heat"], "sampler": ["uniform"]}, fixed={"sampler": "dense"}), "sampler", "both"),
    (SweepSpec("t", grid={"sampler": ["uniform"]}), "problem", "required"),
    (SweepSpec("../evil", grid={"problem": ["heat"]}), "name", "letters"),
    (SweepSpec("t", grid={"problem": "heat"}), "problem", "list"),
])
def test_bad_specs_name_the_key(spec, key, fragment):
    with pytest.raises(SweepSpecError) as e:
        spec.expand()
    assert e.value.key == key and fragment in str(e.value)


def test_huge_grid_needs_confirmation():
    spec = SweepSpec("t", grid={"problem": ["heat"], "seed": list(range(1000)), "init_seed": list(range(1000))})
    with pytest.raises(SweepSpecError, match="--yes"):
        spec.expand()


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(GRID_KEYS + ("bogus",)),
                       st.lists(st.one_of(st.integers(-5, 5000), st.floats(allow_nan=True), st.sampled_from(
                           ["heat", "uniform", "dense", "f32", "rk4", "smoke", "x"])), max_size=3), max_size=4))
def test_validator_either_expands_or_names_a_key(grid):
    spec = SweepSpec("prop", grid=grid, fixed={} if "problem" in grid else {"problem": "heat"})
    try:
        trials = spec.expand()
    except SweepSpecError as e:
        assert e.key in GRID_KEYS + ("bogus", "grid", "name") or e.key.startswith("--")
        return
    assert 1 <= len(trials) <= spec.size


def _run_script(args, tmp_path):
    return subprocess.run([sys.executable, str(ROOT / "sweeps" / "sparsity.py"), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args,fragment", [
    (["--smoke", "--mlflow-uri", "ftp://x"], "--mlflow-uri"),
    (["--smoke", "--cpus-per-trial", "0"], "--cpus-per-trial"),
    (["--smoke", "--gpus-per-trial", "-1"], "--gpus-per-trial"),
    (["--smoke", "--max-concurrent", "0"], "--max-concurrent"),
    (["--smoke", "--storage", "afile"], "--storage"),
    (["--smoke", "--cpus-per-trial", "abc"], "--cpus-per-trial"),
])
def test_sweep_script_refuses_bad_options_before_starting(args, fragment, tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    r = _run_script(args, tmp_path)
    assert r.returncode == 2, r.stderr
    assert fragment in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "results").exists()  # nothing written


@pytest.mark.parametrize("script", ["sparsity", "samplers", "architecture", "table1"])
@pytest.mark.parametrize("smoke", [True, False])
def test_every_sweep_script_validates_its_grid(script, smoke, tmp_path):
    args = [sys.executable, str(ROOT / "sweeps" / f"{script}.py"), "--dry-run", "--storage", str(tmp_path / "r")]
    r = subprocess.run(args + (["--smoke"] if smoke else []), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    n = int(r.stdout.strip().splitlines()[-1].split()[0])
    assert n >= (2 if smoke else 12)
    assert "ray" not in r.stderr.lower()


def test_a_trial_lost_for_good_is_recorded_as_failed_once(tmp_path):
    # what the driver does when Tune gives up on a trial whose process kept dying
    from rsng.results import load
    from rsng.service.runner import Prepared, SweepOptions, _record_lost_trial, _trial_payload

    spec = SweepSpec("lost", grid={"problem": ["heat"]}, fixed={"preset": "smoke"})
    t = spec.expand()[0]
    prep = Prepared(spec, [t], tmp_path, "sqlite:///unused", [t], set())
    payload = _trial_payload(t, prep, SweepOptions(), {"rsng_version": "0", "git_sha": None, "jax_version": "0"})
    for _ in range(2):  # a second call must not add or overwrite
        _record_lost_trial(payload, "trial process failed 3 times")
    df = load(tmp_path).trajectories
    assert len(df) == 1 and df.loc[0, "status"] == "failed" and "failed 3 times" in df.loc[0, "error_message"]
    assert df.loc[0, "trial_id"] == t.trial_id and df.loc[0, "s"] == t.config.s
