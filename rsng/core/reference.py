"""Float64 reference solutions (numpy/scipy only) that the network solutions are judged against.

Three kinds, chosen by ``Problem.reference``:

* :class:`~rsng.core.problems.SpectralReference`: Fourier pseudo-spectral ETDRK4 (:func:`etdrk4`).
* :class:`~rsng.core.problems.CharacteristicsReference`: backward characteristics with RK4
  (:func:`characteristics`, :func:`backward_flow`).
* :class:`~rsng.core.problems.ExactReference`: the closed form.

:func:`reference_solution` dispatches, evaluates at the requested points and times, and caches the
result as a plain ``.npz`` (never pickle).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rsng.core.files import atomic_write, cache_root

if TYPE_CHECKING:  # rsng.core.problems imports JAX; this module needs only numpy at import time
    from rsng.core.problems import Problem, SpectralReference

__all__ = [
    "Reference",
    "etdrk4",
    "backward_flow",
    "characteristics",
    "fourier_interpolate",
    "reference_solution",
    "run_reference",
    "default_cache_dir",
]

#: Bump when a change to the algorithms below changes the numbers stored in caches.
_CACHE_VERSION = 1
#: Points on the contour for the ETDRK4 coefficients (full circle of radius 1).
_CONTOUR_POINTS = 64
#: Relative tolerance for a save time to count as a whole number of time steps.
_STEP_TOL = 1e-9


@dataclass(frozen=True, eq=False)
class Reference:
    """A reference solution ``u[j, i] = u(x_eval[i], t_save[j])``.

    Attributes:
      u: ``(T, m)`` float64 (read-only).
      method: how it was computed, e.g. ``"spectral-etdrk4 N=512 dt=0.001 subsampled"``.
      wall_s: seconds the original computation took (also when loaded from the cache).
      cached: True when loaded from the cache.
    """

    u: np.ndarray
    method: str
    wall_s: float
    cached: bool = False


def default_cache_dir() -> Path:
    """``$RSNG_CACHE_DIR/reference`` (default ``~/.cache/rsng/reference``)."""
    return cache_root() / "reference"


# --------------------------------------------------------------------------------------------
# ETDRK4
# --------------------------------------------------------------------------------------------


def _step_counts(t_save: np.ndarray, dt: float) -> np.ndarray:
    """``n_j = round(t_j / dt)``, requiring ``|n_j dt − t_j| ≤ 1e-9 max(1, t_j)``."""
    t_save = np.asarray(t_save, dtype=np.float64)
    if t_save.ndim != 1:
        raise ValueError(f"t_save must be 1-D, got shape {t_save.shape}")
    if t_save.size and (t_save[0] < 0 or np.any(np.diff(t_save) < 0)):
        raise ValueError("t_save must be non-negative and non-decreasing")
    n = np.rint(t_save / dt).astype(np.int64)
    bad = np.abs(n * dt - t_save) > _STEP_TOL * np.maximum(1.0, np.abs(t_save))
    if np.any(bad):
        t = t_save[np.argmax(bad)]
        raise ValueError(f"save time {t!r} is not a whole number of time steps dt={dt!r}")
    return n


def _etdrk4_coefficients(hL: np.ndarray) -> tuple[np.ndarray, ...]:
    """``E, E2`` and ``Q, f1, f2, f3`` (Kassam & Trefethen 2005, without the factor ``dt``), ``hL = dt·L̂``."""
    # The φ-functions cancel catastrophically near hL = 0 (and hL > 0 occurs: Allen–Cahn has
    # L̂(0) = +1). The mean over a circle of radius 1 centred at hL avoids that; the trapezoidal
    # rule converges geometrically for these entire functions (rounding-level with 64 points).
    # Full circle rather than K&T's upper half + real part, so complex hL (advection) works too.
    r = np.exp(2j * np.pi * (np.arange(_CONTOUR_POINTS) + 0.5) / _CONTOUR_POINTS)
    LR = hL[:, None] + r[None, :]
    eLR = np.exp(LR)
    Q = np.mean((np.exp(LR / 2) - 1) / LR, axis=1)
    f1 = np.mean((-4 - LR + eLR * (4 - 3 * LR + LR**2)) / LR**3, axis=1)
    f2 = np.mean((2 + LR + eLR * (-2 + LR)) / LR**3, axis=1)
    f3 = np.mean((-4 - 3 * LR - LR**2 + eLR * (4 - LR)) / LR**3, axis=1)
    coeffs = (Q, f1, f2, f3)
    if np.isrealobj(hL):
        coeffs = tuple(c.real for c in coeffs)
    return (np.exp(hL), np.exp(hL / 2), *coeffs)


def _etdrk4_hat(
    v_hat: np.ndarray, length: float, spec: SpectralReference, t_save: np.ndarray, dt: float
) -> Iterator[np.ndarray]:
    """Yield ``v̂(t_j)`` (the ``numpy.fft.fft`` of the solution) for each save time in order."""
    N = v_hat.shape[0]
    n_save = _step_counts(t_save, dt)
    freq = np.fft.fftfreq(N, d=1.0 / N)  # integer wavenumbers 0, 1, …, −1
    k = 2 * np.pi / length * freq
    L = np.asarray(spec.linear(k))
    if L.shape == ():
        L = np.full(N, L)
    E, E2, Q, f1, f2, f3 = _etdrk4_coefficients(dt * L)
    Q, f1, f2, f3 = dt * Q, dt * f1, dt * f2, dt * f3
    keep = (np.abs(freq) <= N / 3) if spec.dealias else None

    def nonlinear(w: np.ndarray) -> np.ndarray:
        out = np.asarray(spec.nonlinear_hat(w, k), dtype=np.complex128)
        return out * keep if keep is not None else out

    v = np.asarray(v_hat, dtype=np.complex128).copy()
    n_done = 0
    for n_target in n_save:
        while n_done < n_target:
            Nv = nonlinear(v)
            a = E2 * v + Q * Nv
            Na = nonlinear(a)
            b = E2 * v + Q * Na
            Nb = nonlinear(b)
            c = E2 * a + Q * (2 * Nb - Nv)
            Nc = nonlinear(c)
            v = E * v + f1 * Nv + 2 * f2 * (Na + Nb) + f3 * Nc
            n_done += 1
        yield v.copy()


def etdrk4(
    u0_values: np.ndarray,
    length: float,
    spec: SpectralReference,
    t_save: np.ndarray,
    dt: float | None = None,
) -> np.ndarray:
    """Fourier pseudo-spectral ETDRK4 for ``u_t = L u + N(u)`` on a periodic interval.

    ``L̂ = spec.linear(k)``, ``N̂ = spec.nonlinear_hat(v̂, k)`` with ``k = 2π/length · (0, 1, …, −1)``;
    the top third of the modes of ``N̂`` are zeroed when ``spec.dealias`` (|integer k| > N/3).

    Args:
      u0_values: ``(N,)`` initial values on the grid ``x_i = lo + i·length/N``, ``i < N``.
      length: period of the interval.
      spec: the spectral scheme (its ``N`` is ignored; the resolution is ``len(u0_values)``).
      t_save: ``(T,)`` non-decreasing save times ``≥ 0``; each must be a whole number of steps,
        ``|round(t/dt)·dt − t| ≤ 1e-9·max(1, t)`` (``ValueError`` otherwise). ``t = 0`` returns ``u0``.
      dt: time step; ``spec.dt`` when None.

    Returns:
      ``(T, N)`` float64 physical values at the save times (rows with ``t = 0`` are ``u0_values``).
    """
    u0_values = np.asarray(u0_values, dtype=np.float64)
    if u0_values.ndim != 1:
        raise ValueError(f"u0_values must be 1-D, got shape {u0_values.shape}")
    dt = float(spec.dt if dt is None else dt)
    t_save = np.asarray(t_save, dtype=np.float64)
    out = np.empty((t_save.shape[0], u0_values.shape[0]))
    for j, v in enumerate(_etdrk4_hat(np.fft.fft(u0_values), length, spec, t_save, dt)):
        out[j] = np.fft.ifft(v).real
    out[_step_counts(t_save, dt) == 0] = u0_values  # bit-exact u0 rather than ifft(fft(u0))
    return out


def fourier_interpolate(values: np.ndarray, lo: float, length: float, x: np.ndarray) -> np.ndarray:
    """Trigonometric interpolant of equispaced periodic samples, evaluated at arbitrary points.

    Args:
      values: ``(T, N)`` samples at ``lo + i·length/N``, ``i < N``.
      lo, length: start and period of the interval.
      x: ``(m,)`` evaluation points (any real values; periodicity is implied).

    Returns:
      ``(T, m)`` float64; the Nyquist mode (even N) enters as ``cos``, so the result is real.
    """
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    N = values.shape[1]
    c = np.fft.rfft(values, axis=1) / N
    c[:, 1:] *= 2
    if N % 2 == 0:
        c[:, -1] /= 2
    kk = 2 * np.pi / length * np.arange(c.shape[1])
    theta = np.asarray(x, dtype=np.float64) - lo
    out = np.empty((values.shape[0], theta.shape[0]))
    block = max(1, 2**22 // c.shape[1])  # bound the (modes, block) basis to ~64 MiB
    for s in range(0, theta.shape[0], block):
        basis = np.exp(1j * kk[:, None] * theta[None, s : s + block])
        out[:, s : s + block] = (c @ basis).real
    return out


# --------------------------------------------------------------------------------------------
# Characteristics
# --------------------------------------------------------------------------------------------


def _backward_flow_iter(
    velocity: Callable[[Any, np.ndarray], np.ndarray], z: np.ndarray, t_save: np.ndarray, substeps: int
) -> Iterator[np.ndarray]:
    """Yield the foot points ``Z(0)`` for each save time, marching interval by interval."""
    t_save = np.asarray(t_save, dtype=np.float64)
    if t_save.ndim != 1:
        raise ValueError(f"t_save must be 1-D, got shape {t_save.shape}")
    if t_save.size and (t_save[0] < 0 or np.any(np.diff(t_save) < 0)):
        raise ValueError("t_save must be non-negative and non-decreasing")
    if substeps < 1:
        raise ValueError(f"substeps must be ≥ 1, got {substeps}")

    def f(y: np.ndarray) -> np.ndarray:
        return -np.asarray(velocity(np, y), dtype=np.float64)

    Z = np.array(z, dtype=np.float64)
    t_prev = 0.0
    for t in t_save:
        h = (t - t_prev) / substeps
        if h > 0:
            for _ in range(substeps):
                k1 = f(Z)
                k2 = f(Z + 0.5 * h * k1)
                k3 = f(Z + 0.5 * h * k2)
                k4 = f(Z + h * k3)
                Z = Z + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        t_prev = t
        yield Z


def backward_flow(
    velocity: Callable[[Any, np.ndarray], np.ndarray], z: np.ndarray, t_save: np.ndarray, substeps: int
) -> np.ndarray:
    """Foot points ``Z_j = Φ_{−t_j}(z)`` of ``dZ/dt = a(Z)`` (``a = velocity(np, ·)``, autonomous).

    RK4 with ``substeps`` steps per interval ``[t_{j−1}, t_j]`` (``t_{−1} = 0``); because ``a`` is
    autonomous, ``Φ_{−t_j} = Φ_{−(t_j − t_{j−1})} ∘ Φ_{−t_{j−1}}``, so the cost is ``O(T·m·substeps)``.

    Args:
      velocity: ``(xp, z (m, d)) -> (m, d)``.
      z: ``(m, d)`` points at time ``t_j``.
      t_save: ``(T,)`` non-negative, non-decreasing times.
      substeps: RK4 steps per interval.

    Returns:
      ``(T, m, d)`` float64 foot points (not wrapped into any box).
    """
    return np.stack(list(_backward_flow_iter(velocity, z, t_save, substeps)))


def characteristics(
    u0: Callable[[Any, np.ndarray], np.ndarray],
    velocity: Callable[[Any, np.ndarray], np.ndarray],
    x_eval: np.ndarray,
    t_save: np.ndarray,
    substeps: int,
    box: Sequence[tuple[float, float]] | None = None,
) -> np.ndarray:
    """``u(z, t_j) = u0(Φ_{−t_j}(z))`` for ``u_t + a(z)·∇u = 0`` (see :func:`backward_flow`).

    Args:
      u0: ``(xp, z (m, d)) -> (m,)``; velocity: ``(xp, z (m, d)) -> (m, d)``.
      x_eval: ``(m, d)`` points; t_save: ``(T,)`` times; substeps: RK4 steps per interval.
      box: when given, foot points are wrapped into ``[lo, hi)`` per dimension before ``u0``
        (the periodic extension of ``u0``; right when ``a`` is periodic in every dimension).
        None (default): ``u0`` at the unwrapped foot point, the whole-space solution.

    Returns:
      ``(T, m)`` float64.
    """
    x_eval = np.asarray(x_eval, dtype=np.float64)
    lo = hi = None
    if box is not None:
        lo = np.array([b[0] for b in box], dtype=np.float64)
        hi = np.array([b[1] for b in box], dtype=np.float64)
    t_save = np.asarray(t_save, dtype=np.float64)
    out = np.empty((t_save.shape[0], x_eval.shape[0]))
    for j, Z in enumerate(_backward_flow_iter(velocity, x_eval, t_save, substeps)):
        if lo is not None:
            Z = lo + np.mod(Z - lo, hi - lo)
        out[j] = u0(np, Z)
    return out


# --------------------------------------------------------------------------------------------
# Dispatch and cache
# --------------------------------------------------------------------------------------------


def _grid_run_size(problem: Problem, x_eval: np.ndarray, N: int) -> int | None:
    """``N_run`` (smallest multiple of m ≥ N) when ``x_eval`` is ``problem``'s m-point grid, else None."""
    if x_eval.shape[1] != 1:
        return None
    m = x_eval.shape[0]
    ((lo, hi),) = problem.box
    expected = lo + (hi - lo) * np.arange(m) / m
    if not np.allclose(x_eval[:, 0], expected, rtol=0.0, atol=1e-12 * max(1.0, abs(hi - lo), abs(lo))):
        return None
    return m * math.ceil(N / m)


