"""Synthetic trajectory rows for the tests of the results, tracking and analysis layers.

One place for the columns every synthetic row needs; each test module passes the values its own checks
read (``tests/results/test_results.py``, ``tests/tracking/test_tracking.py``, ``tests/analysis/conftest.py``).
Real rows come from :mod:`rsng.results.rows`; these stand in for a trial's output so that the layers that
read rows can be tested without running the solver. Importable from any test module as ``rowfactory``
(``pythonpath`` in pyproject.toml's pytest section).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


def synthetic_row(t0: datetime, **values: Any) -> dict[str, Any]:
    """A row of an ``ok`` allen_cahn trajectory (depth 7, width 25, uniform sampler, RK4, float32) that
    started at ``t0`` and finished 15 s later; ``values`` set the other columns (``sweep``, ``trial_id``,
    the sizes, the outcome, …) and override any of these, the times included."""
    row: dict[str, Any] = dict(
        problem="allen_cahn",
        sampler="uniform",
        depth=7,
        width=25,
        init_seed=0,
        precision="f32",
        integrator="rk4",
        solver="fast",
        batch_size=1,
        status="ok",
        diverged_step=None,
        error_message="",
        reference="spectral",
        rsng_version="0.1.0",
        jax_version="0.10.2",
        device="cpu",
        started_at=t0,
        finished_at=t0 + timedelta(seconds=15),
    )
    row.update(values)
    return row
