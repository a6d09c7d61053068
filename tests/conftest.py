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

# Two pytest-xdist workers (`-n 2 --dist loadgroup`, pyproject.toml) take the tests one at a time. The tests that
# use one of the expensive shared fixtures below (a whole sweep, a two-node Ray cluster) form one xdist group
# per fixture and so run on one worker, where the fixture is made once; every other test goes to whichever
# worker is free. The two workers' Ray clusters may run side by side: a test starts its own embedded Ray
# (`--ray-address local`) or a cluster on ports of its own, and never joins another's.
SHARED_FIXTURES = {
    "smoke_sweep": "smoke-sweep",  # below
    "smoke_sweep_dir": "smoke-sweep",  # tests/analysis/conftest.py: the same sweep
    "search_sweep": "search-sweep",  # tests/service/test_search.py
    "s3_sweep": "s3-sweep",  # tests/service/test_object_store.py
    "local_reference": "s3-reference",  # tests/service/test_object_store.py
    "reference": "faults-reference",  # tests/service/test_faults.py
    "cluster": "two-node-cluster",  # tests/cluster/test_multinode.py
}


def xdist_group_of(item) -> str | None:
    """The xdist group of ``item``: that of the first shared fixture it uses (in SHARED_FIXTURES' order), or None."""
    used = set(item.fixturenames)
    return next((group for name, group in SHARED_FIXTURES.items() if name in used), None)


# tryfirst: pytest-xdist's worker reads the xdist_group marks in a pytest_collection_modifyitems of its own,
# and without tryfirst it runs before this one and sees none (measured: no test got its group).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    # the files with slow tests first (a stable sort: each file's tests stay together, in their order, so that a
    # module's fixtures are made once), so that in a whole-suite run no long test starts last while the other
    # worker idles (xdist hands out the groups first, largest first, then the other tests in this order)
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
    for item in items:
        group = xdist_group_of(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))


def run_sparsity(args, cwd, timeout=900):
    """``python sweeps/sparsity.py ARGS`` on an embedded single-node Ray (never another session's)."""
    env = dict(os.environ)
    return subprocess.run(
        [sys.executable, str(SPARSITY), "--ray-address", "local", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def sparsity_script():
    """The :func:`run_sparsity` runner, for tests that need their own sweep."""
    return run_sparsity


def load_script(path: Path):
    """The script at ``path`` (a sweep, benchmark or generator: files, not package modules) imported as a module
    named after its file; its ``if __name__ == "__main__"`` block does not run."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_script_{Path(path).stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def script_module():
    """:func:`load_script`, for test modules (test folders are not packages, so no imports from here)."""
    return load_script


def smoke_trajectories() -> int:
    """How many trajectories ``sweeps/sparsity.py --smoke`` runs (its grid, expanded)."""
    import argparse

    return len(load_script(SPARSITY).build(argparse.Namespace(smoke=True)).expand())


@pytest.fixture(scope="session")
def smoke_n() -> int:
    """The number of trajectories of the smoke sparsity sweep (12)."""
    return smoke_trajectories()


@pytest.fixture(scope="session")
def sweep_cache(tmp_path_factory) -> Path:
    """The θ(0), reference and JAX compilation cache of the session's sweeps: ``$RSNG_CACHE_DIR`` if set (as
    ``.ci/run`` sets it), else one folder for the session, shared by both xdist workers. Shared, as the trials
    of one node share theirs (rsng writes its entries atomically, rsng/core/files.py): a shape compiled by
    one sweep is loaded by the next (the smoke sweep measured 63 s with a cold cache, 37 s warm)."""
    if os.environ.get("RSNG_CACHE_DIR"):
        return Path(os.environ["RSNG_CACHE_DIR"])
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "sweep-cache"


@pytest.fixture(scope="session")
def smoke_sweep(tmp_path_factory, sweep_cache):
    """The real smoke sparsity sweep (12 trajectories, ≈ 1–2 min on 2 cores): (sweep folder, process, wall s)."""
    tmp = tmp_path_factory.mktemp("smoke-sweep")
    t0 = time.perf_counter()
    r = run_sparsity(["--smoke", "--storage", str(tmp / "results"), "--cache-dir", str(sweep_cache)], tmp)
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


class S3Server:
    """A real S3-compatible server — moto's server mode (``python -m moto.server``) — on 127.0.0.1 at a
    free port, in its own process, with one bucket. :meth:`env` is what a process needs to use it the
    way the AWS SDKs take it (``AWS_ENDPOINT_URL`` and dummy keys)."""

    def __init__(self, bucket: str = "rsng-test"):
        import socket
        import urllib.request

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.bucket = bucket
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.2)
        self.client().create_bucket(Bucket=bucket)

    def env(self, base: dict | None = None) -> dict:
        env = dict(os.environ if base is None else base)
        env.update(
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_EC2_METADATA_DISABLED="true",
        )
        env.pop("AWS_PROFILE", None)
        return env

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def keys(self, prefix: str) -> dict[str, int]:
        """Key → size of every object under ``prefix``."""
        out = {}
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            out.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
        return out

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="session")
def s3_server():
    """One moto S3 server for the session (tests use their own prefixes in its bucket)."""
    server = S3Server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """This process's environment pointed at :func:`s3_server` (and rsng's per-bucket file systems reset)."""
    from rsng.results import fs

    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setattr(fs, "_FILESYSTEMS", {})
    return s3_server
