"""Anchors for the accuracy-versus-cost plots: the paper's numbers and the product's own spectral
reference solver's work-precision curve."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["paper_points", "reference_work_precision", "DEFAULT_RESOLUTIONS", "PAPER_LABEL"]

PAPER_LABEL = "paper, V100"

#: Table 1 of Berman & Peherstorfer (NeurIPS 2023): V100 GPU, float32, compile time
#: excluded, T = 4, relative space-time L2 error.
_TABLE1 = (
    # problem, method, setting, s, n, depth, rel_l2, wall_s
    ("allen_cahn", "RSNG", "RSNG s=800, n=10 000, depth 7", 800, 10_000, 7, 1.66e-5, 776.0),
    ("allen_cahn", "RSNG", "RSNG s=150, n=1 000 (fast)", 150, 1_000, 7, 5.34e-5, 63.0),
    ("burgers", "RSNG", "RSNG s=800, n=10 000, depth 7", 800, 10_000, 7, 6.07e-5, 2378.0),
    ("burgers", "RSNG", "RSNG s=125, n=1 000 (fast)", 125, 1_000, 7, 2.05e-4, 188.0),
    ("allen_cahn", "PINN", "PINN", None, None, None, 6.85e-2, 841.0),
    ("allen_cahn", "causal PINN", "causal PINN", None, None, None, 3.84e-4, 3060.0),
    ("burgers", "PINN", "PINN", None, None, None, 2.34e-3, 3451.0),
    ("burgers", "causal PINN", "causal PINN", None, None, None, 5.19e-4, 23027.0),
)

#: Coarse (N, dt) of the spectral solver for :func:`reference_work_precision`, per problem.
DEFAULT_RESOLUTIONS: dict[str, tuple[tuple[int, float], ...]] = {
    "allen_cahn": ((24, 2e-2), (32, 1e-2), (48, 1e-2), (64, 1e-2), (96, 5e-3), (128, 2e-3)),
    "burgers": ((64, 4e-3), (128, 2e-3), (192, 1e-3), (256, 1e-3), (384, 1e-3), (512, 5e-4), (768, 5e-4)),
}


def paper_points(problem: str | None = None) -> pd.DataFrame:
    """The paper's Table 1 as a frame: ``problem, method, setting, s, n, depth, rel_l2,
    wall_s, t_end, label`` (``label`` = ``"paper, V100"``); only ``problem``'s rows when given.

    These are V100 timings at T = 4 with the full presets: anchors for orientation, not
    measurements comparable one-to-one with a CPU run or a shorter sweep.
    """
    import pandas as pd

    df = pd.DataFrame(_TABLE1, columns=["problem", "method", "setting", "s", "n", "depth", "rel_l2", "wall_s"])
    for c in ("s", "n", "depth"):
        df[c] = df[c].astype("Int64")
    df["t_end"] = 4.0
    df["label"] = PAPER_LABEL
    if problem is not None:
        df = df[df["problem"] == problem].reset_index(drop=True)
    return df


def _save_times(t_end: float, dts: Sequence[float], n_max: int = 10) -> np.ndarray:
    """``k + 1`` equispaced times ``0 … t_end`` (largest ``k ≤ n_max``) that are whole multiples of every dt."""

    def whole(t: float, dt: float) -> bool:
        return abs(round(t / dt) * dt - t) <= 1e-9 * max(1.0, t)

    for dt in dts:
        if not whole(t_end, dt):
            raise ValueError(f"dt={dt:g}: t_end={t_end:g} is not a whole number of steps")
    for k in range(n_max, 0, -1):
        if all(whole(t_end / k, dt) for dt in dts):
            return np.linspace(0.0, t_end, k + 1)
    return np.array([0.0, t_end])


def reference_work_precision(
    problem: str,
    resolutions: Sequence[tuple[int, float]] | None = None,
    *,
    t_end: float | None = None,
    repeat: int = 3,
    cache_dir=None,
) -> pd.DataFrame:
    """Error versus wall time of the product's spectral reference solver at coarse resolutions.

    **Needs the numerical core**: this is the one function of :mod:`rsng.analysis` that imports
    ``rsng.core`` (``rsng.core.problems`` for the problem registry, ``rsng.core.reference`` for the
    solver), inside the call. Those modules do not load JAX at import time (since the core keeps JAX
    out of its package import); should that change, this call would pay JAX's import. Only the pure numpy ETDRK4 solver (:func:`rsng.core.reference.etdrk4`)
    is timed, measured on this machine.

    For each coarse ``(N, dt)`` the problem is solved with Fourier pseudo-spectral ETDRK4 (the
    problem's own linear/nonlinear parts and dealiasing) on ``N`` points, timed (the best of
    ``repeat`` runs), Fourier-interpolated onto the default reference's grid and compared with the
    default reference (the problem's ``SpectralReference`` ``N``, ``dt``) at up to 11 equispaced
    times in ``[0, t_end]``: ``rel_l2 = ‖U − U_ref‖_F / ‖U_ref‖_F`` over those times, t = 0
    included (the same measure as a trajectory's ``rel_l2``, on other points).

    Args:
      problem: a registered problem with a spectral reference (``allen_cahn``, ``burgers``).
      resolutions: ``(N, dt)`` pairs; default :data:`DEFAULT_RESOLUTIONS` of the problem.
      t_end: final time (default the problem's T). A sweep with a shorter T (smoke presets) should
        pass its own, so that the curve is comparable with its runs.
      repeat: timing repetitions (the minimum is reported; a solve over 0.5 s is timed once).
      cache_dir: where the default reference is cached (:func:`rsng.core.reference.reference_solution`);
        ``None``: computed every call.

    Returns:
      ``problem, N, dt, t_end, rel_l2, wall_s, label`` (one row per resolution, in the given order;
      ``rel_l2`` NaN when the coarse solve produced non-finite values). ``attrs``: the default
      reference's ``reference_method`` and ``reference_wall_s``.
    """
    import pandas as pd

    from rsng.core.problems import SpectralReference, get_problem  # the numerical core
    from rsng.core.reference import etdrk4, fourier_interpolate, reference_solution

    pr = get_problem(problem)
    spec = pr.reference
    if not isinstance(spec, SpectralReference) or pr.dim != 1:
        raise ValueError(f"problem {problem!r} has no 1-D spectral reference (it uses {type(spec).__name__})")
    if resolutions is None:
        resolutions = DEFAULT_RESOLUTIONS.get(
            problem, ((spec.N // 8, spec.dt * 8), (spec.N // 4, spec.dt * 4), (spec.N // 2, spec.dt * 2))
        )
    resolutions = [(int(N), float(dt)) for N, dt in resolutions]
    for N, dt in resolutions:
        if N < 4 or not math.isfinite(dt) or dt <= 0:
            raise ValueError(f"resolutions: need N ≥ 4 and dt > 0, got ({N}, {dt})")
    T = float(pr.t_end if t_end is None else t_end)
    if not (math.isfinite(T) and T > 0):
        raise ValueError(f"t_end: must be > 0, got {t_end!r}")
    t_save = _save_times(T, [spec.dt] + [dt for _, dt in resolutions])
    ((lo, hi),) = pr.box
    length = hi - lo
    x_ref = pr.grid(spec.N)
    ref = reference_solution(pr, x_ref, t_save, cache_dir=cache_dir)
    u_ref = ref.u
    norm = np.linalg.norm(u_ref)
    rows = []
    for N, dt in resolutions:
        u0 = np.asarray(pr.u0(np, pr.grid(N)), dtype=np.float64)
        best = math.inf
        with np.errstate(all="ignore"):
            for _ in range(max(1, repeat)):
                t0 = time.perf_counter()
                u = etdrk4(u0, length, spec, t_save, dt)
                best = min(best, time.perf_counter() - t0)
                if best > 0.5:  # long enough to time once
                    break
            if np.all(np.isfinite(u)):
                err = float(np.linalg.norm(fourier_interpolate(u, lo, length, x_ref[:, 0]) - u_ref) / norm)
            else:
                err = math.nan
        rows.append(
            {
                "problem": problem,
                "N": N,
                "dt": dt,
                "t_end": T,
                "rel_l2": err,
                "wall_s": best,
                "label": "spectral ETDRK4 (this machine)",
            }
        )
    out = pd.DataFrame(rows, columns=["problem", "N", "dt", "t_end", "rel_l2", "wall_s", "label"])
    out.attrs = {"reference_method": ref.method, "reference_wall_s": float(ref.wall_s)}
    return out
