"""Screen θ(0) fits by marching them: one θ(0), or exact reparametrisations of it, over many sketch seeds.

    python benchmarks/theta0_screen.py --problem burgers --rcond 1e-4 --t-end 0.3 --seeds 5-24
    python benchmarks/theta0_screen.py --problem burgers --fit-recipe adam-lm,lr=1e-3,embed=5 --t-end 4 --seeds 0-4
    python benchmarks/theta0_screen.py --problem burgers --t-end 0.3 --seeds 5-14 \\
        --variant base: --variant dout2:dout=2 --variant W/2:cin=1/0.5/0.5/0.5/0.5/0.5
    python benchmarks/theta0_screen.py --compare benchmarks/results/initial-fit-heldout-2026-12-04b-epyc.jsonl

θ(0) is the fit of ``--fit-recipe`` (default: the run's default at ``--rcond``; found in the cache, a shipped
file, or fitted) for the preset's grid and ``--init-seed``, or the array ``theta`` of ``--theta FILE.npz``.
Each ``--variant NAME:SPEC`` applies exact symmetries of the network (:func:`rescale`; u is unchanged up to
rounding, the printed ``du_max``) before marching; SPEC is ``;``-separated ``cin=…``, ``dout=…``, ``e=…``, each one
factor for every rational layer or ``/``-separated factors per layer (act0 … act{depth-2}). Every variant is marched
as one :class:`rsng.core.integrate.TrajectoryBatch` of the ``--seeds``, each member configured as ``rsng solve
--problem P --preset PRESET --rcond R --seed S --t-end T`` (float32 unless ``--precision f64``), from the same θ(0).

Prints, per variant: σ_max of the full J(θ(0)) on the grid and how many singular values lie above rcond·σ_max,
‖J‖_F² by parameter group, the mean rank the cut-off kept per step, the mean relative error at t = 0.1, 0.2 and
``--t-end`` and the space-time error (mean and max/min over the seeds); ``--out F.jsonl`` appends one row per
variant with every seed's error. A march to a short ``--t-end`` costs little, but ranks fits only roughly:
docs/initial-fit.md ("Exact reparametrisations, richer embeddings and a stochastic fit") has a fit 15 % better over
t ≤ 0.3 on twenty held-out seeds and 6 % worse over the whole run on the test seeds.

Comparing θ(0)s: with two or more variants, and with ``--compare F.jsonl [G.jsonl …]`` (rows of ``--out`` files from
several runs, read in the order given, nothing marched), it prints each row's space-time error and its **paired**
difference from a baseline: the mean over the seeds of log(error / the baseline's error on the same seed) ± its
standard error, and exp(paired) − 1 as a percentage. Rows pair only with rows of the same problem, preset, cut-off,
precision, ``t_end`` and seeds; the baseline is each such group's first ``base`` row (θ(0) itself), else its first
row, or, with ``--baseline TEXT``, its first row whose θ(0) and variant contain TEXT. Pairing removes most of the
sketch seeds' spread, which is larger than the differences between fits (docs/initial-fit.md). ``--plot F.png``
draws the same as a forest plot (± 2 standard errors; green: better than the baseline by more than that, red:
worse).

How many seeds a target needs: ``--compare … --subsets K --target X`` pools, per θ(0) (label) and setting
(problem, preset, cut-off, precision, ``t_end``), every seed's error over the rows (the first row that has a seed
gives its error), and prints the pooled mean and standard deviation and the distribution of the means over all ways
to choose K of those seeds: median, 90th percentile, smallest, and the share at or below X — how often a target "mean over K seeds
≤ X" is met by K seeds drawn from those measured (docs/initial-fit.md, "What five test seeds can show").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SYMMETRIES = ("cin", "dout", "e")


def rescale(net, theta: np.ndarray, cin=None, dout=None, e=None) -> np.ndarray:
    """θ with each rational layer ``l`` (``act0`` … ``act{depth-2}``) reparametrised without changing u.

    With ``R(z) = (α3 z³ + α2 z² + α1 z + α0) / (β2 z² + β1 z + β0)`` (docs/method.md, "The network"):

    - ``cin[l] = c`` scales the layer's pre-activation z by c (the embedding's ``a`` and ``c``, or the dense
      layer's ``w`` and ``b``) and sets ``α ← α·(1/c, 1, c, c²)``, ``β ← β·(1, c, c²)``, so that R'(c z) = R(z);
    - ``dout[l] = d`` scales R's output by d (``α ← d α``) and divides the next layer's weights by d;
    - ``e[l] = f`` multiplies α and β by f (R unchanged).

    Factors are per layer (length depth − 1) or ``None`` (all 1). Returns a float64 copy.
    """
    n_act = net.depth - 1
    th = np.array(theta, np.float64)

    def factors(v, name):
        v = np.ones(n_act) if v is None else np.asarray(v, np.float64)
        if v.shape != (n_act,) or not np.all(np.isfinite(v)) or np.any(v == 0):
            raise ValueError(f"{name}: {n_act} finite non-zero factors (one per rational layer) expected, got {v}")
        return v

    cin, dout, e = factors(cin, "cin"), factors(dout, "dout"), factors(e, "e")

    def block(name):
        o, shape = net.offsets[name]
        return slice(o, o + int(np.prod(shape)))

    for l in range(n_act):
        c, d, f = cin[l], dout[l], e[l]
        for name in ("embed/a", "embed/c") if l == 0 else (f"dense{l}/w", f"dense{l}/b"):
            th[block(name)] *= c
        th[block(f"act{l}/alpha")] *= np.array([1 / c, 1.0, c, c * c]) * d * f
        th[block(f"act{l}/beta")] *= np.array([1.0, c, c * c]) * f
        th[block(f"dense{l + 1}/w" if l + 1 < n_act else "out/w")] /= d
    return th


def parse_variant(text: str, n_act: int) -> tuple[str, dict[str, list[float]]]:
    """``NAME:cin=…;dout=…;e=…`` → (name, per-layer factors); ``NAME:`` is θ(0) itself."""
    name, sep, spec = text.partition(":")
    if not sep or not name:
        raise SystemExit(f"--variant: NAME:SPEC expected (e.g. base: or dout2:dout=2), got {text!r}")
    out = {k: [1.0] * n_act for k in SYMMETRIES}
    for item in filter(None, spec.split(";")):
        key, eq, val = item.partition("=")
        if key not in SYMMETRIES or not eq:
            raise SystemExit(f"--variant {name}: {item!r}; accepted keys: {', '.join(SYMMETRIES)} (key=factor)")
        try:
            vals = [float(v) for v in val.split("/")]
        except ValueError:
            raise SystemExit(f"--variant {name}: {key} needs numbers, got {val!r}") from None
        if len(vals) not in (1, n_act):
            raise SystemExit(f"--variant {name}: {key} takes 1 or {n_act} factors (one per rational layer)")
        out[key] = vals * n_act if len(vals) == 1 else vals
    return name, out


def parse_seeds(text: str) -> list[int]:
    """``5-24`` (inclusive) or ``0,1,2``."""
    try:
        if "-" in text and "," not in text:
            lo, hi = (int(v) for v in text.split("-"))
            seeds = list(range(lo, hi + 1))
        else:
            seeds = [int(v) for v in text.split(",")]
    except ValueError:
        raise SystemExit(f"--seeds: a range like 5-24 or a list like 0,1,2 expected, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise SystemExit(f"--seeds: distinct seeds expected, got {text!r}")
    return seeds


def _floats(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], np.float64)  # a null error is a failed seed


def paired(base: list[float], errors: list[float]) -> tuple[float, float, int]:
    """Mean over the seeds of log(error / the baseline's error on the same seed), its standard error, and the
    number of seeds both have a finite positive error for (a failed seed is left out and counted)."""
    b, e = _floats(base), _floats(errors)
    ok = np.isfinite(b) & np.isfinite(e) & (b > 0) & (e > 0)
    d = np.log(e[ok] / b[ok])
    if d.size == 0:
        return float("nan"), float("nan"), 0
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else float("nan"), int(d.size)


def compare_rows(rows: list[dict], baseline: str | None = None) -> list[dict]:
    """Each row of ``--out`` files paired with its group's baseline.

    A group is the rows of one problem, preset, cut-off, precision, ``t_end`` and list of seeds (only such rows
    pair). Its baseline is the first row whose label (``theta0``, then ``variant``) contains ``baseline``, or, with
    none given, the first row whose variant is ``base`` (θ(0) itself), else the group's first row. Returns one dict
    per row in file order: ``label``, ``group`` (a tuple), ``mean``, ``max_over_min``, ``paired``, ``se``, ``n``
    (seeds paired) and ``is_baseline``; a row of a group without a baseline (``baseline`` not found) has
    ``paired`` nan.
    """

    def key(r):
        return (r["problem"], r["preset"], r["rcond"], r["precision"], r["t_end"], tuple(r["seeds"]))

    def label(r):
        return f"{r['theta0']} {r['variant']}"

    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    base_of = {}
    for k, members in groups.items():
        if baseline is not None:
            found = [r for r in members if baseline in label(r)]
        else:
            found = [r for r in members if r["variant"] == "base"] or members
        base_of[k] = found[0] if found else None
    out = []
    for r in rows:
        b = base_of[key(r)]
        nan = float("nan")
        mean_log, se, n = paired(b["errors"], r["errors"]) if b is not None else (nan, nan, 0)
        errors = _floats(r["errors"])
        out.append(
            dict(
                label=label(r),
                group=key(r),
                mean=float(np.nanmean(errors)) if np.isfinite(errors).any() else nan,
                max_over_min=float(np.nanmax(errors) / np.nanmin(errors)) if np.isfinite(errors).any() else nan,
                paired=mean_log,
                se=se,
                n=n,
                is_baseline=r is b,
            )
        )
    return out


def subset_means(rows: list[dict], k: int, target: float) -> list[dict]:
    """Per θ(0) (label) and setting, the seeds' errors pooled over ``rows`` (the first row with a seed gives its
    error; failed seeds are left out) and the means of all ``k``-seed subsets of them. Returns one dict per pool in
    first-seen order: ``label``, ``setting`` (problem, preset, rcond, precision, t_end), ``seeds`` (sorted),
    ``mean``, ``sd``, and over the subsets ``subsets`` (their number), ``median``, ``q90`` (the 90th percentile),
    ``smallest`` and ``share`` (the fraction whose mean is ≤ ``target``); pools of fewer than ``k`` seeds have
    ``subsets`` 0 and nan there."""
    from itertools import combinations

    pools: dict[tuple, dict[int, float]] = {}
    for r in rows:
        pool = pools.setdefault(
            (f"{r['theta0']} {r['variant']}", (r["problem"], r["preset"], r["rcond"], r["precision"], r["t_end"])), {}
        )
        for seed, err in zip(r["seeds"], _floats(r["errors"]), strict=True):
            if seed not in pool and np.isfinite(err):
                pool[seed] = float(err)
    out = []
    for (label, setting), by_seed in pools.items():
        seeds = sorted(by_seed)
        errors = np.array([by_seed[s] for s in seeds])
        means = np.array([np.mean(c) for c in combinations(errors, k)]) if len(errors) >= k else np.array([])
        nan = float("nan")
        out.append(
            dict(
                label=label,
                setting=setting,
                seeds=seeds,
                mean=float(errors.mean()) if errors.size else nan,
                sd=float(errors.std(ddof=1)) if errors.size > 1 else nan,
                subsets=int(means.size),
                median=float(np.median(means)) if means.size else nan,
                q90=float(np.quantile(means, 0.9)) if means.size else nan,
                smallest=float(means.min()) if means.size else nan,
                share=float(np.mean(means <= target)) if means.size else nan,
            )
        )
    return out


def print_subsets(rows: list[dict], k: int, target: float) -> None:
    """The table of :func:`subset_means`, one block per setting."""
    table = subset_means(rows, k, target)
    for setting in dict.fromkeys(c["setting"] for c in table):
        problem, preset, rcond, precision, t_end = setting
        print(
            f"# {problem} {preset} rcond={rcond:g} {precision} t_end={t_end:g}: means over {k} seeds, target ≤ {target:g}"
        )
        print(
            f"{'seeds':>5} {'mean':>9} {'s.d.':>9} {'subsets':>7} {'median':>9} {'90 %':>9} {'smallest':>9} "
            f"{'share':>7}  θ(0) variant"
        )
        for c in (c for c in table if c["setting"] == setting):
            share = f"{c['share']:7.1%}" if c["subsets"] else f"{'-':>7}"
            print(
                f"{len(c['seeds']):5d} {_e(c['mean'])} {_e(c['sd'])} {c['subsets']:7d} {_e(c['median'])} "
                f"{_e(c['q90'])} {_e(c['smallest'])} {share}  {c['label']}"
            )


def print_comparison(rows: list[dict], baseline: str | None = None) -> None:
    """The table of :func:`compare_rows`, one block per group; ``%`` is exp(paired) − 1."""
    table = compare_rows(rows, baseline)
    for group in dict.fromkeys(c["group"] for c in table):
        problem, preset, rcond, precision, t_end, seeds = group
        print(
            f"# {problem} {preset} rcond={rcond:g} {precision} t_end={t_end:g} seeds {seeds[0]}…{seeds[-1]} ({len(seeds)})"
        )
        print(f"{'space-time':>10} {'max/min':>7} {'paired':>7} {'± s.e.':>7} {'%':>6}  θ(0) variant")
        for c in (c for c in table if c["group"] == group):
            if c["is_baseline"]:
                diff = f"{'':>7} {'':>7} {'base':>6}"
            elif c["n"] == 0:
                diff = f"{'-':>7} {'-':>7} {'-':>6}"
            else:
                diff = f"{c['paired']:+7.3f} {c['se']:7.3f} {np.expm1(c['paired']):+6.0%}"
            tail = "" if c["is_baseline"] or c["n"] in (0, len(seeds)) else f"  ({c['n']} seeds paired)"
            print(f"{c['mean']:10.3e} {c['max_over_min']:7.2f} {diff}  {c['label']}{tail}")


def plot_comparison(rows: list[dict], path: str, baseline: str | None = None) -> None:
    """A forest plot of :func:`compare_rows`: one panel per group, each row's paired difference from its baseline
    as exp(paired) − 1 with ± 2 standard errors (the same transform), the baseline at 0. Groups of one row are
    left out; with none left, nothing is drawn and :class:`SystemExit` says so."""
    from matplotlib.figure import Figure

    table = compare_rows(rows, baseline)
    groups = [g for g in dict.fromkeys(c["group"] for c in table) if sum(c["group"] == g for c in table) > 1]
    if not groups:
        raise SystemExit("--plot: no group of two or more rows to compare (same problem, preset, rcond, t_end, seeds)")
    heights = [len([c for c in table if c["group"] == g]) for g in groups]
    fig = Figure(figsize=(9.0, 1.0 + 0.32 * sum(heights) + 0.6 * len(groups)), layout="constrained")
    axes = fig.subplots(len(groups), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    for ax, group in zip(axes, groups, strict=True):
        members = [c for c in table if c["group"] == group]
        y = np.arange(len(members))[::-1]
        for yi, c in zip(y, members, strict=True):
            if c["n"] == 0 and not c["is_baseline"]:
                continue  # nothing to pair with
            mid = 0.0 if c["is_baseline"] else np.expm1(c["paired"]) * 100
            se = 0.0 if c["is_baseline"] or c["se"] != c["se"] else c["se"]
            lo, hi = np.expm1(c["paired"] - 2 * se) * 100, np.expm1(c["paired"] + 2 * se) * 100
            colour = "0.3" if c["is_baseline"] else ("tab:green" if hi < 0 else "tab:red" if lo > 0 else "tab:blue")
            ax.errorbar(mid, yi, xerr=[[mid - lo], [hi - mid]] if se else None, fmt="o", color=colour, capsize=3)
        ax.axvline(0.0, color="0.5", lw=0.8)
        ax.set_yticks(y, [c["label"] + (" (baseline)" if c["is_baseline"] else "") for c in members], fontsize=8)
        problem, preset, rcond, precision, t_end, seeds = group
        ax.set_title(
            f"{problem} {preset}, rcond {rcond:g}, {precision}, t_end {t_end:g}, seeds {seeds[0]}…{seeds[-1]}",
            fontsize=9,
        )
    axes[-1].set_xlabel("space-time error against the baseline, paired over the seeds (%), ± 2 s.e.")
    fig.savefig(path, dpi=120)


def _e(v: float) -> str:
    return f"{'-':>9}" if v != v else f"{v:9.3e}"


def group_of(name: str) -> str:
    """The parameter group of a block of :attr:`rsng.core.network.Network.layout`."""
    from rsng.core.network import Network

    if name.startswith("embed/"):
        return "embedding"
    if name.endswith(("/alpha", "/beta")):
        return "rational"
    if Network.is_dense_weight(name):
        return "dense W"
    return "dense b" if name.startswith("dense") else name  # out/w, out/b


def _report(rows: list[dict], args: argparse.Namespace) -> None:
    if args.subsets is not None:
        print_subsets(rows, args.subsets, args.target)
        return
    print_comparison(rows, args.baseline)
    if args.plot:
        plot_comparison(rows, args.plot, args.baseline)
        print(f"# plot: {args.plot}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problem", help="PDE (see `rsng problems`); required unless --compare")
    ap.add_argument("--preset", default="fast", choices=["smoke", "fast", "accurate"], help="(default fast)")
    ap.add_argument(
        "--fit-recipe", default="default", help="θ(0) recipe, as `rsng fit --fit-recipe` (default: default)"
    )
    ap.add_argument(
        "--init-seed", type=int, help="the fit's initialisation seed (default: the run's, as for `rsng solve`)"
    )
    ap.add_argument("--theta", help="an .npz with the array 'theta' to march instead of a fit")
    ap.add_argument("--rcond", type=float, default=1e-4, help="least-squares cut-off (default 1e-4, the paper's)")
    ap.add_argument("--t-end", type=float, default=0.5, help="final time of every march (default 0.5)")
    ap.add_argument("--seeds", default="5-24", help="sketch seeds: 5-24 (inclusive) or 0,1,2 (default 5-24)")
    ap.add_argument("--precision", default="f32", choices=["f32", "f64"], help="time stepping (default f32)")
    ap.add_argument("--variant", action="append", help="NAME:SPEC, see above (repeatable; default base:)")
    ap.add_argument("--threads", type=int, default=None, help="XLA/BLAS threads (default: the CPUs given)")
    ap.add_argument("--out", help="append one JSON row per variant to this file")
    ap.add_argument(
        "--compare",
        nargs="+",
        metavar="F.jsonl",
        help="march nothing: pair the rows of one or more --out files, read in the order given (see above)",
    )
    ap.add_argument(
        "--baseline", help="compare against the first row whose θ(0) and variant contain this (default: see above)"
    )
    ap.add_argument("--plot", metavar="F.png", help="also draw the paired comparison (--compare, or ≥ 2 variants)")
    ap.add_argument(
        "--subsets", type=int, metavar="K", help="with --compare: the means of all K-seed subsets instead (see above)"
    )
    ap.add_argument("--target", type=float, help="with --subsets: count the subset means at or below this")
    args = ap.parse_args(argv)
    if args.subsets is not None or args.target is not None:
        if not args.compare or args.subsets is None or args.target is None:
            ap.error("--subsets K and --target X go together, with --compare")
        if args.subsets < 1:
            ap.error(f"--subsets: a number of seeds ≥ 1 expected, got {args.subsets}")
        if args.plot:
            ap.error("--plot draws the paired comparison, not --subsets")
    if args.compare:
        rows = []
        for path in args.compare:
            try:
                rows += [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
            except (OSError, ValueError) as err:
                raise SystemExit(f"--compare: rows written by --out expected in {path} ({err})") from None
        if not rows:
            raise SystemExit(f"--compare: no rows in {' '.join(args.compare)}")
        _report(rows, args)
        return
    if not args.problem:
        ap.error("--problem is required (unless --compare)")

    from rsng.core.threads import configure_threads, cpu_kind

    threads = configure_threads(args.threads, override=args.threads is not None)

    import jax.numpy as jnp

    from rsng.core.config import ConfigError, resolve
    from rsng.core.fit import full_jacobian, initial_theta, singular_values
    from rsng.core.integrate import TrajectoryBatch
    from rsng.core.network import Network
    from rsng.core.problems import get_problem
    from rsng.core.recipe import parse
    from rsng.core.reference import run_reference

    seeds = parse_seeds(args.seeds)
    common = dict(problem=args.problem, rcond=args.rcond, t_end=args.t_end, fit_recipe=args.fit_recipe)
    common.update(init_seed=args.init_seed, precision=args.precision)
    try:
        cfgs = [resolve(args.preset, seed=s, **common) for s in seeds]
    except ConfigError as err:  # names the field and the accepted values
        raise SystemExit(f"theta0_screen.py: {err}") from None
    cfg0, problem = cfgs[0], get_problem(args.problem)
    net = Network(problem.dim, problem.lengths, cfg0.width, cfg0.depth)
    n_act = net.depth - 1
    variants = [parse_variant(v, n_act) for v in (args.variant or ["base:"])]
    if args.plot and len(variants) < 2:
        raise SystemExit("--plot: a march draws a comparison of two or more --variant (or use --compare F.jsonl)")
    if args.theta:
        try:
            theta0 = np.asarray(np.load(args.theta, allow_pickle=False)["theta"], np.float64)
        except (OSError, KeyError, ValueError) as err:
            raise SystemExit(f"--theta: an .npz with the array 'theta' expected ({err})") from None
        if theta0.shape != (net.num_params,):
            raise SystemExit(f"--theta: 'theta' of shape ({net.num_params},) expected, got {theta0.shape}")
        source = args.theta
    else:
        theta0, _ = initial_theta(problem, net, cfg0.n, cfg0.init_seed, parse(cfg0.fit_recipe))
        source = f"{cfg0.fit_recipe} (init_seed {cfg0.init_seed})"
    machine = f"{cpu_kind()}, {os.cpu_count()} CPUs, threads={threads}"
    print(
        f"# {machine}, {args.problem} {args.preset} rcond={args.rcond:g} t_end={args.t_end:g} {args.precision}, "
        f"seeds {seeds[0]}…{seeds[-1]} ({len(seeds)}), θ(0): {source}",
        flush=True,
    )

    x = jnp.asarray(problem.grid(cfg0.n), jnp.float64)
    u0 = np.asarray(net.apply_batch(jnp.asarray(theta0), x))
    ref = run_reference(cfg0)
    header = f"{'variant':<12} {'du_max':>8} {'σ_max':>7} {'rank':>5} {'kept':>6} {'e(0.1)':>9} {'e(0.2)':>9}"
    header += f" {'e(T)':>9} {'space-time':>10} {'max/min':>7} {'wall s':>7}  ‖J‖_F² by group"
    print(header, flush=True)
    rows = []
    for name, factors in variants:
        th = rescale(net, theta0, **factors)
        du = float(np.max(np.abs(np.asarray(net.apply_batch(jnp.asarray(th), x)) - u0)))
        J = full_jacobian(problem, net, th, cfg0.n)
        sigma = singular_values(J)
        norms: dict[str, float] = {}
        for block, (o, shape) in net.offsets.items():
            g = group_of(block)
            norms[g] = norms.get(g, 0.0) + float(np.sum(J[:, o : o + int(np.prod(shape))] ** 2))
        t0 = time.perf_counter()
        batch = TrajectoryBatch(
            cfgs, theta0=th, reference=ref.u, reference_method=ref.method, fit_info={"sigma": sigma}
        )
        results = batch.run()
        wall = time.perf_counter() - t0
        errors = np.array([r.rel_l2 for r in results])
        t = results[0].t

        def at(tq, results=results, t=t):  # nan past the run's end
            if tq > t[-1] + 1e-12:
                return float("nan")
            return float(np.mean([r.rel_l2_t[int(np.argmin(np.abs(t - tq)))] for r in results]))

        row = {
            "problem": args.problem,
            "preset": args.preset,
            "theta0": source,
            "fit_recipe": cfg0.fit_recipe if not args.theta else None,
            "init_seed": cfg0.init_seed if not args.theta else None,
            "variant": name,
            "factors": factors,
            "rcond": args.rcond,
            "t_end": args.t_end,
            "precision": args.precision,
            "seeds": seeds,
            "errors": [None if e != e else e for e in errors.tolist()],  # a failed seed's nan → null
            "status": [r.status for r in results],
            "mean": float(errors.mean()),
            "max_over_min": float(errors.max() / errors.min()),
            "e_t0.1": at(0.1),  # nan past t_end (null in the row)
            "e_t0.2": at(0.2),
            "e_end": at(args.t_end),
            "du_max": du,
            "j0_sigma_max": float(sigma[0]),
            "j0_rank_at_rcond": int(np.sum(sigma > args.rcond * sigma[0])),
            "j_normsq_by_group": norms,
            "mean_kept_rank": float(np.nanmean([np.nanmean(r.ls_rank) for r in results])),
            "wall_s": wall,
            "machine": machine,
        }
        groups = ", ".join(f"{g} {v:.0f}" for g, v in sorted(norms.items(), key=lambda kv: -kv[1]))
        print(
            f"{name:<12} {du:8.1e} {sigma[0]:7.1f} {row['j0_rank_at_rcond']:5d} {row['mean_kept_rank']:6.1f} "
            f"{_e(row['e_t0.1'])} {_e(row['e_t0.2'])} {_e(row['e_end'])} {row['mean']:10.3e} "
            f"{row['max_over_min']:7.2f} {wall:7.0f}  {groups}",
            flush=True,
        )
        rows.append(row)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps({k: None if v != v else v for k, v in row.items()}) + "\n")  # nan → null
    if len(rows) > 1:
        print()
        _report(rows, args)


if __name__ == "__main__":
    main()
