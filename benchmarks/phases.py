"""Per-step cost of RSNG by phase, each phase's flop-count floor, and the baseline side by side.

    python benchmarks/phases.py                        # n ∈ {1000, 10000}, s ∈ {50 … 1600, dense}
    python benchmarks/phases.py --n 1000 --sizes 150 --threads 2

XLA's settings are its defaults, as in an rsng run (YNNPACK dot kernels included); ``--no-ynn`` turns
those off for both solvers — the baseline is faster without them, rsng with them, so
``benchmarks/run.py`` also times n = 1000, s = 150 that way and the README quotes both ratios.

allen_cahn, depth 7, width 25 (p = 3393), float32, the fast preset's θ(0). For each (n, s):

* phases, each compiled on its own and timed best-of-R: network + Jacobian columns + right-hand side
  (rsng: one hand-written batched pass for the factors and F, ``galerkin.stage_quantities``, then the
  s sampled columns; "J+F"), F alone (the same pass with the backward part dropped by XLA), sketch
  (uniform index draw), least squares (rsng's default for float32: eigen-decomposition of the float64
  normal equations, rcond cut), update (θ[idx] += δt·v);
* the alternatives each choice was made against: least squares by QR then SVD of R (``qr``) and by
  plain SVD (``svd``, the authors'); Jacobian columns by the full vmapped
  gradient sliced inside one compiled function (XLA then skips most unused columns: the reference
  solver), by forward-mode JVPs (one per sampled column and point, s ≤ 400), and by the autodiff
  pieces the hand-written pass replaced (vmapped reverse-mode factors; F by nested JVPs);
* the RK4 step as rsng compiles it (``rsng.core.stepping``, a scan of steps) and the sum of the phases
  (4 × (J+F + LS) + sketch + update);
* the **floor** of each phase: its flop count over this machine's measured float32 matrix-multiply
  rate (same thread count): J 6·n·p (forward 2np + backward 4np) plus F 2·n·p·(1 + tangent streams)
  (u_x, u_xx: 3 streams), LS 2·n·s² (QR) + 21·s³ (SVD of R, Golub–Van Loan); measured / floor;
* **the baseline** (``benchmarks/baseline.py``: full Jacobian materialised, column slice,
  SVD lstsq — the public code's way), its per-step time and reference / rsng, and the agreement of the
  two velocities θ' on the same θ and index set: ‖J_s(v_ref − v_rsng)‖/‖J_s v_ref‖ (what u sees) and
  ‖v_ref − v_rsng‖/‖v_ref‖.

Writes benchmarks/results/phases-<date>.csv (machine in the header lines).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rsng.core.threads import configure_threads, cpu_kind  # noqa: E402


def best_time(fn, *args, reps: int = 5, inner: int | None = None, budget_s: float = 1.0) -> float:
    """Best-of-``reps`` seconds per call of a compiled ``fn`` (compilation excluded)."""
    import jax

    jax.block_until_ready(fn(*args))
    if inner is None:
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        one = time.perf_counter() - t0
        inner = max(1, min(200, int(budget_s / reps / max(one, 1e-6))))
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            out = fn(*args)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - t0) / inner)
    return best


def gemm_rate(threads: int) -> float:
    """This machine's float32 matrix-multiply rate (flop/s) at 1024², best of 5, with ``threads``
    threads: the best of numpy's BLAS and of XLA with its default dot kernels (YNNPACK, AVX-512 where
    the CPU has it), timed in a child process so that ``--no-ynn`` does not lower the floor."""
    import subprocess

    import numpy as np

    a = np.random.default_rng(0).standard_normal((1024, 1024), dtype=np.float32)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(10):
            a @ a
        best = min(best, (time.perf_counter() - t0) / 10)
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        f"from rsng.core.threads import configure_threads; configure_threads({threads}, override=True)\n"
        "import jax, jax.numpy as jnp\nfrom phases import best_time\n"
        "a = jax.random.normal(jax.random.PRNGKey(0), (1024, 1024), jnp.float32)\n"
        "print(best_time(jax.jit(lambda a: a @ a), a, reps=5, inner=10))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "XLA_FLAGS": " ".join(f for f in os.environ.get("XLA_FLAGS", "").split() if "ynn_fusion_type" not in f),
        },
    )
    if out.returncode == 0:
        best = min(best, float(out.stdout.split()[-1]))
    return 2 * 1024**3 / best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", nargs="+", type=int, default=[1000, 10000])
    ap.add_argument("--sizes", nargs="+", default=["50", "150", "400", "800", "1600", "dense"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10, help="RK4 steps per timed scan")
    ap.add_argument("--no-baseline", action="store_true", help="skip the baseline")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--tag", default="", help="appended to the results file name")
    ap.add_argument(
        "--no-ynn",
        action="store_true",
        help="XLA's YNNPACK dot kernels off for both solvers (jaxlib 0.10): the baseline "
        "is faster without them, rsng with them",
    )
    args = ap.parse_args()
    if args.no_ynn:  # before JAX loads
        os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_cpu_experimental_ynn_fusion_type="
    configure_threads(args.threads, override=True)

    import baseline
    import jax
    import jax.numpy as jnp

    from rsng.core import galerkin, stepping
    from rsng.core.config import resolve
    from rsng.core.fit import initial_theta
    from rsng.core.lstsq import lstsq
    from rsng.core.network import Network
    from rsng.core.problems import get_problem
    from rsng.core.samplers import sample_columns

    problem = get_problem("allen_cahn")
    net = Network(1, problem.lengths, 25, 7)
    p = net.num_params
    theta0, _ = initial_theta(problem, net, 1000, 0)  # the fast preset's θ(0); any θ costs the same
    theta = jnp.asarray(theta0, jnp.float32)
    rate = gemm_rate(args.threads)
    machine = (
        f"{cpu_kind()}, {os.cpu_count()} CPUs, "
        f"threads={args.threads}, jax {jax.__version__}, float32 GEMM {rate / 1e9:.0f} GFLOP/s"
    )
    print(f"# {machine}")
    hdr = (
        f"{'n':>6} {'s':>5} | {'J+F ms':>7} {'F ms':>6} {'sk ms':>6} {'LS ms':>7} {'upd':>5} | {'step ms':>8} "
        f"{'sum':>7} | {'JF/flr':>6} {'F/flr':>6} {'LS/flr':>6} | {'ref ms':>8} {'ref/rsng':>8} {'dJv':>8} {'dv':>8}"
    )
    print(hdr)
    rows = []
    for n in args.n:
        x = jnp.asarray(problem.grid(n), jnp.float32)
        F_fn = jax.jit(lambda th: galerkin.rhs(net, problem, th, x))
        F = F_fn(theta)
        for size in args.sizes:
            dense = size == "dense"
            s = p if dense else int(size)
            cfg = resolve("fast", problem="allen_cahn", n=n, s="dense" if dense else s)
            key = jax.random.PRNGKey(0)
            idx = sample_columns(cfg.sampler, key, s, p)

            # what rsng runs: the hand-written pass for (Aᵀ, Bᵀ, F), then the sampled columns as rows
            def JF(th, idx):
                At, Bt, F_ = galerkin.stage_quantities(net, problem, th, x)
                return galerkin.rows_from_factors(net, At, Bt, None if dense else idx), F_

            JF_fn = jax.jit(JF)
            F_only = jax.jit(lambda th: galerkin.stage_quantities(net, problem, th, x)[2])  # backward pass dropped
            # the autodiff pieces it replaced (vmapped reverse pass for the factors, nested JVPs for F)
            J_fn = jax.jit(
                lambda th, idx: galerkin.columns_from_factors(
                    net, *galerkin.jacobian_factors(net, th, x), None if dense else idx
                )
            )
            Js = J_fn(theta, idx)
            Jr = jnp.asarray(Js.T)  # the layout the solver hands to the least squares: J_sᵀ (s, n)
            LS_fn = jax.jit(lambda Jr, b: lstsq(Jr.T, b, cfg.rcond, cfg.lstsq))
            sk_fn = jax.jit(lambda k: sample_columns(cfg.sampler, k, s, p))
            upd_fn = jax.jit(lambda th, v, idx: th.at[idx].add(cfg.dt * v))
            v = LS_fn(Jr, F)
            reps = 2 if (n >= 10000 and s >= 800) else 5
            # the alternatives each choice was made against
            alt = {}
            for method in ("qr", "svd", "gram"):
                if method == cfg.lstsq:
                    continue  # the default: timed below as the LS phase
                if dense and n >= 10000:
                    alt[f"lstsq_{method}_ms"] = float("nan")
                    continue
                f = jax.jit(lambda Jr, b, m=method: lstsq(Jr.T, b, cfg.rcond, m))
                alt[f"lstsq_{method}_ms"] = 1e3 * best_time(f, Jr, F, reps=reps)
            fused = jax.jit(lambda th, idx: galerkin.jacobian(net, th, x)[:, idx])  # XLA drops unused columns
            alt["jacobian_full_slice_ms"] = 1e3 * best_time(fused, theta, idx, reps=reps)
            if s <= 400:  # forward mode: one JVP per sampled column and point

                def jvp_cols(th, idx):
                    tangents = jax.nn.one_hot(idx, p, dtype=th.dtype)  # (s, p)
                    col = lambda e: jax.vmap(lambda xi: jax.jvp(lambda t: net.apply(t, xi), (th,), (e,))[1])(x)
                    return jax.vmap(col, out_axes=1)(tangents)

                alt["jacobian_jvp_ms"] = 1e3 * best_time(jax.jit(jvp_cols), theta, idx, reps=reps)
            else:
                alt["jacobian_jvp_ms"] = float("nan")
            t_JF = best_time(JF_fn, theta, idx, reps=reps)
            t_Fonly = best_time(F_only, theta, reps=reps)
            alt["jacobian_autodiff_ms"] = 1e3 * best_time(J_fn, theta, idx, reps=reps)
            alt["rhs_autodiff_ms"] = 1e3 * best_time(F_fn, theta, reps=reps)
            t_sk = best_time(sk_fn, key, reps=reps)
            t_LS = best_time(LS_fn, Jr, F, reps=reps)
            alt[f"lstsq_{cfg.lstsq}_ms"] = 1e3 * t_LS
            t_up = best_time(upd_fn, theta, v, idx, reps=reps)
            t_sum = 4 * (t_JF + t_LS) + t_sk + t_up

            step = stepping.make_step(net, problem, cfg, x)
            # about two seconds of stepping per timing (at least one step), fewer repetitions when slow
            k_steps = max(1, min(args.steps, int(2.0 / max(t_sum, 1e-6))))
            step_reps = 1 if t_sum * k_steps > 5 else 3
            scan = jax.jit(
                lambda th, key: jax.lax.scan(
                    lambda t, k: (step(t, k, key).theta, None), th, jnp.arange(k_steps, dtype=jnp.int32)
                )[0]
            )
            t_step = best_time(scan, theta, key, reps=step_reps, inner=1) / k_steps

            lo, hi = min(n, s), max(n, s)
            fl_J, fl_F, fl_LS = 6 * n * p, 2 * n * p * 4, 2 * hi * lo**2 + 21 * lo**3
            row = {
                "n": n,
                "s": s,
                "p": p,
                "dense": dense,
                "threads": args.threads,
                "jacobian_rhs_ms": 1e3 * t_JF,
                "rhs_ms": 1e3 * t_Fonly,
                "sketch_ms": 1e3 * t_sk,
                "lstsq_ms": 1e3 * t_LS,
                "update_ms": 1e3 * t_up,
                "step_ms": 1e3 * t_step,
                "phase_sum_ms": 1e3 * t_sum,
                "jacobian_rhs_floor_ms": 1e3 * (fl_J + fl_F) / rate,
                "rhs_floor_ms": 1e3 * fl_F / rate,
                "lstsq_floor_ms": 1e3 * fl_LS / rate,
                "gemm_gflops": rate / 1e9,
            }
            row["jacobian_rhs_vs_floor"] = row["jacobian_rhs_ms"] / row["jacobian_rhs_floor_ms"]
            row["rhs_vs_floor"] = row["rhs_ms"] / row["rhs_floor_ms"]
            row["lstsq_vs_floor"] = row["lstsq_ms"] / row["lstsq_floor_ms"]
            row.update(alt)
            ref_ms = ratio = dJv = dv = float("nan")
            if not args.no_baseline and not (n >= 10000 and (dense or s >= 1600)):  # minutes per step there
                bstep = baseline.make_step(net, problem, x, cfg.dt, s, cfg.rcond)
                bscan = jax.jit(
                    lambda th, key: jax.lax.scan(
                        lambda t, k: (bstep(t, k, key), None), th, jnp.arange(k_steps, dtype=jnp.int32)
                    )[0]
                )
                ref_ms = 1e3 * best_time(bscan, theta, key, reps=step_reps, inner=1) / k_steps
                ratio = ref_ms / row["step_ms"]
                v_ref = jax.jit(baseline.velocity(net, problem, x, cfg.rcond))(theta, idx)[idx]
                dJv = float(jnp.linalg.norm(Js @ (v_ref - v)) / jnp.linalg.norm(Js @ v_ref))
                dv = float(jnp.linalg.norm(v_ref - v) / jnp.linalg.norm(v_ref))
            row.update(
                reference_step_ms=ref_ms, reference_over_rsng=ratio, velocity_rel_diff_Jv=dJv, velocity_rel_diff_v=dv
            )
            rows.append(row)
            print(
                f"{n:>6} {('dense' if dense else s):>5} | {row['jacobian_rhs_ms']:7.2f} {row['rhs_ms']:6.2f} "
                f"{row['sketch_ms']:6.3f} {row['lstsq_ms']:7.2f} {row['update_ms']:5.2f} | {row['step_ms']:8.1f} "
                f"{row['phase_sum_ms']:7.1f} | {row['jacobian_rhs_vs_floor']:6.1f} {row['rhs_vs_floor']:6.1f} "
                f"{row['lstsq_vs_floor']:6.1f} | {ref_ms:8.1f} {ratio:8.2f} {dJv:8.1e} {dv:8.1e}",
                flush=True,
            )
            print(
                f"{'':>14}least squares: gram {alt['lstsq_gram_ms']:.2f} ms, qr {alt['lstsq_qr_ms']:.2f} ms, "
                f"svd {alt['lstsq_svd_ms']:.2f} ms; "
                f"J full+slice {alt['jacobian_full_slice_ms']:.2f} ms, jvp {alt['jacobian_jvp_ms']:.2f} ms; "
                f"autodiff pieces: J {alt['jacobian_autodiff_ms']:.2f} ms, F {alt['rhs_autodiff_ms']:.2f} ms",
                flush=True,
            )
    import pandas as pd

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"phases-t{args.threads}-{dt.date.today().isoformat()}{'-' + args.tag if args.tag else ''}.csv"
    with path.open("w") as f:
        f.write(f"# {machine}\n")
        pd.DataFrame(rows).to_csv(f, index=False, float_format="%.6g")
    print(f"# written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
