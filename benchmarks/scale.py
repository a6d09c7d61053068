"""The sweep service at scale: N trajectories of `sweeps/load.py` (heat smoke, ≈ 0.3–0.5 s each on one CPU)
through the whole service — Ray Tune, Parquet, MLflow — measuring the service's own cost.

    python benchmarks/scale.py --quick                          # N ∈ {100, 1000}, every setting
    python benchmarks/scale.py --n 100 --ray embedded --mlflow sqlite
    python benchmarks/scale.py                                  # N ∈ {100, 1000, 10000}: hours on 2 CPUs

Settings (each combination is run): ``--ray embedded`` (the driver's own single-node Ray, all CPUs of
this process) and ``--ray cluster`` (a 4-node Ray cluster started here: a head node with no CPUs and 3
worker nodes with ``--cluster-cpus`` logical CPUs each, with their own temp dir and ports; stopped at
the end by process tree — never ``ray stop``); ``--mlflow sqlite`` (the default store in the sweep
folder) and ``--mlflow server`` (an ``mlflow server`` on 127.0.0.1 over HTTP, started per run).

Per run it prints and writes to ``benchmarks/results/scale-<date>-n<N values>.csv``:

* ``wall_s``: the driver's wall time (start to exit: Ray start-up included);
* ``solver_s``: Σ ``wall_s`` of the rows (time inside the compiled solver chunks);
* ``efficiency`` = solver_s / (wall_s × cpus), ``cpus`` = the CPUs the trials could use (the
  embedded Ray's; for the cluster its logical CPUs, also where they outnumber this machine's cores:
  a trajectory's ``wall_s`` then stretches by that factor, and dividing by the cores would count it
  twice — the cluster row of ``scale-2026-12-02-n1000-cluster-server.csv`` says 1.269 for that reason);
* ``driver_peak_rss_mib`` (sampled every 0.2 s; with ``--workdir`` every sample is kept in
  ``<ray>-<mlflow>-<N>-rss.csv`` there) and ``driver_cpu_ms_per_traj`` (the driver's user +
  system CPU over N, as the driver prints it; its threads included);
* ``mlflow_ms_per_traj``: the wall time the driver's MLflow thread spent per child run;
* ``load_s`` (``rsng.results.load`` of the sweep, steps included), ``pareto_s`` (``rsng pareto``
  as a command), ``store_mib`` (the MLflow store: database and artifacts), ``search_s``
  (``search_runs`` of the parent's children, all pages).

Every run is checked: N rows, each trial id once, all ``ok``; N child runs, each trial id once.
The machine is shared: compare figures of one run, and quote the CPU seconds per trajectory, which
contention changes least.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOAD = ROOT / "sweeps" / "load.py"
BIN = Path(sys.executable).parent


def _free_port() -> int:
    from rsng.tracking import free_port

    return free_port()


class LocalCluster:
    """A head node (0 CPUs) and ``workers`` worker nodes of ``cpus`` logical CPUs, all on this machine,
    with their own temp dir (short: Ray's socket paths are limited) and ports."""

    def __init__(self, workers: int, cpus: int, env: dict, logs: Path):
        self.tmp = Path(tempfile.mkdtemp(prefix="rsng-scale-", dir="/tmp"))
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env, self.logs, self.procs = env, logs, []
        self.cpus = workers * cpus
        common = ["--block", "--disable-usage-stats", "--include-log-monitor=false"]
        try:
            self._start(
                "head",
                [
                    "--head",
                    "--port",
                    str(self.port),
                    "--num-cpus",
                    "0",
                    "--include-dashboard=false",
                    *self._ports(),
                    "--temp-dir",
                    str(self.tmp / "head"),
                ],
                common,
            )
            self._wait(1)
            for i in range(workers):
                self._start(
                    f"worker{i}",
                    [
                        "--address",
                        self.address,
                        "--num-cpus",
                        str(cpus),
                        *self._ports(),
                        "--temp-dir",
                        str(self.tmp / f"w{i}"),
                    ],
                    common,
                )
                self._wait(2 + i)
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def _ports() -> list[str]:
        out = []
        for opt in (
            "--node-manager-port",
            "--object-manager-port",
            "--dashboard-agent-listen-port",
            "--dashboard-agent-grpc-port",
            "--runtime-env-agent-port",
            "--metrics-export-port",
        ):
            out += [opt, str(_free_port())]
        return out

    def _start(self, name: str, args: list[str], common: list[str]) -> None:
        with open(self.logs / f"ray-{name}.log", "w") as log:
            self.procs.append(
                subprocess.Popen(
                    [str(BIN / "ray"), "start", *args, *common],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    def _wait(self, nodes: int, timeout: float = 180) -> None:
        code = (
            "import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
            "print(sum(n['Alive'] for n in ray.nodes()))"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = subprocess.run(
                [sys.executable, "-c", code, self.address],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if r.returncode == 0 and r.stdout.strip().splitlines()[-1:] == [str(nodes)]:
                return
            if any(p.poll() is not None for p in self.procs):
                break
            time.sleep(2)
        raise RuntimeError(f"the local Ray cluster did not reach {nodes} nodes; see {self.logs}/ray-*.log")

    def stop(self) -> None:
        """SIGTERM every process this cluster started (by process tree), SIGKILL what is left."""
        import psutil

        tree = []
        for p in self.procs:
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
        _, alive = psutil.wait_procs(tree, timeout=5)
        for proc in alive:
            try:
                proc.kill()
            except psutil.Error:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def _size_mib(*paths: Path) -> float:
    total = 0
    for p in paths:
        if p.is_file():
            total += p.stat().st_size
        elif p.is_dir():
            total += sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return total / 2**20


def run_one(
    n: int, ray_mode: str, mlflow: str, work: Path, env: dict, cluster: LocalCluster | None, t_end: float, cpus: int
) -> dict:
    import psutil
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    from rsng.results import load

    tag = f"{ray_mode}-{mlflow}-{n}"
    storage = work / tag
    server = None
    if mlflow == "server":
        from rsng.tracking import start_server

        (work / f"{tag}-server").mkdir()
        server = start_server(
            f"sqlite:///{work / f'{tag}-server' / 'mlflow.db'}", work / f"{tag}-server" / "artifacts", timeout=300
        )
    try:
        cmd = [
            sys.executable,
            str(LOAD),
            "--trajectories",
            str(n),
            "--t-end",
            str(t_end),
            "--storage",
            str(storage),
            "--ray-address",
            cluster.address if cluster else "local",
            "--yes",
        ]
        if server is not None:
            cmd += ["--mlflow-uri", server.uri]
        log = work / f"{tag}.log"
        t0 = time.monotonic()
        with open(log, "w") as f:
            proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        driver = psutil.Process(proc.pid)
        peak = 0
        trace = []  # (seconds since start, driver RSS in MiB), every sample
        while proc.poll() is None:
            try:
                rss = driver.memory_info().rss
                peak = max(peak, rss)
                trace.append((round(time.monotonic() - t0, 1), round(rss / 2**20, 1)))
            except psutil.Error:
                pass
            time.sleep(0.2)
        wall = time.monotonic() - t0
        with open(work / f"{tag}-rss.csv", "w") as f:
            f.write("t_s,rss_mib\n" + "".join(f"{t},{r}\n" for t, r in trace))
        out = log.read_text()
        if proc.returncode != 0:
            raise RuntimeError(f"{tag}: the sweep failed (rc {proc.returncode}):\n{out[-3000:]}")
        sweep_dir = storage / f"load-heat-smoke-{n}"
        cpu_s = float(re.search(r"Driver CPU time: ([\d.]+) s", out).group(1))
        m = re.search(r"MLflow: (\d+) child runs logged in ([\d.]+) s", out)
        mlflow_ms = 1000 * float(m.group(2)) / int(m.group(1)) if m else float("nan")
        warnings = [line for line in out.splitlines() if "WARNING" in line or "Warning" in line]

        t1 = time.perf_counter()
        res = load(sweep_dir)
        load_s = time.perf_counter() - t1
        df = res.trajectories
        assert len(df) == n and df["trial_id"].is_unique and (df["status"] == "ok").all(), f"{tag}: rows"
        solver = float(df["wall_s"].sum())

        t1 = time.perf_counter()
        r = subprocess.run(
            [str(BIN / "rsng"), "pareto", str(sweep_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        pareto_s = time.perf_counter() - t1
        assert r.returncode == 0, r.stdout + r.stderr

        uri = server.uri if server is not None else f"sqlite:///{sweep_dir / 'mlflow.db'}"
        client = MlflowClient(tracking_uri=uri)
        exp = client.get_experiment_by_name(f"rsng/load-heat-smoke-{n}")
        parent = client.search_runs([exp.experiment_id], filter_string="tags.`rsng.kind` = 'parent'")[0]
        t1 = time.perf_counter()
        children, token = [], None
        while True:
            page = client.search_runs(
                [exp.experiment_id],
                f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
                run_view_type=ViewType.ACTIVE_ONLY,
                max_results=1000,
                page_token=token,
            )
            children += page
            token = page.token
            if not token:
                break
        search_s = time.perf_counter() - t1
        ids = [c.data.tags["rsng.trial_id"] for c in children]
        assert len(ids) == n and set(ids) == set(df["trial_id"]), f"{tag}: {len(ids)} children for {n} rows"
        store = (
            _size_mib(work / f"{tag}-server")
            if server is not None
            else _size_mib(sweep_dir / "mlflow.db", sweep_dir / "mlflow-artifacts")
        )
    finally:
        if server is not None:
            server.stop()
    return {
        "ray": ray_mode,
        "mlflow": mlflow,
        "n": n,
        "cpus": cpus,
        "wall_s": round(wall, 1),
        "solver_s": round(solver, 1),
        "efficiency": round(solver / (wall * cpus), 3),
        "driver_peak_rss_mib": round(peak / 2**20),
        "driver_cpu_ms_per_traj": round(1000 * cpu_s / n, 1),
        "mlflow_ms_per_traj": round(mlflow_ms, 1),
        "load_s": round(load_s, 2),
        "pareto_s": round(pareto_s, 2),
        "store_mib": round(store, 1),
        "search_s": round(search_s, 2),
        "tune_warnings": len(warnings),
        "load_avg_1min": round(os.getloadavg()[0], 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    ap.add_argument("--quick", action="store_true", help="N ∈ {100, 1000} (default: also 10000)")
    ap.add_argument("--n", type=int, nargs="+", help="the N values to run (overrides --quick)")
    ap.add_argument("--ray", nargs="+", choices=["embedded", "cluster"], default=["embedded", "cluster"])
    ap.add_argument("--mlflow", nargs="+", choices=["sqlite", "server"], default=["sqlite", "server"])
    ap.add_argument(
        "--t-end",
        type=float,
        default=2.0,
        help="heat smoke final time (default 2.0: 200 steps; e.g. 0.64, 64 steps, to measure the driver's memory "
        "at scale quickly: the driver's work per trajectory does not depend on the solve's length)",
    )
    ap.add_argument(
        "--cluster-cpus", type=int, default=1, help="logical CPUs of each of the 3 worker nodes (default 1)"
    )
    ap.add_argument(
        "--workdir",
        help="keep the sweeps here, with the driver's RSS samples (<ray>-<mlflow>-<N>-rss.csv) (default: a temporary folder, removed)",
    )
    ap.add_argument("--out", help="the result CSV (default benchmarks/results/scale-<date>-n<N values>.csv)")
    args = ap.parse_args()
    ns = args.n or ([100, 1000] if args.quick else [100, 1000, 10000])
    if any(n < 1 for n in ns):
        ap.error(f"--n: every value must be ≥ 1, got {ns}")
    from rsng.core.threads import available_cpus

    machine_cpus = available_cpus()
    env = dict(
        os.environ,
        RAY_AUTH_MODE="disabled",
        MLFLOW_DISABLE_TELEMETRY="true",
        RAY_USAGE_STATS_ENABLED="0",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    env.pop("RAY_ADDRESS", None)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="rsng-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    out = (
        Path(args.out)
        if args.out
        else ROOT / "benchmarks" / "results" / f"scale-{dt.date.today().isoformat()}-n{'-'.join(map(str, ns))}.csv"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    fields = [
        "ray",
        "mlflow",
        "n",
        "cpus",
        "wall_s",
        "solver_s",
        "efficiency",
        "driver_peak_rss_mib",
        "driver_cpu_ms_per_traj",
        "mlflow_ms_per_traj",
        "load_s",
        "pareto_s",
        "store_mib",
        "search_s",
        "tune_warnings",
        "load_avg_1min",
    ]
    print(f"# {machine_cpus} CPUs, heat smoke t_end={args.t_end}; work folder {work}", flush=True)
    print(" ".join(f"{f:>10}" for f in fields), flush=True)
    try:
        for ray_mode in args.ray:
            cluster = LocalCluster(3, args.cluster_cpus, env, work) if ray_mode == "cluster" else None
            # the slots trials run in at once: the cluster's logical CPUs, even where they outnumber the cores
            # (each trajectory's wall_s then stretches by the same factor, so Σ wall_s / (wall × slots) stays ≤ 1)
            cpus = cluster.cpus if cluster else machine_cpus
            try:
                for n in ns:
                    for mlflow in args.mlflow:
                        row = run_one(n, ray_mode, mlflow, work, env, cluster, args.t_end, cpus)
                        rows.append(row)
                        print(" ".join(f"{row[f]!s:>10}" for f in fields), flush=True)
                        with out.open("w", newline="") as f:
                            w = csv.DictWriter(f, fieldnames=fields)
                            w.writeheader()
                            w.writerows(rows)
            finally:
                if cluster is not None:
                    cluster.stop()
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    print(f"# written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
