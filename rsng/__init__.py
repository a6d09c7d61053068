"""rsng — Randomized Sparse Neural Galerkin schemes (Berman & Peherstorfer, NeurIPS 2023).

The public Python API (the method: docs/method.md)::

    import rsng
    res = rsng.solve(problem="allen_cahn", preset="fast", sampler="uniform", s=150)   # one trajectory
    res.row            # the summary: configuration, rel_l2, wall_s, status, ...
    res.series         # per stored step: step, t, rel_l2_t, ls_residual, ls_rank, ls_sigma_max, ls_sigma_min_kept, wall_s_cumulative
    res.theta          # final parameters θ (p,)
    out = rsng.sweep({"name": "demo", "grid": {"s": [50, 150]}, "fixed": {"problem": "heat"}}, storage="results")
    out.trajectories   # the sweep's Parquet rows (rsng.results.load)
    rsng.results.load("results/demo"); rsng.analysis.aggregate(out.trajectories)

Importing ``rsng`` is cheap: it starts neither JAX nor Ray (the subpackages load on first use).
The numerical core is ``rsng.core``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from rsng.core.integrate import Result
    from rsng.results import Results
    from rsng.service.spec import SweepSpec

__version__ = "0.1.0"
__all__ = ["solve", "sweep", "results", "analysis", "core", "__version__"]

_SUBPACKAGES = ("results", "analysis", "core", "tracking", "service")


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"rsng.{name}")
    raise AttributeError(f"module 'rsng' has no attribute {name!r}")


def solve(
    problem: str,
    preset: str | None = None,
    *,
    cache_dir: str | None = None,
    chunk: int = 50,
    progress: Callable[[int, int], None] | None = None,
    theta0: Any = None,
    **fields: Any,
) -> Result:
    """Run one trajectory and return its :class:`rsng.core.integrate.Result`.

    ``problem`` and ``preset`` (``smoke``, ``fast``, ``accurate`` or ``None``) pick the defaults; every
    other keyword is a run field (``sampler``, ``s`` (an int or ``"dense"``), ``n``, ``depth``, ``width``,
    ``dt``, ``t_end``, ``seed`` (the sketch seed), ``init_seed``, ``precision``, ``rcond``, ``integrator``,
    ``lstsq``, ``save_every``, ``solver``; see :mod:`rsng.core.record`). A bad value raises
    :class:`rsng.core.config.ConfigError` naming the field before any work. θ(0) and the ground truth
    are computed or loaded from ``cache_dir`` (default ``$RSNG_CACHE_DIR`` or ``~/.cache/rsng``);
    ``progress(k, steps)`` is called after every ``chunk`` steps.

    ``theta0`` starts from a θ(0) of one's own instead of the fit: an array of the network's p
    parameters, or the path of an ``.npy`` file or of an ``.npz`` with the array ``theta``
    (:func:`rsng.core.fit.given_theta`; a bad one raises ``ValueError`` naming ``theta0`` before any
    work). It replaces the fit, so ``fit_recipe`` and ``init_seed`` cannot be given with it.

    The result's ``row`` is the summary, ``series`` the per-step arrays, ``theta`` the final θ; a
    trajectory that blows up comes back with ``status == "diverged"``.
    """
    import sys

    # threads are sized before JAX loads (an already loaded JAX keeps its own); resolve() below loads it
    if "jax" not in sys.modules:
        from rsng.core.threads import configure_threads

        configure_threads()
    from rsng.core import record
    from rsng.core.config import ConfigError, resolve

    cfg = resolve(preset, problem=problem, **fields)
    if theta0 is not None and (given := record.fit_fields_given(fields)):
        raise ConfigError(given[0], "chooses the fit that theta0 replaces; give one or the other")
    from rsng.core.integrate import Trajectory

    if theta0 is None:
        return Trajectory(cfg, cache_dir=cache_dir, chunk=chunk).run(progress)
    from rsng.core.fit import given_theta

    try:
        theta, info = given_theta(cfg, theta0)
    except ValueError as e:
        raise ValueError(f"theta0: {e}") from None
    return Trajectory(cfg, theta0=theta, fit_info=info, cache_dir=cache_dir, chunk=chunk).run(progress)


def sweep(spec: SweepSpec | Mapping[str, Any], **options: Any) -> Results:
    """Run a sweep and return its results (:func:`rsng.results.load` of the sweep folder).

    ``spec``: a :class:`rsng.service.spec.SweepSpec` or a mapping with its fields (``name``, ``grid``,
    optional ``fixed``, ``description``, ``skip_invalid_s``). ``options``: the fields of
    :class:`rsng.service.runner.SweepOptions` (``storage``, ``resume``, ``serial``, ``ray_address``,
    ``cpus_per_trial``, ``mlflow_uri``, ``cache_dir``, ...). Bad input raises
    :class:`rsng.service.spec.SweepSpecError` before anything runs.
    """
    from rsng.results import load
    from rsng.service.runner import SweepOptions, run_sweep
    from rsng.service.spec import SweepSpec

    if not isinstance(spec, SweepSpec):
        spec = SweepSpec(**dict(spec))
    prep = run_sweep(spec, SweepOptions(**options))
    return load(prep.sweep_dir)
