"""Marching θ(t) in time: compiled chunks of steps, resumable from ``(θ_k, k)``.

:class:`Trajectory` owns one run. It compiles a chunk of ``chunk`` RK steps once (a ``fori_loop``;
steps past the end are masked), then advances chunk by chunk, so a caller can report progress,
checkpoint or stop between chunks without a Python loop per step on the hot path. The result of
step k depends only on ``(θ_k, seed, k)``; stopping at any k and resuming from the saved state gives
bit-identical results (tested).

Error metric (docs/method.md, "Error metric"): relative L2 over the whole space-time array, t = 0 included,
``‖U_pred − U_ref‖_F / ‖U_ref‖_F`` with U evaluated on the collocation grid at every
``save_every``-th step; also the per-time curve ``rel_l2_t``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import rsng.core._x64  # noqa: F401  (float64 available)
from rsng.core import record
from rsng.core.config import RunConfig
from rsng.core.network import Network
from rsng.core.problems import get_problem
from rsng.core.stepping import make_step

__all__ = [
    "Trajectory",
    "TrajectoryBatch",
    "Result",
    "STATUS_OK",
    "STATUS_DIVERGED",
    "STATUS_FAILED",
    "CONDITIONING",
    "solve",
]

#: Per-step conditioning series: of the first RK stage's sketched Jacobian, the number of singular
#: values kept by the cut-off, σ_max and the smallest kept σ (docs/method.md, "Least squares").
CONDITIONING = ("ls_rank", "ls_sigma_max", "ls_sigma_min_kept")

STATUS_OK, STATUS_DIVERGED, STATUS_FAILED = "ok", "diverged", "failed"

#: A step whose ‖u‖ (on the grid) exceeds this many times the larger of the reference's largest ‖u‖
#: and ‖u(0)‖ has blown up: the run is ``diverged`` there, like a non-finite one. (Explicit RK4 far
#: beyond its stability limit can stay finite for a few steps at 1e8–1e12 times the solution.)
BLOWUP_FACTOR = 1e3

#: Compiled chunks of this process, most recently used last. A chunk depends on the configuration
#: but not on the seed (the key is an input) nor θ(0) (an input): the next seed of a sweep reuses
#: it instead of tracing and loading it again (≈ 0.9 s per fast allen_cahn trajectory).
_COMPILED: dict[tuple, Any] = {}
_COMPILED_MAX = 8


def _compiled_chunk(cfg: RunConfig, chunk: int, batch: int | None, build: Callable[[], Any]):
    """The compiled chunk for ``cfg`` (seed, init_seed and fit_recipe ignored), ``chunk`` steps, ``batch``
    members (``None``: a single trajectory); ``build()`` compiles it on a miss. Returns
    ``(executable, seconds spent compiling)``."""
    import dataclasses

    base = dataclasses.replace(cfg, seed=0, init_seed=0, fit_recipe="")
    key = (tuple(sorted(base.to_dict().items())), chunk, batch)
    if key in _COMPILED:
        _COMPILED[key] = _COMPILED.pop(key)  # most recently used last
        return _COMPILED[key], 0.0
    t0 = time.perf_counter()
    exe = build()
    _COMPILED[key] = exe
    while len(_COMPILED) > _COMPILED_MAX:
        _COMPILED.pop(next(iter(_COMPILED)))
    return exe, time.perf_counter() - t0


#: u(θ(0)) on the grid of recent trajectories of this process, keyed by network, grid and the bytes of
#: θ(0): the seeds of a sweep share θ(0), and evaluating it (eagerly, op by op, as it always was:
#: compiled and fused it differs in the last bits) costs ≈ 80 ms — a fifth of a short trajectory.
_U0: dict[tuple, np.ndarray] = {}
_U0_MAX = 8


def _initial_u(net: Network, problem: str, n: int, theta: jax.Array, x: jax.Array) -> np.ndarray:
    import hashlib

    th = np.asarray(theta)
    key = (net, problem, n, th.dtype.str, hashlib.sha256(th.tobytes()).hexdigest())
    u = _U0.pop(key, None)
    if u is None:
        u = np.asarray(jax.vmap(net.apply, (None, 0))(theta, x), np.float64)
        u.flags.writeable = False
    _U0[key] = u  # most recently used last
    while len(_U0) > _U0_MAX:
        _U0.pop(next(iter(_U0)))
    return u


def dtype_of(precision: str):
    return {"f32": jnp.float32, "f64": jnp.float64}[precision]


@dataclass
class Result:
    """Outcome of one trajectory. Arrays are over the stored steps (t = 0 first)."""

    config: RunConfig
    status: str
    rel_l2: float
    rel_l2_t0: float
    wall_s: float
    compile_s: float  # 0 when an equal configuration (any seed) was compiled earlier in this process
    steps: int  # steps taken (== config.steps unless diverged)
    step: np.ndarray  # (T,) int step index of each stored time
    t: np.ndarray  # (T,)
    rel_l2_t: np.ndarray  # (T,) per-time relative error
    ls_residual: np.ndarray  # (T,) first-stage relative LS residual of the step that produced it (nan at t=0)
    ls_rank: np.ndarray  # (T,) singular values of the first stage's sketched J kept by the cut-off (nan at t=0)
    ls_sigma_max: np.ndarray  # (T,) σ_max of that sketched J (nan at t=0)
    ls_sigma_min_kept: np.ndarray  # (T,) its smallest kept σ (nan at t=0)
    wall_s_cumulative: np.ndarray  # (T,)
    reference: str
    fit: dict[str, Any]
    diverged_step: int | None = None
    error_message: str = ""
    theta: np.ndarray | None = field(default=None, repr=False)
    batch_size: int = 1  # trajectories marched together in one compiled call (wall_s is this one's share)

    @property
    def row(self) -> dict[str, Any]:
        """The summary row (:meth:`summary`)."""
        return self.summary()

    @property
    def series(self) -> dict[str, np.ndarray]:
        """Per stored step: ``step``, ``t``, ``rel_l2_t``, ``ls_residual``, the conditioning of the
        step's first-stage sketched Jacobian (:data:`CONDITIONING`) and ``wall_s_cumulative``."""
        return {
            "step": self.step,
            "t": self.t,
            "rel_l2_t": self.rel_l2_t,
            "ls_residual": self.ls_residual,
            "ls_rank": self.ls_rank,
            "ls_sigma_max": self.ls_sigma_max,
            "ls_sigma_min_kept": self.ls_sigma_min_kept,
            "wall_s_cumulative": self.wall_s_cumulative,
        }

    def summary(self) -> dict[str, Any]:
        """Flat JSON-able summary (the CLI's ``--json`` object). ``theta0`` says where θ(0) came from (a
        fit: ``shipped``, ``cache`` or ``fitted``; a given θ(0): its file or ``array``, with a hash); a
        given θ(0) was not fitted, so its summary has no ``fit_recipe`` or ``init_seed``."""
        c = self.config.to_dict()
        if self.fit.get("given"):
            c.update(fit_recipe=None, init_seed=None)
        return {
            **{k: c[k] for k in record.record_columns()},
            "theta0": self.fit.get("source"),
            "rel_l2": _jsonable(self.rel_l2),
            "rel_l2_t0": _jsonable(self.rel_l2_t0),
            "rel_l2_final": _jsonable(float(self.rel_l2_t[-1])) if len(self.rel_l2_t) else None,
            "wall_s": self.wall_s,
            "compile_s": self.compile_s,
            "steps": self.steps,
            "steps_per_s": self.steps / self.wall_s if self.wall_s > 0 else None,
            "status": self.status,
            "diverged_step": self.diverged_step,
            "error_message": self.error_message,
            "reference": self.reference,
            "fit_rel_l2": self.fit.get("rel_l2_u"),
            **self.j0(),
            "batch_size": self.batch_size,
        }

    def j0(self) -> dict[str, Any]:
        """The full Jacobian J(θ(0)) on the run's grid (from the fit's stored spectrum; ``None`` when θ(0)
        was given without one): ``j0_sigma_max`` and ``j0_rank``, the singular values above rcond·σ_max."""
        sigma = self.fit.get("sigma")
        if sigma is None or not len(sigma):
            return {"j0_sigma_max": None, "j0_rank": None}
        sigma = np.asarray(sigma, np.float64)
        return {"j0_sigma_max": float(sigma[0]), "j0_rank": int(np.sum(sigma > self.config.rcond * sigma[0]))}


