"""The sweep driver's memory under Ray Tune alone, at the scale of a 1,000- and a 10,000-trajectory load sweep.

    python benchmarks/driver_memory.py                 # N ∈ {1000, 10000}, records dropped and kept
    python benchmarks/driver_memory.py --n 1000 --modes drop

What grows with N in the driver and is Tune's, measured without the solver and without MLflow (their
cost per trajectory is the same at any N): ``N / 32`` Tune trials, as many as the load sweep's work
units, each reporting 11 results of 3 log records, as a unit reports its finished trajectories
(:data:`rsng.service.trial.RESULT_KEY`; a record is a real heat-smoke trajectory's row and its
64-point per-step series, computed once at the start). Each (N, mode) runs in a fresh driver process
with an embedded Ray (2 CPUs), Tune's JSON logger and the sweep's own Tune settings:

* ``drop``: rsng's sink (:func:`rsng.service.runner._make_sink`), which empties a result's records
  once it has them (:func:`rsng.service.runner.drop_records`);
* ``keep``: a sink that takes the records and leaves them in the result (the code before that change).

It prints, per run, the driver's RSS before ``Tuner.fit``, its peak (sampled every 0.2 s) and after
``fit`` returns, and the size of the trials' ``result.json`` files, which ``fit`` reads back into data
frames before it returns. Run on its own (not by ``run.py``); memory does not depend on the machine's
speed, so a shared machine gives the same figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNIT, REPORTS, PER_REPORT = 32, 11, 3


def make_record(work: Path) -> str:
    """One heat-smoke trajectory (t_end = 2: 200 steps), run here; its log record as the driver gets it."""
    from rsng.service.spec import SweepSpec
    from rsng.service.trial import log_record, run_trajectory
    from rsng.service.work import Member, WorkItem
    from rsng.tracking import HISTORY_POINTS

    t = SweepSpec("mem", grid={"seed": [0]}, fixed={"problem": "heat", "preset": "smoke", "t_end": 2.0}).expand()[0]
    item = WorkItem(
        trial_id=t.trial_id,
        members=(Member(t.trial_id, t.config),),
        sweep="mem",
        sweep_dir=str(work / "one"),
        report_steps=200,
        cpus=1,
        gpus=0,
        cache_dir=None,
        versions={},
    )
    out = []
    run_trajectory(item, on_row=lambda row, series: out.append(log_record(row, series, HISTORY_POINTS)))
    return json.dumps(out)


def child(n: int, mode: str, record_file: Path, work: Path) -> dict:
    """One driver: Tune trials reporting the records; the driver's RSS before, during and after fit."""
    import psutil

    from rsng.service.runner import TUNE_ENV_DEFAULTS

    for k, v in TUNE_ENV_DEFAULTS.items():
        os.environ.setdefault(k, v)
    proc = psutil.Process()
    samples: list[float] = []
    running = [True]

    def sample() -> None:
        while running[0]:
            samples.append(proc.memory_info().rss / 2**20)
            time.sleep(0.2)

    import ray
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    from rsng.service.runner import _make_sink
    from rsng.service.trial import RESULT_KEY

    one = json.loads(record_file.read_text())
    text = json.dumps(one * PER_REPORT)
    received = [0]

    def on_records(_records) -> None:
        received[0] += 1

    if mode == "drop":
        sink = _make_sink(on_records, 0, [])
    else:

        class Keep(tune.Callback):
            def on_trial_result(self, iteration, trials, trial, result, **info):
                if result.get(RESULT_KEY):
                    on_records(result[RESULT_KEY])

        sink = Keep()

    def trainable(config, text):
        for _ in range(REPORTS):
            tune.report({RESULT_KEY: text, "trajectories": PER_REPORT, "step": 200})

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    trials = -(-n // UNIT)
    before = proc.memory_info().rss / 2**20
    threading.Thread(target=sample, daemon=True).start()
    t0 = time.monotonic()
    grid = tune.Tuner(
        tune.with_resources(tune.with_parameters(trainable, text=text), {"cpu": 1}),
        param_space={"trial": tune.grid_search([{"unit": i} for i in range(trials)])},
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(
            name=f"mem-{mode}-{n}",
            storage_path=str(work / "ray"),
            callbacks=[sink, JsonLoggerCallback()],
            failure_config=tune.FailureConfig(max_failures=2),  # as the sweep's
            verbose=0,
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=0, checkpoint_at_end=False),
        ),
    ).fit()
    after = proc.memory_info().rss / 2**20
    running[0] = False
    files = list((work / "ray" / f"mem-{mode}-{n}").rglob("result.json"))
    ray.shutdown()
    assert grid.num_errors == 0 and received[0] >= trials * REPORTS, (grid.num_errors, received[0])
    return {
        "n": n,
        "mode": mode,
        "trials": trials,
        "record_kB": round(len(json.dumps(one[0])) / 1e3, 1),
        "rss_before_fit_mib": round(before),
        "peak_rss_mib": round(max(samples + [after])),
        "rss_after_fit_mib": round(after),
        "result_json_mib": round(sum(f.stat().st_size for f in files) / 2**20, 1),
        "fit_s": round(time.monotonic() - t0, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 10000], help="trajectories (default 1000 10000)")
    ap.add_argument("--modes", nargs="+", choices=["drop", "keep"], default=["drop", "keep"])
    ap.add_argument("--child", nargs=4, metavar=("N", "MODE", "RECORD", "WORK"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        n, mode, record, work = args.child
        print("RESULT " + json.dumps(child(int(n), mode, Path(record), Path(work))), flush=True)
        return 0
    if any(n < 1 for n in args.n):
        ap.error(f"--n: every value must be ≥ 1, got {args.n}")
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0", MLFLOW_DISABLE_TELEMETRY="true")
    env.pop("RAY_ADDRESS", None)
    with tempfile.TemporaryDirectory(prefix="rsng-drivermem-") as tmp:
        work = Path(tmp)
        record = work / "record.json"
        record.write_text(make_record(work))
        cols = ["n", "mode", "trials", "record_kB", "rss_before_fit_mib", "peak_rss_mib", "rss_after_fit_mib"]
        cols += ["result_json_mib", "fit_s"]
        print(" ".join(f"{c:>18}" for c in cols), flush=True)
        for n in args.n:
            for mode in args.modes:
                r = subprocess.run(
                    [sys.executable, __file__, "--child", str(n), mode, str(record), str(work / f"{mode}-{n}")],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                line = [s for s in r.stdout.splitlines() if s.startswith("RESULT ")]
                if r.returncode != 0 or not line:
                    print(f"N={n} {mode}: failed (rc {r.returncode})\n{r.stderr[-2000:]}", flush=True)
                    continue
                row = json.loads(line[0][len("RESULT ") :])
                print(" ".join(f"{row[c]!s:>18}" for c in cols), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
