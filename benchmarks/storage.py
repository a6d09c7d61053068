"""Results on an object store versus local disk: the smoke sweep's wall time, and ``rsng.results.load``
of 1,000 trajectories.

    python benchmarks/storage.py                  # both parts (≈ 6 min on 2 cores)
    python benchmarks/storage.py --skip-sweep     # only the load part (≈ 1 min)

The object store is a real S3-compatible server on this machine: moto's server mode
(``python -m moto.server``) on 127.0.0.1, in its own process, reached like AWS through
``AWS_ENDPOINT_URL``. It answers from memory over loopback HTTP, so its figures show rsng's request
pattern and pyarrow's S3 client costs, not the latency or bandwidth of a cloud bucket (tens of ms
per request, not ~1 ms).

1. ``sweeps/sparsity.py --smoke`` (embedded Ray, driver start to exit): one warm-up
   sweep on local disk (fills the reference and compilation caches, not timed), then local disk
   and S3 alternately ``--repeats`` times each, all with the same cache folder.
2. 1,000 synthetic, schema-valid trajectories (one row each plus one steps chunk of 101 steps)
   written through :func:`rsng.results.write_trajectory` / :func:`write_steps` (8 writer threads),
   then ``rsng.results.load`` with and without the steps, best of ``--repeats`` each.

Prints a table and writes benchmarks/results/storage-<date>.csv.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "rsng-bench"


def start_moto() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
            return proc, endpoint
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("moto server did not start")


def sweep(storage: str, cache: Path, cwd: Path, env: dict) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "sweeps" / "sparsity.py"),
            "--smoke",
            "--ray-address",
            "local",
            "--storage",
            storage,
            "--cache-dir",
            str(cache),
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"sweep to {storage} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return wall


def synthetic(i: int):
    import numpy as np

    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    row = {
        "sweep": "bench",
        "trial_id": f"allen_cahn-uniform-s{50 + i % 8}-seed{i:04d}",
        "problem": "allen_cahn",
        "sampler": "uniform",
        "s": 50 + i % 8,
        "p": 3393,
        "n": 1000,
        "depth": 7,
        "width": 25,
        "dt": 1e-3,
        "t_end": 0.1,
        "seed": i,
        "init_seed": 0,
        "precision": "f32",
        "rcond": 1e-4,
        "integrator": "rk4",
        "lstsq": "svd",
        "solver": "fast",
        "rel_l2": 1e-3 * (1 + i % 7),
        "rel_l2_t0": 1e-4,
        "rel_l2_final": 2e-3,
        "wall_s": 10.0 + i % 5,
        "batch_size": 1,
        "compile_s": 2.0,
        "steps": 100,
        "status": "ok",
        "diverged_step": None,
        "error_message": "",
        "reference": "spectral",
        "rsng_version": "0.1.0",
        "git_sha": "0" * 7,
        "jax_version": "0.10.2",
        "device": "cpu",
        "started_at": t0,
        "finished_at": t0 + dt.timedelta(seconds=12),
    }
    k = np.arange(101)
    steps = {
        "step": k,
        "t": k * 1e-3,
        "rel_l2_t": (1 + k) * 1e-5,
        "ls_residual": np.where(k == 0, np.nan, 1e-6),
        "wall_s_cumulative": k * 0.1,
    }
    return row, steps


def write_many(sweep_dir: str, n: int) -> float:
    from rsng.results import write_steps, write_sweep_meta, write_trajectory

    def one(i):
        row, steps = synthetic(i)
        write_steps(sweep_dir, row["trial_id"], 0, steps)
        write_trajectory(sweep_dir, row)

    t0 = time.perf_counter()
    write_sweep_meta(sweep_dir, {"name": "bench"})
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(n)))
    return time.perf_counter() - t0


def time_load(sweep_dir: str, n: int, with_steps: bool, repeats: int) -> float:
    from rsng.results import load

    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = load(sweep_dir, with_steps=with_steps)
        best = min(best, time.perf_counter() - t0)
        assert len(res.trajectories) == n and not res.skipped, (
            len(res.trajectories),
            res.skipped[:3],
        )
        assert not with_steps or len(res.steps) == 101 * n
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per storage (default 2)")
    ap.add_argument(
        "--trajectories",
        type=int,
        default=1000,
        help="rows for the load part (default 1000)",
    )
    ap.add_argument("--skip-sweep", action="store_true", help="only the load part")
    args = ap.parse_args()

    proc, endpoint = start_moto()
    env = dict(
        os.environ,
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        RAY_AUTH_MODE="disabled",
        MLFLOW_DISABLE_TELEMETRY="true",
    )
    os.environ.update(
        {
            k: env[k]
            for k in (
                "AWS_ENDPOINT_URL",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_DEFAULT_REGION",
                "AWS_EC2_METADATA_DISABLED",
            )
        }
    )
    results: list[dict] = []
    try:
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            env["RSNG_CACHE_DIR"] = str(tmp / "home")
            if not args.skip_sweep:
                cache = tmp / "cache"
                print("warm-up smoke sweep (local disk, not timed) …", flush=True)
                sweep(str(tmp / "warm"), cache, tmp, env)
                walls: dict[str, list[float]] = {"local": [], "s3": []}
                for i in range(args.repeats):
                    for kind in ("local", "s3"):
                        storage = str(tmp / f"local{i}") if kind == "local" else f"s3://{BUCKET}/sweep{i}"
                        walls[kind].append(sweep(storage, cache, tmp, env))
                        print(
                            f"smoke sweep #{i + 1} on {kind}: {walls[kind][-1]:.1f} s",
                            flush=True,
                        )
                for kind, w in walls.items():
                    results.append(
                        {
                            "part": "smoke sweep",
                            "storage": kind,
                            "seconds": statistics.median(w),
                            "runs": len(w),
                            "all_s": " ".join(f"{x:.1f}" for x in w),
                        }
                    )
            n = args.trajectories
            for kind, target in (
                ("local", str(tmp / "load" / "bench")),
                ("s3", f"s3://{BUCKET}/load/bench"),
            ):
                w = write_many(target, n)
                results.append(
                    {
                        "part": f"write {n} rows + {n} steps chunks (8 threads)",
                        "storage": kind,
                        "seconds": w,
                        "runs": 1,
                        "all_s": f"{w:.2f}",
                    }
                )
                for with_steps in (False, True):
                    t = time_load(target, n, with_steps, args.repeats)
                    what = "rows + steps" if with_steps else "rows only"
                    results.append(
                        {
                            "part": f"load {n} trajectories ({what})",
                            "storage": kind,
                            "seconds": t,
                            "runs": args.repeats,
                            "all_s": f"best {t:.2f}",
                        }
                    )
                print(f"load part on {kind} done", flush=True)
    finally:
        proc.terminate()
        proc.wait(10)

    print(f"\n{'part':52s} {'local s':>9s} {'s3 s':>9s} {'s3/local':>9s}")
    parts = dict.fromkeys(r["part"] for r in results)
    for part in parts:
        by = {r["storage"]: r["seconds"] for r in results if r["part"] == part}
        print(f"{part:52s} {by['local']:9.2f} {by['s3']:9.2f} {by['s3'] / by['local']:9.2f}")
    out = ROOT / "benchmarks" / "results" / f"storage-{dt.date.today().isoformat()}.csv"
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(results[0]))
        w.writeheader()
        w.writerows(results)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
