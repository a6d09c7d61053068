"""Serial versus Ray: the same 8 trajectories run one after another in one process, then through
the sweep service on an embedded single-node Ray.

    python benchmarks/sweep_overhead.py              # the smoke sparsity grid (short, compile-dominated)
    python benchmarks/sweep_overhead.py --grid fast  # 8 fast allen_cahn trajectories (seeds 0–7)

Prints both wall times (driver start to last row written, Ray start-up included), their ratio and
the throughput in trajectories per hour, measured in one run; writes
benchmarks/results/sweep-overhead-<grid>-<date>.csv. Each mode starts with its own empty JAX
compilation cache folder, so each pays its own compiles; ``ray-warm`` then reruns the Ray sweep
(new sweep name) with the cache Ray filled — the sweep with and without the persistent
compilation cache.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sweeps"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", choices=["smoke", "fast"], default="smoke")
    args = ap.parse_args()
    import sparsity

    from rsng.service.runner import SweepOptions, run_sweep

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.grid == "smoke":
            spec = sparsity.build(argparse.Namespace(smoke=True))
        else:
            from rsng.service.spec import SweepSpec

            spec = SweepSpec(
                "overhead-fast", grid={"seed": list(range(8))}, fixed={"preset": "fast", "problem": "allen_cahn"}
            )
        for mode in ("serial", "ray", "ray-warm"):
            cache = f"{tmp}/cache-{mode.split('-')[0]}"
            opts = SweepOptions(
                storage=f"{tmp}/{mode}",
                serial=mode == "serial",
                cache_dir=cache,
                log=lambda m: None,
                ray_address="local",
            )
            t0 = time.perf_counter()
            prep = run_sweep(spec, opts)
            wall = time.perf_counter() - t0
            rows.append(
                {
                    "grid": args.grid,
                    "mode": mode,
                    "trajectories": len(prep.trials),
                    "wall_s": wall,
                    "trajectories_per_hour": 3600 * len(prep.trials) / wall,
                }
            )
            print(
                f"{mode:>8}: {len(prep.trials)} trajectories in {wall:6.1f} s "
                f"({rows[-1]['trajectories_per_hour']:.0f} per hour)",
                flush=True,
            )
            if mode == "ray":
                import ray

                ray.shutdown()  # the warm rerun starts its own Ray, like a second sweep would
    ratio = rows[1]["wall_s"] / rows[0]["wall_s"]
    print(f"ray / serial = {ratio:.2f}  (compilation cache cold in both)")
    out = Path(__file__).parent / "results" / f"sweep-overhead-{args.grid}-{dt.date.today().isoformat()}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["grid", "mode", "trajectories", "wall_s", "trajectories_per_hour"])
        w.writeheader()
        w.writerows(rows)
        f.write(f"# ray/serial,{ratio:.3f}\n")
    print(f"# written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
