"""Pareto search on real sweeps: a real single-node Ray, a real sqlite MLflow store, real Parquet files;
the driver kill is a real SIGKILL. The sweep is `tests/service/search_sweep.py` (heat smoke, s × rcond,
2 seeds per configuration; rcond = 0.5 puts a configuration far off the front)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SEARCH_SWEEP = HERE / "search_sweep.py"
SEEDS = 2
#: the sampler seed of the smoke search (``--search tpe``): Optuna's first (random) draws with it are
#: (s, rcond) = (8, 1e-4), (128, 0.5), (128, 1e-4), so the cheap accurate configuration finishes before a
#: dominated one several times as expensive starts (with --max-concurrent 1), which must then be stopped;
#: another seed changes the order, not the product. The default searcher (``pareto``, whose order follows
#: measured costs) runs in the resume test and in tests/service/test_search_policy.py.
SEARCH_SEED = "11"


def cmd(storage: Path, *args: str) -> list[str]:
    """The test sweep on an embedded Ray, one trial at a time (the order of the sampler's draws is the
    order they run); θ(0), references and compiled code come from the usual cache ($RSNG_CACHE_DIR)."""
    return [
        sys.executable,
        str(SEARCH_SWEEP),
        "--ray-address",
        "local",
        "--storage",
        str(storage),
        "--max-concurrent",
        "1",
        *args,
    ]


def env() -> dict:
    return dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true")


def run_sweep(storage: Path, cwd: Path, *args: str, timeout: float) -> subprocess.CompletedProcess:
    """The test sweep run to its end (:func:`cmd`), which must succeed."""
    r = subprocess.run(cmd(storage, *args), cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def mlflow_children(sweep_dir: Path) -> list:
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = MlflowClient(tracking_uri=f"sqlite:///{sweep_dir}/mlflow.db")
    exp = client.get_experiment_by_name("rsng/search")
    runs = client.search_runs([exp.experiment_id], run_view_type=ViewType.ACTIVE_ONLY, max_results=1000)
    return [r for r in runs if r.data.tags.get("mlflow.parentRunId")]


def check_search_results(sweep_dir: Path, budget: int) -> object:
    """Every trajectory once in Parquet and MLflow, each configuration's seeds complete, at most the
    budget's configurations, stopped rows as the docs say; returns the trajectories."""
    from rsng.analysis import pareto_front
    from rsng.results import load

    df = load(sweep_dir, with_steps=False).trajectories
    assert df["trial_id"].is_unique
    per_config = df.groupby(["s", "rcond"]).size()
    assert (per_config == SEEDS).all(), per_config  # each configuration's seeds complete
    assert len(per_config) <= -(-budget // SEEDS)  # whole configurations, within the budget
    stopped = df[df["status"].astype(str) == "stopped"]
    for _, r in stopped.iterrows():
        assert 0 < r["steps"] < round(r["t_end"] / r["dt"])  # stopped part-way
        assert r["error_message"].startswith(f"stopped at step {r['steps']}:")
        assert r["rel_l2"] != r["rel_l2"] and r["rel_l2_final"] > 0  # no whole-run error; its last one kept
    children = mlflow_children(sweep_dir)
    tids = sorted(r.data.tags["rsng.trial_id"] for r in children)
    assert tids == sorted(df["trial_id"])  # each trajectory exactly once in MLflow
    for r in children:
        st = r.data.tags["rsng.status"]
        assert r.info.status == {"ok": "FINISHED", "stopped": "KILLED"}.get(st, "FAILED")
    front = pareto_front(df, by="problem")
    assert front.attrs["excluded"]["stopped"] == len(stopped)
    assert not set(front["trial_id"]) & set(stopped["trial_id"])
    return df


@pytest.fixture(scope="module")
def search_sweep(tmp_path_factory):
    """One smoke search with TPE (budget 6 trajectories = 3 of the 6 configurations): (sweep folder, stdout,
    budget)."""
    tmp = tmp_path_factory.mktemp("search")
    storage = tmp / "results"
    budget = 6
    r = run_sweep(storage, tmp, "--search", "tpe", "--budget", str(budget), "--search-seed", SEARCH_SEED, timeout=600)
    return storage / "search", r.stdout, budget


def test_smoke_search_stops_some_trajectories_and_records_each_once(search_sweep, tmp_path):
    sweep_dir, stdout, budget = search_sweep
    df = check_search_results(sweep_dir, budget)
    assert (df["status"].astype(str) == "stopped").any(), df[["s", "rcond", "status", "wall_s"]]
    assert "stopped early" in stdout
    # rsng report and rsng pareto count the stopped trajectories separately
    from rsng.cli import main

    out = tmp_path / "report"
    assert main(["report", str(sweep_dir), "--out", str(out), "--no-reference"]) == 0
    page = (out / "index.html").read_text()
    n = int((df["status"].astype(str) == "stopped").sum())
    assert f"{n} stopped" in page and "Stopped early" in page


@pytest.mark.slow
@pytest.mark.parametrize("name", ("pareto.ipynb", "trajectories.ipynb", "samplers.ipynb"))
def test_dashboards_run_on_a_search_sweep(name, search_sweep, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    sweep_dir = search_sweep[0]
    monkeypatch.setenv("RSNG_RESULTS", str(sweep_dir))
    nb = nbformat.read(HERE.parents[1] / "dashboards" / name, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    for i, c in enumerate(code):
        assert not any(o.output_type == "error" for o in c.outputs), (name, i)
    text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for c in code for o in c.outputs)
    assert str(sweep_dir) in text and "stopped" in text


@pytest.mark.slow
def test_search_resumes_after_a_driver_sigkill_without_running_anything_twice(tmp_path):
    from rsng.results import load

    storage = tmp_path / "results"
    sweep_dir = storage / "search"
    budget = 8
    args = ["--search", "pareto", "--budget", str(budget)]
    log = tmp_path / "driver.log"
    proc = subprocess.Popen(
        cmd(storage, *args, "--t-end", "2"),
        cwd=tmp_path,
        env=env(),
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        import time

        deadline = time.monotonic() + 400

        def progress():
            rows = {p.stem for p in (sweep_dir / "trajectories").glob("*.parquet")}
            states = {p.stem for p in (sweep_dir / "_state").glob("*.npz")} - rows
            return len(rows) >= 2 * SEEDS and states

        while not progress():
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def rows() -> dict[str, bytes]:
        return {p.stem: p.read_bytes() for p in (sweep_dir / "trajectories").glob("*.parquet")}

    def resume() -> subprocess.CompletedProcess:
        return run_sweep(storage, tmp_path, *args, "--t-end", "2", "--resume", timeout=900)

    before = rows()
    assert len(before) >= 2 * SEEDS
    r = resume()
    assert "configurations replayed" in r.stdout
    for tid, data in before.items():  # nothing finished ran again: its row is untouched
        assert (sweep_dir / "trajectories" / f"{tid}.parquet").read_bytes() == data
    df = check_search_results(sweep_dir, budget)
    assert len(df) > len(before)
    assert set(before) <= set(load(sweep_dir, with_steps=False).trajectories["trial_id"])
    # --resume of a search that has ended: everything replayed, nothing run or rewritten, no Tune error
    after = rows()
    again = resume()
    assert "ERROR" not in again.stderr and "Traceback" not in again.stderr, again.stderr[-3000:]
    assert rows() == after


BAD = [
    (["--search", "bayes", "--budget", "4"], "--search"),
    (["--search", "pareto", "--budget", "0"], "--budget"),
    (["--search", "pareto", "--budget", "-2"], "--budget"),
    (["--search", "pareto", "--budget-hours", "0"], "--budget-hours"),
    (["--search", "pareto", "--budget-hours", "nan"], "--budget-hours"),
    (["--search", "pareto"], "--budget"),
    (["--search", "pareto", "--budget", "4", "--search-axes", "depth"], "--search-axes"),
    (["--search", "pareto", "--budget", "4", "--search-axes", "seed"], "--search-axes"),
    (["--budget", "4"], "--budget"),
]


def test_bad_search_options_exit_2_naming_the_option_before_ray_starts(tmp_path):
    """In one process (sweep_main), so the case list costs no interpreter start each; Ray must not start."""
    import contextlib
    import io

    import ray

    from rsng.service.cli import sweep_main

    sys.path.insert(0, str(HERE))
    try:
        import search_sweep
    finally:
        sys.path.remove(str(HERE))
    for args, option in BAD:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = sweep_main(
                "search",
                search_sweep.__doc__,
                search_sweep.build,
                search_sweep.extra,
                argv=["--storage", str(tmp_path / "r"), "--ray-address", "local", *args],
            )
        lines = err.getvalue().strip().splitlines()
        assert rc == 2 and len(lines) == 1 and option in lines[0] and "error" in lines[0], (args, err.getvalue())
        assert not ray.is_initialized()
        assert not (tmp_path / "r").exists()  # nothing written


def test_a_resumed_search_replays_parquet_and_suggests_only_new_configurations(search_sweep):
    """The searcher rebuilt from the smoke search's Parquet rows (what ``--resume`` does; no Ray needed):
    every finished configuration replayed and counted against the budget, and with budget left it
    suggests only configurations that have not run, until the lattice is covered."""
    import argparse

    from rsng.results import load
    from rsng.service.search import Front, SearchOptions, _make_searcher, plan_search

    sys.path.insert(0, str(HERE))
    try:
        import search_sweep as script
    finally:
        sys.path.remove(str(HERE))
    sweep_dir = search_sweep[0]
    spec = script.build(argparse.Namespace(seeds=SEEDS, t_end=1.0))
    sopts = SearchOptions(budget=100)
    plan = plan_search(spec, sopts)
    lattice = plan.studies["heat"]
    df = load(sweep_dir, with_steps=False).trajectories
    done = {(int(s), float(r)) for s, r in zip(df["s"], df["rcond"])}
    searcher = _make_searcher(plan, lattice, sopts, (100, None), sweep_dir, Front(), print)
    assert searcher.replayed == len(done) and searcher.resumed == 0 and searcher.used_trajectories == len(df)
    by_key = {c.key: c for c in lattice}
    new = []
    for i in range(len(lattice) + 1):
        got = searcher.suggest(f"t{i}")
        if got == "FINISHED":
            break
        cfg = by_key[got["point"]].trials[0].config
        new.append((cfg.s, cfg.rcond))
    assert not set(new) & done and len(new) == len(set(new)) == len(lattice) - len(done)
