"""The common command line of the sweep scripts in ``sweeps/``.

Each script defines its grid as data (``build(args) -> SweepSpec``) and calls :func:`sweep_main`.
Everything is validated before Ray starts: a bad value prints one line naming the option or grid key
and exits with code 2, and nothing is scheduled or written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from rsng.service.spec import SweepSpec, SweepSpecError

__all__ = ["common_parser", "sweep_main", "write_front", "search_options"]


def common_parser(name: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"sweeps/{name}.py", description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--smoke", action="store_true", help="a small grid that finishes in minutes on 2 CPUs")
    p.add_argument(
        "--storage",
        default="results",
        help="results root: a local folder, s3://BUCKET/PREFIX or gs://BUCKET/PREFIX (credentials and "
        "endpoint from the environment: AWS_PROFILE, AWS_ENDPOINT_URL, …); the sweep writes "
        "<storage>/<name>/ (default ./results)",
    )
    p.add_argument(
        "--mlflow-uri",
        help="MLflow tracking URI (sqlite:///PATH or http://HOST:PORT; "
        "default: sqlite:///<storage>/<name>/mlflow.db, or for s3:// and gs:// "
        "storage the local "
        "$RSNG_CACHE_DIR/mlflow/<scheme>/<bucket>/<prefix>/<name>/mlflow.db)",
    )
    p.add_argument("--name", help=f"sweep name (default: {name}, or {name}-smoke with --smoke)")
    p.add_argument(
        "--resume", action="store_true", help="continue a sweep: skip finished trajectories, resume unfinished ones"
    )
    p.add_argument("--max-concurrent", type=int, help="most trials at once (default: as many as resources allow)")
    p.add_argument(
        "--cpus-per-trial",
        type=float,
        default=1.0,
        help="CPUs per trial; also its XLA threads (BLAS gets one), and a whole number pins the trial to that many cores of its own (RSNG_PIN_CPUS=0: off; default 1)",
    )
    p.add_argument(
        "--gpus-per-trial", type=float, default=0.0, help="GPUs per trial, fractions allowed (default 0: CPU)"
    )
    p.add_argument(
        "--seeds-per-trial",
        type=int,
        default=1,
        help="march this many sketch seeds of one configuration together in one trial (one vmapped "
        "compiled call: fills a GPU; wall_s is then each trajectory's share) (default 1)",
    )
    p.add_argument(
        "--unit-size",
        type=int,
        default=None,
        help="trajectories one Tune trial runs one after another in its worker (a work unit; a retried "
        "unit skips those with rows) (default: automatic, up to 32 and at least 8 units per "
        "concurrent trial)",
    )
    p.add_argument("--report-steps", type=int, default=200, help="steps between Parquet chunks and saved states")
    p.add_argument("--serial", action="store_true", help="run in this process, one trajectory after another (no Ray)")
    p.add_argument("--yes", action="store_true", help="confirm a sweep of more than 5000 trajectories")
    p.add_argument(
        "--cache-dir", help="θ(0), reference and JAX compilation cache (default $RSNG_CACHE_DIR or ~/.cache/rsng)"
    )
    p.add_argument(
        "--ray-address",
        help="Ray cluster address (default: RAY_ADDRESS, a running cluster on this node, else embedded); "
        "'local' always starts an embedded single-node Ray",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="validate and list the trajectories (with --search: the configurations), run nothing",
    )
    g = p.add_argument_group(
        "search (docs/search.md)",
        "instead of the whole grid, search its configurations for the error-versus-cost front; each "
        "configuration runs all the grid's seeds",
    )
    g.add_argument(
        "--search",
        metavar="NAME",
        help="pareto: grow the error-versus-cost front from its cheap end (the cheapest-predicted neighbour of "
        "the front next); tpe: Optuna's multi-objective TPE sampler; random: random configurations (a "
        "baseline); default: run the whole grid",
    )
    g.add_argument(
        "--budget",
        type=int,
        help="trajectories the search may run, in whole configurations (shared equally among the problems)",
    )
    g.add_argument(
        "--budget-hours",
        type=float,
        help="solver time the search may spend (sum of the trajectories' wall_s, in hours; "
        "trials running when it is spent finish)",
    )
    g.add_argument(
        "--search-axes",
        help="comma-separated grid axes to search (default: every axis with more than one value but problem "
        "and seed); the others are held at their first grid value",
    )
    g.add_argument(
        "--no-early-stop",
        action="store_true",
        help="run every searched trajectory to the end (default: stop one whose running error is above "
        "the front at equal or lower projected cost; it is kept with status stopped)",
    )
    g.add_argument(
        "--search-seed",
        type=int,
        default=0,
        help="seed of the searcher (tpe, random: the sampler; pareto: its tie-breaks; default 0)",
    )
    return p


def search_options(args: argparse.Namespace):
    """The :class:`rsng.service.search.SearchOptions` of the command line (``None``: the whole grid)."""
    from rsng.service.search import SearchOptions

    if args.search is None:
        for flag, value in (
            ("--budget", args.budget),
            ("--budget-hours", args.budget_hours),
            ("--search-axes", args.search_axes),
        ):
            if value is not None:
                raise SweepSpecError(flag, "is an option of a search; add --search pareto (or tpe, random)")
        return None
    axes = None
    if args.search_axes is not None:
        axes = tuple(a.strip() for a in args.search_axes.split(",") if a.strip())
    return SearchOptions(
        method=args.search,
        budget=args.budget,
        budget_hours=args.budget_hours,
        axes=axes,
        early_stop=not args.no_early_stop,
        seed=args.search_seed,
    )


def sweep_main(
    name: str,
    description: str,
    build: Callable[[argparse.Namespace], SweepSpec],
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
    argv: list[str] | None = None,
) -> int:
    parser = common_parser(name, description)
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    from rsng.service.runner import SweepOptions, peak_rss_mib, prepare, run_sweep, summary_table

    try:
        spec = build(args)
        if args.name is not None:
            spec = SweepSpec(args.name, spec.grid, spec.fixed, spec.description, spec.skip_invalid_s)
        opts = SweepOptions(
            storage=args.storage,
            mlflow_uri=args.mlflow_uri,
            resume=args.resume,
            max_concurrent=args.max_concurrent,
            cpus_per_trial=args.cpus_per_trial,
            gpus_per_trial=args.gpus_per_trial,
            report_steps=args.report_steps,
            confirm_large=args.yes,
            serial=args.serial,
            cache_dir=args.cache_dir,
            ray_address=args.ray_address,
            seeds_per_trial=args.seeds_per_trial,
            unit_size=args.unit_size,
            search=search_options(args),
        )
        if args.dry_run and opts.search is not None:
            from rsng.service.search import plan_search

            plan = plan_search(spec, opts.search, confirm_large=args.yes)
            prep = prepare(spec, opts)
            for problem, lattice in plan.studies.items():
                for c in lattice:
                    done = all(t.trial_id in prep.done_ids for t in c.trials)
                    print(f"{'done  ' if done else 'todo  '}{problem} {c.label} ({len(c.trials)} seeds)")
            n = sum(len(v) for v in plan.studies.values())
            print(f"{n} configurations on axes {', '.join(plan.axes)}; the search runs as many as its budget allows")
            return 0
        if args.dry_run:
            prep = prepare(spec, opts)
            for t in prep.trials:
                print(("done  " if t.trial_id in prep.done_ids else "todo  ") + t.trial_id)
            print(f"{len(prep.trials)} trajectories, {len(prep.todo)} to run")
            return 0
        prep = run_sweep(spec, opts)
    except SweepSpecError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; rerun the same command with --resume to finish the sweep", file=sys.stderr)
        return 130
    uri = prep.mlflow_uri
    print(
        f"\nParquet results: {prep.sweep_dir}/trajectories/ and {prep.sweep_dir}/steps/"
        f"  (pandas: rsng.results.load({str(prep.sweep_dir)!r}))"
    )
    if uri.startswith("sqlite:"):
        print(f"MLflow UI:       mlflow ui --backend-store-uri {uri}")
    else:
        print(f"MLflow:          {uri}")
    if prep.search:
        for problem, info in prep.search.items():
            print(
                f"Search {problem}: {info['configurations']} of {info['lattice']} configurations "
                f"({info['stopped']} stopped early), {info['trajectories']} trajectories, "
                f"{info['solver_s']:.1f} s of solver time"
            )
    print("\nAccuracy versus cost (mean over seeds):")
    print(summary_table(prep.sweep_dir))
    print(f"Front (error against wall time, each run labelled with its s): {write_front(prep.sweep_dir)}")
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(f"\nDriver peak memory (RSS): {peak_rss_mib():.0f} MiB")
    print(f"Driver CPU time: {ru.ru_utime + ru.ru_stime:.1f} s")
    return 0


def write_front(sweep_dir):
    """``<sweep_dir>/front.png`` (a local path, or an object in the bucket of an ``s3://`` sweep): every trajectory's error against its wall time, one panel per problem,
    coloured by sampler, labelled with its s, the Pareto front drawn (``rsng pareto --plot`` draws the
    same with the paper's points, which are for the fast presets' T = 4)."""
    from rsng.analysis.plots import plot_pareto
    from rsng.results import ObjectPath, load

    if isinstance(sweep_dir, ObjectPath):  # a bucket: the PNG rendered in memory, uploaded once
        import io

        buf = io.BytesIO()
        fig = plot_pareto(load(sweep_dir, with_steps=False).trajectories, paper=False, annotate="s")
        fig.savefig(buf, format="png", dpi=110)
        path = sweep_dir / "front.png"
        path.write_bytes(buf.getvalue())
        return path
    path = Path(sweep_dir) / "front.png"
    plot_pareto(load(sweep_dir, with_steps=False).trajectories, paper=False, annotate="s", path=path)
    return path
