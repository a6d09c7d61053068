"""Test-session setup: threads sized before JAX loads; ONE real smoke sweep shared by the session."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rsng.core.threads import configure_threads

configure_threads(1)

ROOT = Path(__file__).resolve().parents[1]
SPARSITY = ROOT / "sweeps" / "sparsity.py"


def run_sparsity(args, cwd, timeout=900):
    """``python sweeps/sparsity.py ARGS`` on an embedded single-node Ray (never another session's)."""
    env = dict(os.environ)
    return subprocess.run([sys.executable, str(SPARSITY), "--ray-address", "local", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def sparsity_script():
    """The :func:`run_sparsity` runner, for tests that need their own sweep."""
    return run_sparsity


def smoke_trajectories() -> int:
    """How many trajectories ``sweeps/sparsity.py --smoke`` runs (its grid, expanded)."""
    import argparse
    import importlib.util

    spec = importlib.util.spec_from_file_location("_sparsity_sweep", SPARSITY)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return len(mod.build(argparse.Namespace(smoke=True)).expand())


@pytest.fixture(scope="session")
def smoke_n() -> int:
    """The number of trajectories of the smoke sparsity sweep (12)."""
    return smoke_trajectories()


@pytest.fixture(scope="session")
def smoke_sweep(tmp_path_factory):
    """The real smoke sparsity sweep (12 trajectories, ≈ 1–2 min on 2 cores): (sweep folder, process, wall s)."""
    tmp = tmp_path_factory.mktemp("smoke-sweep")
    t0 = time.perf_counter()
    r = run_sparsity(["--smoke", "--storage", str(tmp / "results"), "--cache-dir", str(tmp / "cache")], tmp)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return tmp / "results" / "sparsity-smoke", r, time.perf_counter() - t0


@pytest.fixture(scope="session")
def template_db(tmp_path_factory) -> Path:
    """An empty, fully migrated MLflow sqlite database, copied by the tests that need a store
    (migrations take 5–15 s on a busy 2-core machine, so they are paid once per session)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path
