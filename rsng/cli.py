"""``rsng`` command line: one trajectory, a reference solution, a θ(0) fit, the problem list.

Every subcommand validates its input before any computation: a bad value prints one line naming
the option and what is accepted, and exits with code 2. Heavy layers are imported lazily.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

__all__ = ["main"]

EXIT_OK, EXIT_DIVERGED, EXIT_USAGE = 0, 1, 2
#: the reader of stdout went away (``rsng problems | head -3``): 128 + SIGPIPE, as a shell reports a
#: command that the signal stopped
EXIT_PIPE = 141


def _flag(field: str) -> str:
    """The command-line flag of a run field (:mod:`rsng.core.record`)."""
    from rsng.core import record

    try:
        return record.field(field).option
    except KeyError:
        return "--" + field.replace("_", "-")


def _sparsity(value: str) -> int | str:
    if value == "dense":
        return "dense"
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'dense', got {value!r}") from None


def _field_help(f) -> str:
    accepted = f.accepted()
    parts = [f.doc]
    if f.unit:
        parts.append(f"[{f.unit}]")
    if accepted is not None and f.name != "problem" and not f.doc.count(accepted[0]):
        parts.append("; accepted: " + ", ".join(accepted))
    from rsng.core.record import FROM_PROBLEM

    if f.default is FROM_PROBLEM:
        parts.append("(default: the problem's or preset's)")
    elif f.default is not None and f.name != "problem":
        parts.append(f"(default {f.default})")
    return " ".join(parts).replace(" ;", ";").replace("%", "%%")


def _run_options(p: argparse.ArgumentParser, *, solver: bool = True) -> None:
    """The run fields' flags (:mod:`rsng.core.record`): the ``run`` ones everywhere, the ``solve`` ones
    when ``solver``. Values are checked by :func:`rsng.core.config.resolve`, not here."""
    from rsng.core import record

    for f in record.input_fields():
        if f.cli == "run" or (solver and f.cli == "solve"):
            kind = _sparsity if f.name == "s" else {"int": int, "float": float, "str": str}[f.type]
            p.add_argument(
                f.option, *f.aliases, dest=f.name, type=kind, required=f.name == "problem", help=_field_help(f)
            )
        if f.name == "problem":
            p.add_argument(
                "--preset",
                choices=("smoke", "fast", "accurate"),
                help="smoke: a few seconds; fast: n=1000 (the paper's 'fast' rows); accurate: n=10 000, s=800",
            )
    p.add_argument(
        "--threads", type=int, help="XLA threads (default: the CPUs this process may use; BLAS/LAPACK gets one)"
    )
    p.add_argument(
        "--cache-dir", help="θ(0), reference and JAX compilation cache (default $RSNG_CACHE_DIR or ~/.cache/rsng)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rsng", description="Randomized Sparse Neural Galerkin schemes.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "solve",
        help="run one trajectory and report its error and cost",
        description="Run one RSNG trajectory; prints a summary (or one JSON object with --json). "
        "Exit code 0: ok, 1: diverged, 2: bad input.",
    )
    _run_options(p)
    p.add_argument(
        "--theta0",
        metavar="FILE",
        help="start from this θ(0) instead of the fit: an .npy array of the network's p parameters (as --out "
        "writes theta_final.npy) or an .npz with the array 'theta' (a fit's file); not with --fit-recipe or "
        "--init-seed",
    )
    p.add_argument("--out", help="folder for summary.json, series.csv, theta_final.npy and error.png")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser(
        "reference",
        help="compute (or load from cache) a reference solution",
        description="Compute the reference solution on the run's grid and stored times, cached on disk.",
    )
    _run_options(p, solver=False)
    p.add_argument("--save-every", type=int, help="stored times every k-th step")
    p.add_argument("--out", help="also write the reference as an .npz file here")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser(
        "fit",
        help="fit θ(0) to u0 (cached; --ship writes the package's data file)",
        description="Fit the network to u0 on the collocation grid with the θ(0) recipe (--fit-recipe: "
        "starting point, then the budgets of L-BFGS, Levenberg–Marquardt, Adam and a Levenberg–Marquardt polish, "
        "and optionally a denser grid for L-BFGS and Adam, points=m; docs/initial-fit.md) and cache θ(0). "
        "A fit reports its progress on stderr (L-BFGS and Adam 20 times each, with the time left; unless --json). "
        "Prints the t = 0 error and the spectrum of the full Jacobian J(θ(0)) on the grid: σ_max and how many "
        "singular values lie above 1e-4, 1e-5 and the run's rcond times σ_max.",
    )
    _run_options(p, solver=False)
    p.add_argument(
        "--rcond",
        type=float,
        help="the cut-off of the runs this fit is for: the default recipe may depend on it (burgers at the "
        "paper's 1e-4; docs/initial-fit.md), and the spectrum is also counted at it (default: the problem's)",
    )
    p.add_argument("--refit", action="store_true", help="ignore cached and shipped files")
    p.add_argument("--ship", action="store_true", help="also write the result into rsng/core/data (for releases)")
    p.add_argument("--lbfgs-steps", type=int, help="L-BFGS iterations (overrides the recipe's)")
    p.add_argument("--lm-steps", type=int, help="Levenberg–Marquardt iterations (overrides the recipe's)")
    p.add_argument("--adam-steps", type=int, help="Adam iterations (overrides the recipe's)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser(
        "mlflow-sync",
        help="upload to MLflow what a sweep's Parquet results hold and MLflow lacks",
        description="Log every trajectory of <storage>/<sweep> that MLflow does not have yet "
        "(one child run per trajectory under the sweep's parent run); never duplicates.",
    )
    p.add_argument("sweep_dir", help="the sweep folder, <storage>/<sweep name> (a local path, or s3://… / gs://…)")
    p.add_argument(
        "--mlflow-uri",
        help="tracking URI (default: sqlite:///<sweep_dir>/mlflow.db; for an s3:// or "
        "gs:// sweep, the local $RSNG_CACHE_DIR/mlflow/<scheme>/<bucket>/<prefix>/mlflow.db)",
    )

    p = sub.add_parser(
        "pareto",
        help="the Pareto front (error vs cost) of a sweep's trajectories",
        description="Print the trajectories of <storage>/<sweep> that are on the Pareto front of "
        "(--x, --y), both minimised, one front per --by group. Diverged/failed runs are "
        "never on a front and are counted below it. Exit code 2: bad input.",
    )
    p.add_argument("sweep_dir", help="the sweep folder, <storage>/<sweep name> (a local path, or s3://… / gs://…)")
    p.add_argument(
        "--x",
        default="wall_s",
        help="cost: a column or an expression over columns, e.g. 'steps * s**2' "
        "(numbers, + - * / **, parentheses, log log10 log2 sqrt exp abs; "
        "default wall_s)",
    )
    p.add_argument("--y", default="rel_l2", help="error: a column or an expression (default rel_l2)")
    p.add_argument(
        "--by",
        default="problem",
        help="comma-separated columns, one front per group; 'none' for a single front (default problem)",
    )
    p.add_argument(
        "--aggregate",
        action="store_true",
        help="front of the configurations (means over seeds) instead of the single runs",
    )
    p.add_argument(
        "--plot", help="also draw the runs, their front and the paper's points into this .png/.svg/.pdf file"
    )
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")

    p = sub.add_parser(
        "report",
        help="write a static HTML report of a sweep",
        description="Write <out>/index.html with the Pareto plots, error-vs-s and error-over-time "
        "curves, the failure table and the sweep's configuration and versions; it "
        "references only the files it writes next to it.",
    )
    p.add_argument("sweep_dir", help="the sweep folder, <storage>/<sweep name> (a local path, or s3://… / gs://…)")
    p.add_argument("--out", required=True, help="folder for index.html and its images (created if needed)")
    p.add_argument(
        "--no-reference",
        action="store_true",
        help="skip the spectral reference's work-precision curve (which runs the numerical core, seconds)",
    )
    p.add_argument("--cache-dir", help="reference cache (default $RSNG_CACHE_DIR or ~/.cache/rsng)")

    sub.add_parser("problems", help="list the registered problems and their presets")
    return parser


class UsageError(Exception):
    pass


def _resolve(args: argparse.Namespace, solver: bool = True):
    from rsng.core import record
    from rsng.core.config import ConfigError, resolve

    kw = {
        f.name: getattr(args, f.name) for f in record.input_fields() if f.cli == "run" or (solver and f.cli == "solve")
    }
    if not solver:  # the solve options that `rsng reference` (save_every) and `rsng fit` (rcond) take
        kw.update({k: v for k in ("save_every", "rcond") if (v := getattr(args, k, None)) is not None})
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DeprecationWarning)
            cfg = resolve(args.preset, **kw)
        for w in caught:
            print(f"rsng: warning: {w.message}", file=sys.stderr)
        return cfg
    except ConfigError as e:
        raise UsageError(f"{_flag(e.field)}: {str(e).split(': ', 1)[1]}") from None


def _check_folder(flag: str, value: str | None) -> None:
    """``value`` must be a folder or creatable as one: the first of it and its ancestors that
    exists must be a folder (else one UsageError naming ``flag``, before any computation)."""
    if value is None:
        return
    path = Path(value)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise UsageError(f"{flag}: {value!r} cannot be a folder: {str(p)!r} exists and is not a folder")
            return


def _setup(args: argparse.Namespace) -> None:
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads: must be ≥ 1, got {args.threads}")
    _check_folder("--cache-dir", args.cache_dir)
    from rsng.core.threads import configure_threads, enable_compilation_cache

    configure_threads(args.threads)
    enable_compilation_cache(args.cache_dir)


def _cmd_solve(args: argparse.Namespace) -> int:
    cfg = _resolve(args)
    _check_folder("--out", args.out)
    _setup(args)
    from rsng.core.integrate import Trajectory

    theta0 = info = None
    if args.theta0 is not None:
        from rsng.core.fit import given_theta
        from rsng.core.record import fit_fields_given

        given = [_flag(name) for name in fit_fields_given(args)]
        if given:
            raise UsageError(f"--theta0: replaces the fit, so {' and '.join(given)} cannot be given with it")
        try:
            theta0, info = given_theta(cfg, args.theta0)
        except ValueError as e:
            raise UsageError(f"--theta0: {e}") from None
    log = (lambda m: None) if args.json else (lambda m: print(m, file=sys.stderr))
    log(
        f"rsng solve: {cfg.problem} sampler={cfg.sampler} s={cfg.s}/p={cfg.p} n={cfg.n} depth={cfg.depth} "
        f"dt={cfg.dt:g} T={cfg.t_end:g} ({cfg.steps} steps) seed={cfg.seed} {cfg.precision}"
    )
    traj = Trajectory(cfg, theta0=theta0, fit_info=info, cache_dir=args.cache_dir)
    log(
        f"θ(0): {traj.fit_info.get('source')} (t=0 error {traj.fit_info.get('rel_l2_u', float('nan')):.2e}); "
        f"reference: {traj.reference_method}"
    )
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, desc="steps", unit="step", file=sys.stderr, leave=False, dynamic_ncols=True)
    last = [0]

    def progress(k: int, total: int) -> None:
        if bar is not None:
            bar.update(k - last[0])
            last[0] = k
            err = traj.result().rel_l2_t[-1]
            bar.set_postfix_str(f"t={k * cfg.dt:.3f} err(t)={err:.2e}")

    res = traj.run(progress)
    if bar is not None:
        bar.close()
    summary = res.summary()
    if args.out:
        _write_out(Path(args.out), res, summary)
    if args.json:
        print(json.dumps(summary))
    else:
        _print_summary(summary, args.out)
    return EXIT_OK if res.status == "ok" else EXIT_DIVERGED


def _print_summary(s: dict[str, Any], out: str | None) -> None:
    def g(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    lines = [
        f"status        {s['status']}" + (f" at step {s['diverged_step']}" if s["diverged_step"] else ""),
        f"rel_l2        {g(s['rel_l2'], '.3e')}   (space-time, t=0 included)",
        f"rel_l2 t=0    {g(s['rel_l2_t0'], '.3e')}   final t: {g(s['rel_l2_final'], '.3e')}",
        f"s / p         {s['s']} / {s['p']}   ({s['sampler']})",
        f"wall          {s['wall_s']:.2f} s for {s['steps']} steps ({1e3 * s['wall_s'] / max(1, s['steps']):.1f} ms/step), "
        f"compile {s['compile_s']:.2f} s",
        f"reference     {s['reference']}",
    ]
    if out:
        lines.append(f"written to    {out}")
    print("\n".join(lines))


def _write_out(out: Path, res, summary: dict[str, Any]) -> None:
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    cols = res.series  # per stored step, the conditioning of the least squares included
    fmt = {"step": "%d", "t": "%.6g", "wall_s_cumulative": "%.6g", "ls_rank": "%.0f"}
    np.savetxt(
        out / "series.csv",
        np.column_stack([np.asarray(v, np.float64) for v in cols.values()]),
        delimiter=",",
        header=",".join(cols),
        comments="",
        fmt=[fmt.get(k, "%.6e") for k in cols],
    )
    np.save(out / "theta_final.npy", res.theta)
    try:  # the plot of rsng.analysis (pandas and matplotlib: the service extra)
        import pandas as pd

        from rsng.analysis.plots import plot_error_over_time
    except ImportError:
        return
    steps = pd.DataFrame({"trial_id": "run", "t": res.t, "rel_l2_t": res.rel_l2_t, "ls_residual": res.ls_residual})
    row = {**res.config.to_dict(), "trial_id": "run", "status": res.status}
    plot_error_over_time(
        steps, ["run"], trajectories=pd.DataFrame([row]), columns=("rel_l2_t", "ls_residual"), path=out / "error.png"
    )


def _cmd_reference(args: argparse.Namespace) -> int:
    cfg = _resolve(args, solver=False)
    if args.out is not None:
        if Path(args.out).is_dir():
            raise UsageError(f"--out: {args.out!r} is a folder; expected a file name (FILE.npz)")
        _check_folder("--out", str(Path(args.out).parent))
    _setup(args)
    import numpy as np

    from rsng.core.problems import get_problem
    from rsng.core.reference import default_cache_dir, reference_solution

    problem = get_problem(cfg.problem)
    x = problem.grid(cfg.n)
    t = np.arange(0, cfg.steps + 1, cfg.save_every) * cfg.dt
    cache = Path(args.cache_dir) / "reference" if args.cache_dir else default_cache_dir()
    ref = reference_solution(problem, x, t, cache_dir=cache)
    if args.out:
        np.savez(args.out, u=ref.u, x=x, t=t)
    info = {
        "problem": cfg.problem,
        "method": ref.method,
        "n": cfg.n,
        "times": len(t),
        "t_end": cfg.t_end,
        "wall_s": ref.wall_s,
        "cached": ref.cached,
        "max_abs_u": float(np.max(np.abs(ref.u))),
    }
    print(json.dumps(info) if args.json else "\n".join(f"{k:10s}{v}" for k, v in info.items()))
    return EXIT_OK


def _cmd_fit(args: argparse.Namespace) -> int:
    cfg = _resolve(args, solver=False)
    for name in ("lbfgs_steps", "lm_steps", "adam_steps"):
        v = getattr(args, name)
        if v is not None and v < 0:
            raise UsageError(f"--{name.replace('_', '-')}: must be ≥ 0, got {v}")
    _setup(args)
    from dataclasses import replace

    from rsng.core.fit import initial_theta, spectrum_summary
    from rsng.core.network import Network
    from rsng.core.problems import get_problem
    from rsng.core.recipe import parse

    problem = get_problem(cfg.problem)
    net = Network(problem.dim, problem.lengths, cfg.width, cfg.depth)
    settings = replace(
        parse(cfg.fit_recipe),
        **{k: getattr(args, k) for k in ("lbfgs_steps", "lm_steps", "adam_steps") if getattr(args, k) is not None},
    )
    log = None if args.json else (lambda m: print(m, file=sys.stderr))
    if log:
        log(
            f"rsng fit: {cfg.problem} depth={cfg.depth} width={cfg.width} p={net.num_params} n={cfg.n} "
            f"init_seed={cfg.init_seed} recipe={cfg.fit_recipe}"
        )
    _, info = initial_theta(
        problem,
        net,
        cfg.n,
        cfg.init_seed,
        settings,
        cache_dir=args.cache_dir,
        log=log,
        refit=args.refit,
        ship=args.ship,
    )
    keys = ("source", "key", "recipe", "rel_l2_u", "rel_l2_grad", "loss", "fit_wall_s")
    out = {k: info.get(k) for k in keys}
    if info["sigma"] is not None:
        out.update(spectrum_summary(info["sigma"], tuple(dict.fromkeys((1e-4, 1e-5, cfg.rcond)))))
    print(json.dumps(out) if args.json else "\n".join(f"{k:16s}{v}" for k, v in out.items()))
    return EXIT_OK


def _cmd_mlflow_sync(args: argparse.Namespace) -> int:
    from rsng.tracking import sync, validate_tracking_uri

    sweep_dir = _sweep_dir(args.sweep_dir)
    uri = None
    if args.mlflow_uri:
        try:
            uri = validate_tracking_uri(args.mlflow_uri)
        except ValueError as e:
            raise UsageError(str(e)) from None
    report = sync(sweep_dir, uri, warn=lambda m: print(m, file=sys.stderr))
    print(f"created {report.created}, already present {report.skipped}, failed {report.failed}")
    return EXIT_OK if report.failed == 0 else 1


#: Option names of rsng.analysis.ColumnError → command-line flags.
_ANALYSIS_FLAGS = {"x": "--x", "y": "--y", "by": "--by", "cost": "--x", "metric": "--y"}


def _sweep_dir(value: str):
    """A sweep folder: a local path or an object-store URI (``s3://BUCKET/PREFIX/SWEEP``, ``gs://…``)."""
    from rsng.results import is_sweep_dir, storage_path

    try:
        sweep_dir = storage_path(value)
    except ValueError as e:
        raise UsageError(f"sweep_dir: {e}") from None
    try:
        is_sweep = is_sweep_dir(sweep_dir)
    except OSError as e:  # an object store that does not answer or refuses the credentials
        raise UsageError(f"sweep_dir: {value!r} cannot be read: {' '.join(str(e).split())[:300]}") from None
    if not is_sweep:
        raise UsageError(f"sweep_dir: {value!r} is not a sweep folder (no sweep.json, trajectories/ or steps/ inside)")
    return sweep_dir


def _cmd_pareto(args: argparse.Namespace) -> int:
    sweep_dir = _sweep_dir(args.sweep_dir)
    if args.plot is not None:
        plot = Path(args.plot)
        if plot.suffix.lower() not in (".png", ".svg", ".pdf"):
            raise UsageError(f"--plot: expected a .png, .svg or .pdf file name, got {args.plot!r}")
        if plot.is_dir() or not plot.parent.is_dir():
            raise UsageError(f"--plot: {args.plot!r} is a folder or its folder does not exist")
    by = [c.strip() for c in args.by.split(",") if c.strip()]
    if by in ([], ["none"]):
        by = []
    from rsng.analysis import ColumnError, aggregate, pareto_front
    from rsng.results import ResultsError, load

    try:
        traj = load(sweep_dir, with_steps=False).trajectories
    except ResultsError as e:
        raise UsageError(f"sweep_dir: {e}") from None
    try:
        missing = [c for c in by if c not in traj.columns]
        if missing:
            raise ColumnError("by", f"unknown column {missing[0]!r}; columns: {', '.join(traj.columns)}")
        if args.aggregate:
            data = aggregate(traj, metric=args.y, cost=args.x)
            x, y = f"{data.attrs['cost_col']}_mean", f"{data.attrs['metric_col']}_mean"
        else:
            data, x, y = traj, args.x, args.y
        front = pareto_front(data, x, y, by=by or None)
    except ColumnError as e:
        raise UsageError(f"{_ANALYSIS_FLAGS.get(e.option, e.option)}: {e.detail}") from None
    shown = by + [
        c for c in ("problem", "sampler", "s", "n", "depth", "width", "seed") if c in front.columns and c not in by
    ]
    if args.aggregate:
        m = data.attrs["metric_col"]
        shown += ["count", "n_ok", x, y, f"{m}_lo", f"{m}_hi"]
    else:
        shown += [x, y, "trial_id"]
    shown = list(dict.fromkeys(shown))
    at = front.attrs
    excluded = ", ".join(f"{v} {k}" for k, v in at["excluded"].items())
    if args.plot is not None:
        from rsng.analysis import plot_pareto

        panel = None
        if len(by) == 1:
            panel = by[0]
        elif len(by) > 1:
            traj = traj.assign(_group=traj[by].astype(str).agg(" ".join, axis=1))
            panel = "_group"
        try:
            plot_pareto(traj, args.x, args.y, by=panel, path=args.plot)
        except ColumnError as e:
            raise UsageError(f"{_ANALYSIS_FLAGS.get(e.option, e.option)}: {e.detail}") from None
        print(f"wrote {args.plot}", file=sys.stderr)
    if args.json:
        rows = json.loads(front[shown].to_json(orient="records", double_precision=15))
        print(
            json.dumps(
                {
                    "sweep": sweep_dir.name,
                    "x": x,
                    "y": y,
                    "by": by,
                    "aggregate": args.aggregate,
                    "n_rows": at["n_rows"],
                    "n_points": at["n_points"],
                    "n_dominated": at["n_dominated"],
                    "excluded": at["excluded"],
                    "front": rows,
                }
            )
        )
        return EXIT_OK
    if front.empty:
        print(f"no point on any front ({at['n_rows']} rows; excluded: {excluded})")
        return EXIT_OK
    import pandas as pd

    table = front[shown].copy()
    for c in table.columns:
        if pd.api.types.is_float_dtype(table[c].dtype):
            table[c] = table[c].map(lambda v: f"{v:.4g}")
    print(table.to_string(index=False))
    print(
        f"{len(front)} on the front{' per ' + ', '.join(by) if by else ''}, {at['n_dominated']} dominated, "
        f"of {at['n_points']} eligible {'configurations' if args.aggregate else 'runs'}; "
        f"excluded before the front: {excluded}"
    )
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    sweep_dir = _sweep_dir(args.sweep_dir)
    out = Path(args.out)
    _check_folder("--out", args.out)
    _check_folder("--cache-dir", args.cache_dir)
    from rsng.analysis import write_report
    from rsng.results import ResultsError

    cache = None
    if not args.no_reference:
        from rsng.core.reference import default_cache_dir  # the reference curve runs the core's solver

        cache = Path(args.cache_dir) / "reference" if args.cache_dir else default_cache_dir()
    try:
        index = write_report(sweep_dir, out, reference=not args.no_reference, cache_dir=cache)
    except ResultsError as e:
        raise UsageError(f"sweep_dir: {e}") from None
    print(index)
    return EXIT_OK


def _at_cutoff(recipe: str, init_seeds: Any, rcond: float) -> str:
    """A default recipe at a cut-off, with the init seed of its fit where that is not 0."""
    seed = init_seeds.get(rcond, 0)
    return recipe if seed == 0 else f"{recipe} (init_seed={seed})"


def _cmd_problems(args: argparse.Namespace) -> int:
    from rsng.core.problems import CUTOFF_KEYS, get_problem, problem_names

    for name in problem_names():
        pr = get_problem(name)
        print(f"{name}\n  {pr.equation}\n  T={pr.t_end:g} dt={pr.dt:g} n={pr.n} rcond={pr.rcond:g}")
        at = "".join(
            f", at rcond {r:g}: {_at_cutoff(rec, pr.init_seed_at, r)}" for r, rec in sorted(pr.fit_recipe_at.items())
        )
        print(f"  fit_recipe={pr.fit_recipe}{at}")
        for preset, ov in pr.presets.items():
            own = [f"{k}={v}" for k, v in ov.items() if k not in CUTOFF_KEYS]
            own += [
                f"at rcond {r:g}: fit_recipe={_at_cutoff(rec, ov.get('init_seed_at', {}), r)}"
                for r, rec in sorted(ov.get("fit_recipe_at", {}).items())
            ]
            print(f"  --preset {preset}: " + ", ".join(own))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return {
            "solve": _cmd_solve,
            "reference": _cmd_reference,
            "fit": _cmd_fit,
            "problems": _cmd_problems,
            "mlflow-sync": _cmd_mlflow_sync,
            "pareto": _cmd_pareto,
            "report": _cmd_report,
        }[args.command](args)
    except UsageError as e:
        print(f"rsng {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # stop quietly, and point stdout at /dev/null so the interpreter's last flush does not fail again
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