def _jsonable(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


class Trajectory:
    """One RSNG trajectory for a resolved :class:`RunConfig`.

    Args:
      cfg: from :func:`rsng.core.config.resolve`.
      theta0: initial parameters (p,); default: the cached/shipped/fitted θ(0) (:mod:`rsng.core.fit`).
      reference: (T, n) float64 reference on the grid at the stored times; default: computed/cached
        by :mod:`rsng.core.reference`.
      chunk: steps per compiled call (progress and checkpoint granularity).
    """

    def __init__(
        self,
        cfg: RunConfig,
        *,
        theta0: np.ndarray | None = None,
        reference: np.ndarray | None = None,
        reference_method: str = "given",
        fit_info: dict | None = None,
        chunk: int = 50,
        cache_dir: str | None = None,
    ):
        self.cfg = cfg
        self.problem = get_problem(cfg.problem)
        self.net = Network(self.problem.dim, self.problem.lengths, cfg.width, cfg.depth)
        self.dtype = dtype_of(cfg.precision)
        self.chunk = max(1, min(chunk, cfg.steps)) if cfg.steps else 1
        x64 = self.problem.grid(cfg.n)
        self.x = jnp.asarray(x64, self.dtype)
        self.save_step = np.arange(0, cfg.steps + 1, cfg.save_every)
        self.t_save = self.save_step * cfg.dt

        self.fit_info = dict(fit_info or {})
        if theta0 is None:
            from rsng.core.fit import initial_theta
            from rsng.core.recipe import parse

            theta0, self.fit_info = initial_theta(
                self.problem, self.net, cfg.n, cfg.init_seed, parse(cfg.fit_recipe), cache_dir=cache_dir
            )
        if reference is None:
            from rsng.core.reference import run_reference

            ref = run_reference(cfg, cache_dir)
            reference, reference_method = ref.u, ref.method
        self.reference = np.asarray(reference, np.float64)
        if self.reference.shape != (len(self.t_save), cfg.n):
            raise ValueError(f"reference has shape {self.reference.shape}, expected {(len(self.t_save), cfg.n)}")
        self.reference_method = reference_method
        self._ref_sq = np.sum(self.reference**2, axis=1)  # (T,)

        self.theta = jnp.asarray(theta0, self.dtype)
        if self.theta.shape != (self.net.num_params,):
            raise ValueError(f"theta0 has shape {self.theta.shape}, expected ({self.net.num_params},)")
        self.key = jax.random.PRNGKey(cfg.seed)
        self.k = 0
        # per stored step: err², ls residual, cumulative wall
        self._err_sq: dict[int, float] = {}
        self._res: dict[int, float] = {}
        self._cond: dict[int, tuple[float, float, float]] = {}
        self._wall: dict[int, float] = {}
        self.wall_s = 0.0
        self.compile_s = 0.0
        self.status = STATUS_OK
        self.diverged_step: int | None = None
        self.batch_size = 1
        self._compiled = None
        u0 = _initial_u(self.net, cfg.problem, cfg.n, self.theta, self.x)
        self._u_bound = BLOWUP_FACTOR * max(float(np.sqrt(self._ref_sq.max())), float(np.linalg.norm(u0)))
        self._record(0, u0, float("nan"), (float("nan"),) * 3)

    # -- compiled pieces -----------------------------------------------------------------------
    def chunk_fn(self) -> Callable:
        """``(θ, k0, key) -> (θ_{k0+L}, (u (L, n), ls_residual (L,), finite (L,), conditioning (L, 3)))``:
        ``L = chunk`` steps from step ``k0`` (steps past the end leave θ unchanged), traceable and
        vmappable; ``conditioning`` holds the :data:`CONDITIONING` of each step, float64."""
        step = make_step(self.net, self.problem, self.cfg, self.x)
        n_steps, L = self.cfg.steps, self.chunk
        apply = jax.vmap(self.net.apply, (None, 0))
        x = self.x

        def chunk_fn(theta, k0, key):
            # a fori_loop writing into preallocated outputs: measured ≈ 20 instead of ≈ 25 ms per fast
            # allen_cahn step with the equivalent lax.scan on CPU (benchmarks/README.md)
            def body(i, carry):
                th, U, res, fin, cond = carry
                k = k0 + i
                out = step(th, k, key)
                th_next = jnp.where(k < n_steps, out.theta, th)
                u = apply(th_next, x)
                finite = jnp.all(jnp.isfinite(th_next)) & jnp.all(jnp.isfinite(u))
                c = jnp.stack(out.conditioning)
                return (
                    th_next,
                    U.at[i].set(u),
                    res.at[i].set(out.ls_residual),
                    fin.at[i].set(finite),
                    cond.at[i].set(c),
                )

            init = (
                theta,
                jnp.zeros((L, x.shape[0]), theta.dtype),
                jnp.zeros((L,), theta.dtype),
                jnp.zeros((L,), bool),
                jnp.zeros((L, 3), jnp.float64),
            )
            th, U, res, fin, cond = jax.lax.fori_loop(0, L, body, init)
            return th, (U, res, fin, cond)

        return chunk_fn

    def _build(self) -> None:
        self._compiled, seconds = _compiled_chunk(
            self.cfg,
            self.chunk,
            None,
            lambda: jax.jit(self.chunk_fn()).lower(self.theta, jnp.asarray(0, jnp.int32), self.key).compile(),
        )
        self.compile_s += seconds

    def _eval(self, theta) -> np.ndarray:
        return np.asarray(jax.vmap(self.net.apply, (None, 0))(theta, self.x), np.float64)

    def _record(self, k: int, u: np.ndarray, res: float, cond: tuple[float, float, float]) -> None:
        j = k // self.cfg.save_every
        diff = u.astype(np.float64) - self.reference[j]
        self._err_sq[k] = float(np.sum(diff * diff))
        self._res[k] = res
        self._cond[k] = cond
        self._wall[k] = self.wall_s

    # -- marching ------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.k >= self.cfg.steps or self.status != STATUS_OK

    def advance(self, max_steps: int | None = None) -> list[int]:
        """Run compiled chunks until ``max_steps`` more steps are done (at least one chunk) or the end.

        Returns the stored step indices recorded by this call. Stops early (status ``diverged``) at the
        first step whose θ or u is not finite.
        """
        if self._compiled is None:
            self._build()
        target = self.cfg.steps if max_steps is None else min(self.cfg.steps, self.k + max_steps)
        recorded: list[int] = []
        while self.k < target and self.status == STATUS_OK:
            t0 = time.perf_counter()
            theta, (u, res, finite, cond) = self._compiled(self.theta, jnp.asarray(self.k, jnp.int32), self.key)
            theta.block_until_ready()
            recorded += self.ingest(theta, u, res, finite, time.perf_counter() - t0, cond)
        return recorded

    def ingest(self, theta, u, res, finite, wall_s: float, cond=None) -> list[int]:
        """Take the output of one compiled chunk from step ``self.k`` (see :meth:`chunk_fn`), charged
        ``wall_s`` seconds: record the stored steps, stop at the first non-finite or blown-up step
        (:data:`BLOWUP_FACTOR`); ``cond`` (chunk, 3): the steps' :data:`CONDITIONING` (NaN if not given).
        Returns the stored step indices recorded."""
        self.wall_s += wall_s
        u, res, finite = np.asarray(u), np.asarray(res), np.asarray(finite)
        cond = np.full((len(res), 3), np.nan) if cond is None else np.asarray(cond, np.float64)
        n_valid = min(self.chunk, self.cfg.steps - self.k)
        with np.errstate(over="ignore", invalid="ignore"):
            blown = ~(np.linalg.norm(u[:n_valid].astype(np.float64), axis=1) <= self._u_bound)
        bad = np.flatnonzero(~finite[:n_valid] | blown)
        if bad.size:
            n_valid = int(bad[0])  # steps before the first non-finite or blown-up one are kept
            self.status = STATUS_DIVERGED
            self.diverged_step = self.k + n_valid + 1
        recorded = []
        for i in range(n_valid):
            k = self.k + i + 1
            if k % self.cfg.save_every == 0:
                self._record(k, u[i], float(res[i]), tuple(float(c) for c in cond[i]))
                recorded.append(k)
        if self.status == STATUS_OK:
            self.theta = theta
        self.k += n_valid
        return recorded

    def run(self, progress: Callable[[int, int], None] | None = None) -> Result:
        """Advance to the end, calling ``progress(k, steps)`` after each chunk."""
        while not self.done:
            self.advance(self.chunk)
            if progress is not None:
                progress(self.k, self.cfg.steps)
        return self.result()

    # -- state -------------------------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        """Everything needed to resume: θ_k, k and the error sums so far (plain arrays, no pickles)."""
        ks = np.array(sorted(self._err_sq), np.int64)
        return {
            "theta": np.asarray(self.theta),
            "k": np.asarray(self.k, np.int64),
            "rec_step": ks,
            "rec_err_sq": np.array([self._err_sq[k] for k in ks]),
            "rec_res": np.array([self._res[k] for k in ks]),
            "rec_cond": np.array([self._cond[k] for k in ks], np.float64).reshape(len(ks), 3),
            "rec_wall": np.array([self._wall[k] for k in ks]),
            "wall_s": np.asarray(self.wall_s),
            "status": np.asarray(self.status),
            "diverged_step": np.asarray(-1 if self.diverged_step is None else self.diverged_step),
        }

    def load_state(self, st: dict[str, np.ndarray]) -> None:
        """Resume from :meth:`state` (θ must have this run's dtype and shape)."""
        theta = np.asarray(st["theta"])
        if theta.shape != (self.net.num_params,) or theta.dtype != np.dtype(self.dtype):
            raise ValueError(
                f"state θ is {theta.dtype}{theta.shape}, run needs {np.dtype(self.dtype)}({self.net.num_params},)"
            )
        self.theta = jnp.asarray(theta)
        self.k = int(st["k"])
        self._err_sq = {int(k): float(e) for k, e in zip(st["rec_step"], st["rec_err_sq"])}
        self._res = {int(k): float(r) for k, r in zip(st["rec_step"], st["rec_res"])}
        # states saved before the conditioning series existed: NaN for their steps
        cond = st["rec_cond"] if "rec_cond" in st else np.full((len(st["rec_step"]), 3), np.nan)
        self._cond = {int(k): tuple(float(v) for v in c) for k, c in zip(st["rec_step"], cond)}
        self._wall = {int(k): float(w) for k, w in zip(st["rec_step"], st["rec_wall"])}
        self.wall_s = float(st["wall_s"])
        self.status = str(st["status"])
        ds = int(st["diverged_step"])
        self.diverged_step = None if ds < 0 else ds

    def series(self, ks) -> dict[str, np.ndarray]:
        """Per-time records of the stored steps ``ks``: step, t, rel_l2_t, ls_residual, the
        :data:`CONDITIONING` series, wall_s_cumulative."""
        ks = np.asarray(ks, np.int64)
        ref_sq = self._ref_sq[ks // self.cfg.save_every]
        cond = np.array([self._cond[k] for k in ks], np.float64).reshape(len(ks), 3)
        return {
            "step": ks,
            "t": ks * self.cfg.dt,
            "rel_l2_t": np.sqrt(np.array([self._err_sq[k] for k in ks]) / ref_sq),
            "ls_residual": np.array([self._res[k] for k in ks]),
            **{name: cond[:, i] for i, name in enumerate(CONDITIONING)},
            "wall_s_cumulative": np.array([self._wall[k] for k in ks]),
        }

    def running_rel_l2(self) -> float:
        """The space-time relative L2 error over the stored steps reached so far (t = 0 included): what
        :attr:`Result.rel_l2` would be if the run ended now (used to stop a search trial early)."""
        ks = sorted(self._err_sq)
        ref = self._ref_sq[np.array(ks, np.int64) // self.cfg.save_every]
        return float(np.sqrt(sum(self._err_sq[k] for k in ks) / ref.sum()))

    def result(self) -> Result:
        ks = np.array(sorted(self._err_sq), np.int64)
        j = ks // self.cfg.save_every
        err_sq = np.array([self._err_sq[k] for k in ks])
        ref_sq = self._ref_sq[j]
        rel_t = np.sqrt(err_sq / ref_sq)
        cond = np.array([self._cond[k] for k in ks], np.float64).reshape(len(ks), 3)
        if self.status == STATUS_OK:
            rel = float(np.sqrt(err_sq.sum() / ref_sq.sum()))
        else:
            rel = float("nan")  # a diverged run has no space-time error; rel_l2_t shows the history
        return Result(
            config=self.cfg,
            status=self.status,
            rel_l2=rel,
            rel_l2_t0=float(rel_t[0]),
            wall_s=self.wall_s,
            compile_s=self.compile_s,
            steps=self.k,
            step=ks,
            t=ks * self.cfg.dt,
            rel_l2_t=rel_t,
            ls_residual=np.array([self._res[k] for k in ks]),
            **{name: cond[:, i] for i, name in enumerate(CONDITIONING)},
            wall_s_cumulative=np.array([self._wall[k] for k in ks]),
            reference=self.reference_method,
            fit=self.fit_info,
            diverged_step=self.diverged_step,
            theta=np.asarray(self.theta),
            batch_size=self.batch_size,
        )


class TrajectoryBatch:
    """Several trajectories that differ only in their sketch ``seed``, marched together: one
    compiled, vmapped chunk advances all of them (one device call fills a GPU; on a CPU it saves
    the per-call overheads). Each member is a :class:`Trajectory` for its own bookkeeping (errors,
    state, divergence), so ``members[i].result()`` / ``state()`` / ``load_state()`` work as for a
    single run; a member that diverges is frozen while the others go on. Each member is charged
    ``chunk wall time / batch size`` as its marching time (``Result.batch_size`` records the size).
    A batch of one runs the single trajectory's compiled chunk, so its results are a
    :class:`Trajectory`'s bit for bit.

    Members may be restored with :meth:`Trajectory.load_state` before the first :meth:`advance`.
    """

    def __init__(
        self,
        cfgs: list[RunConfig],
        *,
        chunk: int = 50,
        cache_dir: str | None = None,
        theta0: np.ndarray | None = None,
        reference: np.ndarray | None = None,
        reference_method: str = "given",
        fit_info: dict | None = None,
    ):
        import dataclasses

        if not cfgs:
            raise ValueError("TrajectoryBatch needs at least one configuration")
        base = dataclasses.replace(cfgs[0], seed=0)
        for c in cfgs[1:]:
            if dataclasses.replace(c, seed=0) != base:
                raise ValueError("a batch's configurations may differ only in seed")
        if len({c.seed for c in cfgs}) != len(cfgs):
            raise ValueError("a batch's seeds must be distinct")
        first = Trajectory(
            cfgs[0],
            chunk=chunk,
            cache_dir=cache_dir,
            theta0=theta0,
            reference=reference,
            reference_method=reference_method,
            fit_info=fit_info,
        )
        theta0 = np.asarray(first.theta)
        self.members = [first] + [
            Trajectory(
                c,
                chunk=chunk,
                theta0=theta0,
                reference=first.reference,
                reference_method=first.reference_method,
                fit_info=first.fit_info,
            )
            for c in cfgs[1:]
        ]
        for m in self.members:
            m.batch_size = len(self.members)
        self.chunk = first.chunk
        self.compile_s = 0.0
        self._compiled = None

    @property
    def done(self) -> bool:
        return all(m.done for m in self.members)

    def _build(self) -> None:
        m0 = self.members[0]
        thetas = jnp.stack([m.theta for m in self.members])
        keys = jnp.stack([m.key for m in self.members])
        if len(self.members) == 1:
            # a batch of one is the single trajectory's chunk with a batch axis around it: vmapped over
            # one member, XLA's code took 1.8-2.0x the single trajectory's time per step on a CPU
            # (benchmarks/batch.py)
            chunk_fn = m0.chunk_fn()

            def batched(th, k0, key):
                return jax.tree_util.tree_map(lambda a: a[None], chunk_fn(th[0], k0, key[0]))
        else:
            batched = jax.vmap(m0.chunk_fn(), in_axes=(0, None, 0))
        self._compiled, self.compile_s = _compiled_chunk(
            m0.cfg,
            self.chunk,
            len(self.members),
            lambda: jax.jit(batched).lower(thetas, jnp.asarray(0, jnp.int32), keys).compile(),
        )
        for m in self.members:
            m.compile_s += self.compile_s

    def advance(self, max_steps: int | None = None) -> list[list[int]]:
        """Advance every unfinished member by up to ``max_steps`` steps (at least one chunk); returns
        the stored step indices each member recorded.

        Members restored from states saved at different chunk boundaries (a batch interrupted
        between two members' saves) are fine: the batch marches from the earliest step and a member
        that is ahead only takes results again once the batch has caught up with it.
        """
        if self._compiled is None:
            self._build()
        recorded: list[list[int]] = [[] for _ in self.members]
        active = [m for m in self.members if not m.done]
        if not active:
            return recorded
        k = min(m.k for m in active)
        for m in active:
            if (m.k - k) % self.chunk:
                raise ValueError(
                    f"batch members at steps {sorted({a.k for a in active})} are not a whole number "
                    f"of chunks ({self.chunk} steps) apart; resume them with the chunk they were saved with"
                )
        cfg = active[0].cfg
        target = cfg.steps if max_steps is None else min(cfg.steps, k + max_steps)
        keys = jnp.stack([m.key for m in self.members])
        while active and k < target:
            thetas = jnp.stack([m.theta for m in self.members])
            t0 = time.perf_counter()
            theta, (u, res, finite, cond) = self._compiled(thetas, jnp.asarray(k, jnp.int32), keys)
            theta.block_until_ready()
            wall = (time.perf_counter() - t0) / len(self.members)
            theta, u, res, finite = np.asarray(theta), np.asarray(u), np.asarray(res), np.asarray(finite)
            cond = np.asarray(cond)
            for i, m in enumerate(self.members):
                if not m.done and m.k == k:
                    recorded[i] += m.ingest(jnp.asarray(theta[i]), u[i], res[i], finite[i], wall, cond[i])
            k += self.chunk
            active = [m for m in self.members if not m.done]
        return recorded

    def run(self, progress: Callable[[int, int], None] | None = None) -> list[Result]:
        """Advance all members to the end; ``progress(k, steps)`` after each chunk."""
        while not self.done:
            self.advance(self.chunk)
            if progress is not None:
                progress(max(m.k for m in self.members), self.members[0].cfg.steps)
        return [m.result() for m in self.members]


def solve(cfg: RunConfig, **kwargs) -> Result:
    """Run one trajectory to the end (see :class:`Trajectory` for the keyword arguments)."""
    return Trajectory(cfg, **kwargs).run()