def _plan(problem: Problem, x_eval: np.ndarray) -> tuple[str, dict[str, Any]]:
    """The method string and the parameters that determine the numbers (for the cache key)."""
    from rsng.core.problems import CharacteristicsReference, ExactReference, SpectralReference

    ref = problem.reference
    if isinstance(ref, SpectralReference):
        if problem.dim != 1:
            raise ValueError(f"{problem.name}: spectral references are 1-D, box has {problem.dim} dims")
        n_run = _grid_run_size(problem, x_eval, ref.N)
        N = ref.N if n_run is None else n_run
        how = "interpolated" if n_run is None else "subsampled"
        method = f"spectral-etdrk4 N={N} dt={ref.dt:g}" + (" dealias" if ref.dealias else "") + f" {how}"
        return method, {"N": N, "dt": ref.dt, "dealias": ref.dealias, "grid": n_run is not None}
    if isinstance(ref, CharacteristicsReference):
        return f"characteristics-rk4 substeps={ref.substeps}", {"substeps": ref.substeps}
    if isinstance(ref, ExactReference):
        return "exact", {}
    raise TypeError(f"{problem.name}: unknown reference type {type(ref).__name__}")


def _compute(problem: Problem, x_eval: np.ndarray, t_save: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    from rsng.core.problems import CharacteristicsReference, SpectralReference

    ref = problem.reference
    if isinstance(ref, SpectralReference):
        ((lo, hi),) = problem.box
        length = hi - lo
        N = params["N"]
        grid = lo + length * np.arange(N) / N
        v0 = np.fft.fft(np.asarray(problem.u0(np, grid[:, None]), dtype=np.float64))
        m = x_eval.shape[0]
        out = np.empty((t_save.shape[0], m))
        if params["grid"]:
            stride = N // m
            for j, v in enumerate(_etdrk4_hat(v0, length, ref, t_save, ref.dt)):
                out[j] = np.fft.ifft(v).real[::stride]
        else:
            coarse = np.empty((t_save.shape[0], N))
            for j, v in enumerate(_etdrk4_hat(v0, length, ref, t_save, ref.dt)):
                coarse[j] = np.fft.ifft(v).real
            out = fourier_interpolate(coarse, lo, length, x_eval[:, 0])
        out[_step_counts(t_save, ref.dt) == 0] = problem.u0(np, x_eval)
        return out
    if isinstance(ref, CharacteristicsReference):
        # No wrapping: u0 is evaluated at the whole-space foot point (for vlasov, whose velocity is
        # not periodic in v, wrapping the foot points would change u by ~4e-8).
        return characteristics(problem.u0, ref.velocity, x_eval, t_save, ref.substeps)
    return np.stack([np.asarray(ref.exact(np, x_eval, float(t)), dtype=np.float64) for t in t_save])


def _cache_key(problem: Problem, params: dict[str, Any], x_eval: np.ndarray, t_save: np.ndarray) -> str:
    header = {
        "version": _CACHE_VERSION,
        "problem": problem.name,
        "box": [list(b) for b in problem.box],
        "reference": type(problem.reference).__name__,
        "params": params,
        "x_shape": list(x_eval.shape),
        "t_shape": list(t_save.shape),
    }
    h = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    h.update(x_eval.tobytes())
    h.update(t_save.tobytes())
    return h.hexdigest()


def _load(path: Path) -> Reference | None:
    try:
        with np.load(path, allow_pickle=False) as f:
            u = np.array(f["u"], dtype=np.float64)
            method = str(f["method"])
            wall_s = float(f["wall_s"])
    except (OSError, KeyError, ValueError):
        return None
    u.flags.writeable = False
    return Reference(u=u, method=method, wall_s=wall_s, cached=True)


def _store(path: Path, ref: Reference) -> None:
    atomic_write(path, lambda f: np.savez(f, u=ref.u, method=np.array(ref.method), wall_s=np.array(ref.wall_s)))


def reference_solution(
    problem: Problem,
    x_eval: np.ndarray,
    t_save: np.ndarray,
    cache_dir: str | Path | None = None,
) -> Reference:
    """The reference ``u(x_eval[i], t_save[j])`` of ``problem``, shape ``(T, m)`` float64.

    Spectral: when ``x_eval`` is ``problem.grid(m)``, ETDRK4 runs at ``N_run`` = the smallest
    multiple of ``m`` that is ``≥ spec.N`` and every ``N_run/m``-th point is returned (no
    interpolation); otherwise it runs at ``spec.N`` and is Fourier-interpolated to ``x_eval``.
    Characteristics: RK4 backward characteristics, ``u0`` at the unwrapped foot points. Exact:
    the closed form per time.

    Args:
      problem: a registered (or ad-hoc) problem.
      x_eval: ``(m, d)`` points in the box.
      t_save: ``(T,)`` times (for spectral references, whole multiples of ``spec.dt``).
      cache_dir: when given, the result is loaded from / stored in
        ``cache_dir/<sha256>.npz``, keyed by problem name and box, method parameters, ``x_eval``
        and ``t_save`` bytes (a changed formula under the same name needs a cleared cache).

    Returns:
      :class:`Reference`.
    """
    x_eval = np.ascontiguousarray(x_eval, dtype=np.float64)
    t_save = np.ascontiguousarray(t_save, dtype=np.float64).reshape(-1)
    if x_eval.ndim != 2 or x_eval.shape[1] != problem.dim:
        raise ValueError(f"x_eval must have shape (m, {problem.dim}), got {x_eval.shape}")
    method, params = _plan(problem, x_eval)
    if cache_dir is None:
        return _computed(problem, x_eval, t_save, params, method)
    path = Path(cache_dir) / f"{_cache_key(problem, params, x_eval, t_save)}.npz"
    want = (t_save.shape[0], x_eval.shape[0])
    hit = _load(path) if path.is_file() else None
    if hit is not None and hit.u.shape == want:
        return hit
    # one process computes, the others (concurrent trials, the sweep driver) wait and load its file
    lock = path.with_name(path.name + ".lock")
    with _locked(lock):
        hit = _load(path) if path.is_file() else None
        if hit is not None and hit.u.shape == want:
            return hit
        ref = _computed(problem, x_eval, t_save, params, method)
        _store(path, ref)
        # whoever comes later finds the file before it would lock; waiters hold the lock's inode
        lock.unlink(missing_ok=True)
    return ref


def _computed(problem: Problem, x_eval: np.ndarray, t_save: np.ndarray, params: dict, method: str) -> Reference:
    t0 = time.perf_counter()
    u = np.ascontiguousarray(_compute(problem, x_eval, t_save, params), dtype=np.float64)
    wall_s = time.perf_counter() - t0
    u.flags.writeable = False
    return Reference(u=u, method=method, wall_s=wall_s, cached=False)


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``lock_path`` (released by the kernel if the holder dies)."""
    import fcntl

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def run_reference(cfg: Any, cache_dir: str | Path | None = None) -> Reference:
    """The reference of one run (:class:`rsng.core.config.RunConfig`): on its grid at its stored
    steps, cached under ``<cache_dir>/reference`` (default :func:`default_cache_dir`) — what
    :class:`rsng.core.integrate.Trajectory` uses, and what a sweep driver computes ahead of its trials."""
    from rsng.core.problems import get_problem

    problem = get_problem(cfg.problem)
    t_save = np.arange(0, cfg.steps + 1, cfg.save_every) * cfg.dt
    folder = cache_root(cache_dir) / "reference"
    return reference_solution(problem, problem.grid(cfg.n), t_save, cache_dir=folder)
