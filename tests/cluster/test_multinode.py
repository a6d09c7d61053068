"""The smoke sparsity sweep on a real two-node Ray cluster on this one machine, as on a cloud cluster.

The fixture starts what ``cluster/gpu.yaml`` starts, on this machine: a head node (``ray start
--head``, 1 CPU, with the dashboard and its job server) and one worker node (``ray start
--address``, 1 CPU), each with its own temp dir, ports and process group, token authentication on
(a throw-away token in the environment, so ``~/.ray/auth_token`` is never touched), and the MLflow
tracking server of ``cluster/mlflow-server.sh`` with its store in the "shared" folder. Then:

* as ``ray submit`` runs it: the script alone, copied out of the repository and run as
  ``python ~/sparsity.py …`` on the head node, attaching to the running cluster (``RAY_ADDRESS``).
  All 12 trajectories must reach the shared results folder, MLflow must hold one parent and 12
  finished child runs, and the trials must have run on both nodes;
* ``ray job submit --working-dir . -- python sweeps/sparsity.py … --resume`` through the dashboard:
  the finished sweep is continued, nothing reruns, nothing is logged twice;
* (``slow``) a whole sweep through ``ray job submit``, with the same checks as the first except where
  the trials ran; in the same job, tasks pinned one to each node first find the job's working dir
  unpacked on their node;
* (``slow``) the script with ``--storage s3://…``: results, states and Tune's experiment state in a
  bucket of a real S3-compatible server (moto's server mode on 127.0.0.1, tests/conftest.py), which
  every node reaches through the AWS variables in its environment, as a cloud node through its role.
  The head node's CPU is held by a pinned actor for this sweep (:func:`_hold_cpu`), so every trial
  runs on the worker node and writes from there.

Where Tune runs trials is a race when they are short: with ``reuse_actors`` (rsng/service/runner.py:
a trial's process keeps its compiled solver for the next trial) a trial whose new actor is still
starting takes a finished trial's actor instead, and the actor that was starting is removed
(``TuneController._maybe_reuse_cached_actor`` in Ray 2.60). A smoke trial lasts a second or two once
the solver is compiled, so when the worker node's first actor starts slowly under load, the head's
actor can run all 12. The module's first sweep (its first trials wait for the reference solutions,
computed then, and its sweep took 46–76 s here against 26–64 s for the later ones) has put trials on
both nodes in every run seen so far, and asserts both nodes. The later sweeps print where their
trials ran (``ray job submit``) or take the head's CPU away (S3, whose trials all ran on the head
once in CI, 2026-12-05).

The trajectories carry no node column, so the node of a trial is found from its process id: Tune's
experiment state (``result.json`` in the sweep's ``_ray/`` folder) gives each trial's pid; the
pid's worker log (``worker-<id>-<job>-<pid>.out``) lies in the temp dir of the node that ran it;
and the state API (``ray.util.state.list_actors``, served by the dashboard) gives each trial
actor's pid and node id, a cross-check (its listing came back short a few times under load here,
so it is not the primary source).

Every process started here is stopped in the fixture's teardown (by process tree, never
``ray stop``, which would end every Ray instance on the machine). Timings on the 2-core machine are
in the module's printed output (``pytest -s``).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NODES = ("head", "worker")


def _free_port() -> int:
    """A free TCP port outside Ray's default worker-port range (10002–19999)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not 10002 <= port <= 19999:
            return port


@dataclass
class LocalCluster:
    gcs: str  # 127.0.0.1:PORT, what RAY_ADDRESS holds on a cluster node
    dashboard: str  # http://127.0.0.1:PORT
    temp_dirs: dict[str, Path]  # node name -> its Ray temp dir
    shared: Path  # the "shared file system" of the cluster
    cache: Path
    home: Path  # the head node's home, where `ray submit` puts the script
    mlflow_uri: str
    env: dict[str, str]
    procs: list[subprocess.Popen] = field(default_factory=list)

    def run(self, args, cwd, timeout=420, **env) -> subprocess.CompletedProcess:
        return subprocess.run(args, cwd=cwd, env={**self.env, **env}, capture_output=True, text=True, timeout=timeout)

    def sweep_args(self, *extra: str) -> list[str]:
        return [
            "--smoke",
            "--cache-dir",
            str(self.cache),
            "--storage",
            str(self.shared / "rsng" / "results"),
            "--mlflow-uri",
            self.mlflow_uri,
            *extra,
        ]


