"""Analysis of sweep results: statistics over seeds, Pareto fronts, anchors, recommendations, plots.

Pure pandas/numpy on the Parquet results (:mod:`rsng.results`): importing this package loads
neither JAX, Ray nor MLflow, and matplotlib only inside the plotting functions. The one exception
is :func:`reference_work_precision`, which runs the core's spectral solver and therefore imports
``rsng.core.problems`` and ``rsng.core.reference`` when called (numpy-only at import time today; JAX
is not loaded by them, but the function does depend on the numerical core).

    import rsng.results as results, rsng.analysis as an
    res = results.load("results/sparsity")
    agg = an.aggregate(res.trajectories)                    # one row per configuration, ±2 SE
    front = an.pareto_front(res.trajectories, "wall_s", "rel_l2", by="problem")
    best = an.recommend(res.trajectories, target_error=1e-3, problem="allen_cahn")
    an.plot_pareto(res.trajectories, reference=an.reference_work_precision("allen_cahn")).savefig("p.png")
"""

from rsng.analysis._frame import CONFIG_COLUMNS, ColumnError
from rsng.analysis.anchors import DEFAULT_RESOLUTIONS, paper_points, reference_work_precision
from rsng.analysis.pareto import pareto_front, pareto_mask
from rsng.analysis.plots import plot_error_over_time, plot_error_vs_s, plot_p_vs_error, plot_pareto
from rsng.analysis.recommend import recommend
from rsng.analysis.report import write_report
from rsng.analysis.stats import aggregate, is_aggregate

__all__ = [
    "CONFIG_COLUMNS",
    "ColumnError",
    "aggregate",
    "is_aggregate",
    "pareto_front",
    "pareto_mask",
    "paper_points",
    "reference_work_precision",
    "DEFAULT_RESOLUTIONS",
    "recommend",
    "plot_pareto",
    "plot_error_vs_s",
    "plot_error_over_time",
    "plot_p_vs_error",
    "write_report",
]
