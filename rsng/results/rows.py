"""The one factory of trajectory rows: the configuration and provenance part, then the outcome
(``ok``, ``diverged``, ``failed``, or ``stopped`` by a search) — used by the trial (:mod:`rsng.service.trial`) and by the
sweep driver for a trial whose process died (:mod:`rsng.service.runner`).

Pure Python: the configuration columns come from the run record (:mod:`rsng.core.record`).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

from rsng.core import record

__all__ = ["base_row", "finish_row", "stopped_row", "now"]

#: Longest error message stored in a row (its tail is kept).
MAX_ERROR_MESSAGE = 2000


def now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def base_row(
    sweep: str,
    trial_id: str,
    config: Mapping[str, Any],
    *,
    batch_size: int,
    rsng_version: str,
    git_sha: str | None,
    jax_version: str,
    device: str,
    started_at: _dt.datetime,
) -> dict[str, Any]:
    """The columns known before a trajectory runs: sweep, trial id, the run record's stored fields
    (from ``config``, a :meth:`RunConfig.to_dict`), versions, device and start time."""
    return {
        "sweep": sweep,
        "trial_id": trial_id,
        **{k: config[k] for k in record.record_columns()},
        "rsng_version": rsng_version,
        "git_sha": git_sha,
        "jax_version": jax_version,
        "device": device,
        "started_at": started_at,
        "batch_size": batch_size,
    }


def finish_row(
    base: Mapping[str, Any], *, result: Any = None, error: str | None = None, finished_at: _dt.datetime | None = None
) -> dict[str, Any]:
    """``base`` completed with the outcome: from ``result`` (a :class:`rsng.core.integrate.Result`;
    status ``ok`` or ``diverged``) or, when ``error`` is given, status ``failed`` with that message."""
    row = dict(base)
    if error is not None or result is None:
        row.update(
            rel_l2=None,
            rel_l2_t0=None,
            fit_rel_l2_t0=None,
            j0_sigma_max=None,
            j0_rank=None,
            rel_l2_final=None,
            wall_s=0.0,
            compile_s=None,
            steps=0,
            status="failed",
            diverged_step=None,
            reference=None,
            error_message=(error or "no result")[-MAX_ERROR_MESSAGE:],
        )
    else:
        row.update(
            rel_l2=result.rel_l2,
            rel_l2_t0=result.rel_l2_t0,
            fit_rel_l2_t0=result.fit.get("rel_l2_u"),
            **result.j0(),
            rel_l2_final=float(result.rel_l2_t[-1]),
            wall_s=result.wall_s,
            compile_s=result.compile_s,
            steps=result.steps,
            status=result.status,
            diverged_step=result.diverged_step,
            reference=result.reference,
            error_message=""
            if result.status == "ok"
            else f"non-finite or blown-up state at step {result.diverged_step}",
        )
    row["finished_at"] = finished_at or now()
    return row


def stopped_row(base: Mapping[str, Any], result: Any, reason: str) -> dict[str, Any]:
    """``base`` completed as a trajectory a search stopped early (status ``stopped``): ``steps`` is the
    step it stopped at, ``rel_l2_final`` the error there, ``wall_s`` the marching time spent, ``rel_l2``
    null (it has no whole-run error), ``error_message`` says why."""
    row = finish_row(base, result=result)
    if row["status"] != "ok":  # a member of a seed batch that diverged before the stop keeps its outcome
        return row
    row.update(
        status="stopped", rel_l2=None, diverged_step=None, error_message=f"stopped at step {result.steps}: {reason}"
    )
    return row