def _count_nodes(gcs: str, env: dict) -> int:
    r = subprocess.run(
        [str(BIN / "ray"), "status", "--address", gcs], env=env, capture_output=True, text=True, timeout=60
    )
    if r.returncode != 0 or "Active:" not in r.stdout:
        return 0
    active = r.stdout.split("Active:")[1].split("Pending:")[0]
    return sum(1 for line in active.splitlines() if " node_" in line)


def _alive(proc) -> bool:
    try:  # an orphaned zombie is gone for our purposes (PID 1 may never reap it in a container)
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _stop_trees(procs: list[subprocess.Popen], grace: float = 3.0) -> None:
    """SIGTERM each started process and all its descendants (the raylet's workers and a job's
    driver included), SIGKILL what is left after ``grace`` seconds (a raylet drains for ≈ 10 s and
    the GCS ignores SIGTERM while `ray start --block` lives; nothing of a test cluster is kept)."""
    tree = []
    for p in procs:
        try:
            root = psutil.Process(p.pid)
            tree += [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    for proc in tree:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    deadline = time.monotonic() + grace
    while any(_alive(proc) for proc in tree) and time.monotonic() < deadline:
        time.sleep(0.2)
    for proc in tree:
        if _alive(proc):
            try:
                proc.kill()
            except psutil.Error:
                pass
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, s3_server):
    tmp = tmp_path_factory.mktemp("cluster")
    # Ray's socket paths (AF_UNIX: at most 107 bytes) live in its temp dir: keep that path short.
    ray_tmp = Path(tempfile.mkdtemp(prefix="rsng-ray-", dir="/tmp"))
    ports = {k: _free_port() for k in ("gcs", "dashboard", "agent_head", "agent_worker", "mlflow")}
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",  # `python` and `ray` of this venv, as on a node
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": uuid.uuid4().hex,  # token auth on, as in cluster/*.yaml
            "RAY_USAGE_STATS_ENABLED": "0",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "RSNG_MLFLOW_HOST": "127.0.0.1",
            "RSNG_MLFLOW_PORT": str(ports["mlflow"]),
            "RSNG_MLFLOW_STATE": str(tmp / "mlflow-state"),
        }
    )
    env = s3_server.env(env)  # every node reaches the test's S3 server (its "instance role")
    c = LocalCluster(
        gcs=f"127.0.0.1:{ports['gcs']}",
        dashboard=f"http://127.0.0.1:{ports['dashboard']}",
        temp_dirs={n: ray_tmp / n for n in NODES},
        shared=tmp / "shared",
        cache=tmp / "cache",
        home=tmp / "home",
        mlflow_uri=f"http://127.0.0.1:{ports['mlflow']}",
        env=env,
    )
    c.home.mkdir()
    logs = tmp / "logs"
    logs.mkdir()
    log_files = []

    def log(name: str):
        log_files.append(open(logs / name, "w"))
        return log_files[-1]

    common = ["--block", "--num-cpus", "1", "--disable-usage-stats"]
    mlflow_start = None
    try:
        t0 = time.monotonic()
        # MLflow first: its start (≈ 10–15 s) overlaps with Ray's.
        mlflow_start = subprocess.Popen(
            ["bash", str(ROOT / "cluster" / "mlflow-server.sh"), "start", str(c.shared / "rsng" / "mlflow")],
            env=env,
            stdout=log("mlflow-start.log"),
            stderr=subprocess.STDOUT,
        )
        c.procs.append(
            subprocess.Popen(
                [
                    str(BIN / "ray"),
                    "start",
                    "--head",
                    *common,
                    "--port",
                    str(ports["gcs"]),
                    "--temp-dir",
                    str(c.temp_dirs["head"]),
                    "--dashboard-host",
                    "127.0.0.1",
                    "--dashboard-port",
                    str(ports["dashboard"]),
                    "--dashboard-agent-listen-port",
                    str(ports["agent_head"]),
                ],
                env=env,
                stdout=log("head.log"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        deadline = time.monotonic() + 120
        while _count_nodes(c.gcs, env) < 1:
            assert time.monotonic() < deadline and c.procs[0].poll() is None, (logs / "head.log").read_text()[-3000:]
            time.sleep(1)
        c.procs.append(
            subprocess.Popen(
                [
                    str(BIN / "ray"),
                    "start",
                    *common,
                    "--address",
                    c.gcs,
                    "--temp-dir",
                    str(c.temp_dirs["worker"]),
                    "--dashboard-agent-listen-port",
                    str(ports["agent_worker"]),
                ],
                env=env,
                stdout=log("worker.log"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        while _count_nodes(c.gcs, env) < 2:
            assert time.monotonic() < deadline and c.procs[1].poll() is None, (logs / "worker.log").read_text()[-3000:]
            time.sleep(1)
        assert mlflow_start.wait(timeout=120) == 0, (logs / "mlflow-start.log").read_text()
        print(f"\ntwo-node cluster and MLflow server up in {time.monotonic() - t0:.0f} s")
        yield c
    finally:
        t0 = time.monotonic()
        if mlflow_start is not None:
            if mlflow_start.poll() is None:
                mlflow_start.wait(timeout=120)
            subprocess.run(["bash", str(ROOT / "cluster" / "mlflow-server.sh"), "stop"], env=env, timeout=60)
        _stop_trees(c.procs)
        for f in log_files:
            f.close()
        shutil.rmtree(ray_tmp, ignore_errors=True)
        print(f"\ncluster stopped in {time.monotonic() - t0:.0f} s")


# ---------------------------------------------------------------- checks


def _trial_pids(sweep_dir) -> dict[str, int]:
    """trial_id -> pid of the process that ran it, from Tune's experiment state (result.json), on
    the shared folder or in the bucket."""
    from rsng.results import ObjectPath

    if isinstance(sweep_dir, ObjectPath):
        from pyarrow.fs import FileSelector

        infos = sweep_dir.fs.get_file_info(FileSelector((sweep_dir / "_ray").path, recursive=True))
        texts = [
            (sweep_dir / i.path[len(sweep_dir.path) + 1 :]).read_text()
            for i in infos
            if i.path.endswith("/result.json")
        ]
    else:
        texts = [p.read_text() for p in sweep_dir.glob("_ray/*/*/result.json")]
    out = {}
    for text in texts:
        last = json.loads(text.strip().splitlines()[-1])
        out[last["config"]["trial"]["trial_id"]] = last["pid"]
    return out


def _nodes_by_worker_logs(cluster: LocalCluster, pids: dict[str, int]) -> dict[str, str]:
    """trial_id -> node name: the node whose log folder holds the worker log of the trial's pid."""
    out = {}
    for trial_id, pid in pids.items():
        hits = [n for n, d in cluster.temp_dirs.items() if list(d.glob(f"session_*/logs/worker-*-{pid}.out"))]
        assert len(hits) == 1, (trial_id, pid, hits)
        out[trial_id] = hits[0]
    return out


STATE_QUERY = """
import json, sys
from ray.util.state import list_actors
actors = list_actors(address=sys.argv[1], detail=True, limit=10000)
print(json.dumps({a.pid: a.node_id for a in actors if a.class_name == "ImplicitFunc" and a.pid}))
"""


def _node_ids_by_state_api(cluster: LocalCluster) -> dict[int, str]:
    """pid -> Ray node id of every trial actor the state API lists (in a subprocess: it needs the
    cluster's token in its environment). Best effort: on this busy 2-core machine the listing has
    come back short or empty a few times, so it only cross-checks the worker-log attribution."""
    r = cluster.run([sys.executable, "-c", STATE_QUERY, cluster.dashboard], cwd=cluster.home, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return {int(k): v for k, v in json.loads(r.stdout.strip().splitlines()[-1]).items()}


def _check_sweep(cluster: LocalCluster, name: str, output: str, storage=None, on: tuple | None = NODES) -> None:
    """All 12 trajectories ok, each trial found on exactly one node, the trials together on exactly
    the nodes ``on`` (not checked when ``None``), one MLflow parent with the 12 children, all finished."""
    from mlflow import MlflowClient

    from rsng.results import load, storage_path

    sweep_dir = storage_path(storage or cluster.shared / "rsng" / "results") / name
    df = load(sweep_dir, with_steps=False).trajectories
    assert len(df) == 12 and df["trial_id"].is_unique and (df["status"] == "ok").all(), (
        df[["trial_id", "status", "error_message"]].to_string() + output[-3000:]
    )
    assert df["device"].str.startswith("cpu").all()

    pids = _trial_pids(sweep_dir)
    assert sorted(pids) == sorted(df["trial_id"])
    by_logs = _nodes_by_worker_logs(cluster, pids)
    if on is not None:
        assert set(by_logs.values()) == set(on), by_logs
    # cross-check: trials the logs put on one node have one Ray node id, different nodes different ids
    node_of_pid = _node_ids_by_state_api(cluster)
    listed = {t: node_of_pid[p] for t, p in pids.items() if p in node_of_pid}
    ids_of = {n: {listed[t] for t in listed if by_logs[t] == n} for n in NODES}
    assert all(len(ids) <= 1 for ids in ids_of.values()) and not (ids_of["head"] & ids_of["worker"]), (by_logs, listed)
    print(
        f"\n{name}: trials per node {dict((n, list(by_logs.values()).count(n)) for n in NODES)}; "
        f"the state API listed {len(listed)} of {len(pids)} trial actors"
    )

    client = MlflowClient(tracking_uri=cluster.mlflow_uri)
    exp = client.get_experiment_by_name(f"rsng/{name}")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("rsng.kind") == "parent"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert len(parents) == 1 and sorted(r.data.tags["rsng.trial_id"] for r in children) == sorted(df["trial_id"])
    assert all(r.info.status == "FINISHED" for r in runs)
    assert (cluster.shared / "rsng" / "mlflow" / "mlflow.db").is_file()


@pytest.fixture(scope="module")
def script_sweep(cluster):
    """What `ray submit cluster/gpu.yaml sweeps/sparsity.py -- …` does on the head node: the script
    alone, copied to the home folder and run as `python ~/sparsity.py …` with the node's environment
    (RAY_ADDRESS: this test's cluster, not whatever else runs on the machine)."""
    script = cluster.home / "sparsity.py"
    shutil.copy(ROOT / "sweeps" / "sparsity.py", script)
    # and the repository where `ray up` puts it (file_mounts of cluster/gpu.yaml): a folder there
    # can shadow the installed package, since ~ is first on the script's sys.path
    for remote, local in yaml.safe_load((ROOT / "cluster" / "gpu.yaml").read_text())["file_mounts"].items():
        if (ROOT / local).resolve() == ROOT:
            target = cluster.home / remote.removeprefix("~/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(ROOT, target_is_directory=True)
    t0 = time.monotonic()
    r = cluster.run(["python", str(script), *cluster.sweep_args()], cwd=cluster.home, RAY_ADDRESS=cluster.gcs)
    print(f"\nsweep via the script on the head node: {time.monotonic() - t0:.0f} s")
    return r


@pytest.mark.slow  # ≈ 90 s: the two-node cluster and a whole sweep; keeps the default suite near 15 min
def test_script_on_the_head_node_runs_trials_on_both_nodes(cluster, script_sweep):
    out = script_sweep.stdout + script_sweep.stderr
    assert script_sweep.returncode == 0, out[-5000:]
    assert "embedded single-node Ray" not in out
    _check_sweep(cluster, "sparsity-smoke", out)


@pytest.mark.slow  # shares the cluster fixture with the slow tests above
def test_ray_job_submit_resume_skips_finished_trajectories(cluster, script_sweep):
    """`ray job submit --working-dir .` (the job server, token auth over HTTP, the node's `python`),
    continuing the finished sweep above with --resume: nothing reruns, nothing is logged twice."""
    sweep_dir = cluster.shared / "rsng" / "results" / "sparsity-smoke"
    before = {p.name: p.stat().st_mtime_ns for p in (sweep_dir / "trajectories").glob("*.parquet")}
    assert len(before) == 12
    t0 = time.monotonic()
    r = cluster.run(
        [
            "ray",
            "job",
            "submit",
            "--address",
            cluster.dashboard,
            "--working-dir",
            ".",
            "--",
            "python",
            "sweeps/sparsity.py",
            *cluster.sweep_args("--resume"),
        ],
        cwd=ROOT,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "succeeded" in out, out[-5000:]
    assert "(12 already done, 0 to run)" in out, out[-5000:]
    print(f"\nresume via ray job submit: {time.monotonic() - t0:.0f} s")
    after = {p.name: p.stat().st_mtime_ns for p in (sweep_dir / "trajectories").glob("*.parquet")}
    assert after == before
    _check_sweep(cluster, "sparsity-smoke", out)


PROBE_THEN_RUN = """
import json, os, runpy, sys

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy


@ray.remote
def where():
    import rsng.service.trial  # noqa: F401  what a trial actor imports first
    return os.getcwd(), os.path.isfile(os.path.join("sweeps", "sparsity.py"))


ray.init(log_to_driver=False)
nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
pinned = [where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)) for n in nodes]
print("PROBE " + json.dumps(ray.get([f.remote() for f in pinned])), flush=True)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _working_dir_on_every_node(cluster: LocalCluster, output: str) -> None:
    """The job's tasks pinned one to each node ran in the job's working dir, unpacked in that node's
    own temp dir, with the sweep scripts in it."""
    assert "PROBE " in output, output[-5000:]
    found = json.loads(output.split("PROBE ", 1)[1].splitlines()[0])
    assert len(found) == len(NODES), found
    on = {
        n: [cwd for cwd, has_script in found if has_script and Path(cwd).is_relative_to(d)]
        for n, d in cluster.temp_dirs.items()
    }
    assert all(len(cwds) == 1 for cwds in on.values()), found


@pytest.mark.slow
def test_ray_job_submit_runs_a_whole_sweep(cluster):
    """The README's `ray job submit` alternative end to end (≈ 35 s here with nothing beside it).

    The job's entrypoint is the sweep script behind a small wrapper (``PROBE_THEN_RUN``) that first
    runs, in the same job, one task pinned to each node: each must find the job's working dir
    unpacked in its own node's temp dir, with the sweep scripts and rsng importable. That is how this
    test shows the working dir reaching the worker node; where the trials ran is printed, not asserted
    (the race of the module docstring): the 12 short smoke trials all ended on the head once in CI,
    and in two of four runs here beside CPU-bound processes, one after a separate warm-up job, one
    after these tasks (so the delay is not the working dir's download alone)."""
    probe = cluster.home / "probe_then_run.py"
    probe.write_text(PROBE_THEN_RUN)
    t0 = time.monotonic()
    r = cluster.run(
        [
            "ray",
            "job",
            "submit",
            "--address",
            cluster.dashboard,
            "--working-dir",
            ".",
            "--",
            "python",
            str(probe),
            "sweeps/sparsity.py",
            *cluster.sweep_args("--name", "sparsity-smoke-job"),
        ],
        cwd=ROOT,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "succeeded" in out, out[-5000:]
    print(f"\nsweep via ray job submit: {time.monotonic() - t0:.0f} s")
    _working_dir_on_every_node(cluster, out)
    _check_sweep(cluster, "sparsity-smoke-job", out, on=None)


HOLD_CPU = """
import sys

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy


@ray.remote(num_cpus=1)
class Hold:
    def node(self):
        return ray.get_runtime_context().get_node_id()


ray.init(log_to_driver=False)
# both nodes share an IP address here: a node is told by its temp dir, where its sockets are
node = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["ObjectStoreSocketName"].startswith(sys.argv[1])]
assert len(node) == 1, ray.nodes()
hold = Hold.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node[0], soft=False)).remote()
assert ray.get(hold.node.remote(), timeout=300) == node[0]
print("HELD", flush=True)
sys.stdin.read()  # until the test closes stdin; the actor ends with this driver
"""


@contextlib.contextmanager
def _hold_cpu(cluster: LocalCluster, node: str):
    """Hold the one CPU of ``node`` with an actor pinned there (in a driver of its own) while the
    block runs, so that Tune can place trials on the other node only."""
    p = subprocess.Popen(
        [sys.executable, "-c", HOLD_CPU, str(cluster.temp_dirs[node])],
        cwd=cluster.home,
        env={**cluster.env, "RAY_ADDRESS": cluster.gcs},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 300
        while not lines or lines[-1].strip() != "HELD":
            ready, _, _ = select.select([p.stdout], [], [], max(0.0, deadline - time.monotonic()))
            line = p.stdout.readline() if ready else ""
            assert line, "".join(lines)[-3000:] or "no CPU held in 300 s"
            lines.append(line)
        yield
    finally:
        p.stdin.close()
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            _stop_trees([p])


@pytest.mark.slow
def test_script_sweep_to_s3_runs_every_trial_on_the_worker_node(cluster, s3_env):
    """As the first test, with ``--storage s3://…`` and the head node's CPU held: every trial runs
    on the worker node and writes its Parquet files and states from there into the bucket, Tune keeps
    its experiment state there, nothing lands on the "shared" folder."""
    storage = f"s3://{s3_env.bucket}/multinode-{uuid.uuid4().hex[:8]}"
    args = [
        a if a != str(cluster.shared / "rsng" / "results") else storage
        for a in cluster.sweep_args("--name", "sparsity-smoke-s3")
    ]
    with _hold_cpu(cluster, "head"):
        t0 = time.monotonic()
        r = cluster.run(
            ["python", str(ROOT / "sweeps" / "sparsity.py"), *args], cwd=cluster.home, RAY_ADDRESS=cluster.gcs
        )
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-5000:]
    print(f"\nsweep to S3 via the script on the head node: {time.monotonic() - t0:.0f} s")
    assert not (cluster.shared / "rsng" / "results" / "sparsity-smoke-s3").exists()
    assert not list(cluster.home.glob("s3*"))
    keys = s3_env.keys(storage.split("/", 3)[3] + "/sparsity-smoke-s3/")
    assert sum("/_state/" in k for k in keys) == 12 and sum("/trajectories/" in k for k in keys) == 12
    _check_sweep(cluster, "sparsity-smoke-s3", out, storage=storage, on=("worker",))
