"""θ(0): fit the network to u0 on the collocation grid, cached on disk by a content hash.

Loss (float64): ``‖u − u0‖/‖u0‖ + ‖∇u − ∇u0‖/‖∇u0‖`` over the n grid points (relative L2 of the
values and of the spatial gradient), minimised in up to four stages, each with its budget in the
recipe (:mod:`rsng.core.recipe`; a stage with 0 steps is skipped): L-BFGS (optax, zoom line search),
Levenberg–Marquardt on the stacked residual ``r = [(u − u0)/‖u0‖, (∇u − ∇u0)/‖∇u0‖]``, Adam with a
cosine-decaying step (the best iterate is kept), then a Levenberg–Marquardt polish. The
Levenberg–Marquardt stage is ours, not the paper's: on allen_cahn (n=1000, depth 7) 5000 L-BFGS +
2000 Adam iterations stalled at a t=0 error of 1.2e-4 in 115 s, while 1000 L-BFGS + 60 LM iterations
reached 2.1e-5 in 60 s. Which stages start the fit decides the Jacobian's spectrum at θ(0), and so how
much of each sketch the paper's cut-off keeps (docs/initial-fit.md): L-BFGS and Levenberg–Marquardt
from the initialisation stay near it with a steep spectrum; a long Adam run at a large step (recipe
``adam-lm``) ends with a flat one, and the polish then lowers the t = 0 error without steepening it.
Lookup order of :func:`initial_theta`: the user cache (``$RSNG_CACHE_DIR``, default ``~/.cache/rsng``),
the files shipped in ``rsng/core/data``, then a fresh fit (stored in the user cache). Files are ``.npz`` arrays, never pickles.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import rsng.core._x64  # noqa: F401  (float64 available)
from rsng.core.files import atomic_write, cache_root
from rsng.core.network import Network
from rsng.core.problems import Problem, get_problem
from rsng.core.recipe import DEFAULT_RECIPE, RECIPES, FitSettings, describe

__all__ = [
    "FitSettings",
    "fit",
    "initial_theta",
    "fit_key",
    "SHIPPED_DIR",
    "default_cache_dir",
    "default_settings",
    "t0_error",
    "start_theta",
    "full_jacobian",
    "singular_values",
    "jacobian_spectrum",
    "spectrum_summary",
    "read_theta",
    "given_theta",
]

SHIPPED_DIR = Path(__file__).parent / "data"
FORMAT_VERSION = 1
#: Grid points used by the fit (larger grids are subsampled; the hash key holds n). Changing these
#: changes fitted results for n above them: bump FORMAT_VERSION then.
MAX_FIT_POINTS = 2000
MAX_LM_POINTS = 1000
#: The full J(θ(0)) spectrum is computed with a fit (and stored in its file) up to this many grid
#: points: J is n × p float64 (270 MB at n = 10 000, p = 3393); above it ``sigma`` is ``None``.
MAX_SPECTRUM_POINTS = 20_000


def default_settings() -> FitSettings:
    """The default recipe's settings."""
    return RECIPES[DEFAULT_RECIPE]


def default_cache_dir() -> Path:
    """``$RSNG_CACHE_DIR`` (default ``~/.cache/rsng``): :func:`rsng.core.files.cache_root`."""
    return cache_root()


def fit_key(problem: Problem, net: Network, n: int, init_seed: int, settings: FitSettings) -> str:
    """Content hash of everything the fitted θ(0) depends on."""
    blob = json.dumps(
        {
            "v": FORMAT_VERSION,
            "problem": problem.name,
            "equation": problem.equation,
            "box": problem.box,
            "width": net.width,
            "depth": net.depth,
            "n": n,
            "init_seed": init_seed,
            "settings": _key_settings(settings),
        },
        sort_keys=True,
    )
    return (
        f"{problem.name}-d{net.depth}w{net.width}-n{n}-s{init_seed}-" + hashlib.sha256(blob.encode()).hexdigest()[:16]
    )


#: Recipe fields added after fits were shipped: left out of the hash at their defaults, so the keys of
#: fits made before them stay valid.
_LATER_FIELDS = {
    "embed_scale": 1.0,
    "weight_scale": 1.0,
    "beta0": 1.0,
    "weight_decay": 0.0,
    "polish_steps": 0,
    "fit_points": 0,
}


def _key_settings(settings: FitSettings) -> dict[str, Any]:
    d = asdict(settings)
    for name, default in _LATER_FIELDS.items():
        if d[name] == default:
            del d[name]
    return d


def _targets(problem: Problem, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    u0 = lambda xi: problem.u0(jnp, xi[None, :])[0]
    return jax.vmap(u0)(x), jax.vmap(jax.grad(u0))(x)


def t0_error(problem: Problem, net: Network, theta: jax.Array, x: jax.Array) -> dict[str, float]:
    """Relative L2 errors of u and ∇u against u0 on the points x (n, d)."""
    u_ref, g_ref = _targets(problem, x.astype(jnp.float64))
    th = jnp.asarray(theta)
    xx = x.astype(th.dtype)
    u = net.apply_batch(th, xx)
    g = jax.vmap(jax.grad(net.apply, 1), (None, 0))(th, xx)
    return {
        "rel_l2_u": float(jnp.linalg.norm(u - u_ref) / jnp.linalg.norm(u_ref)),
        "rel_l2_grad": float(jnp.linalg.norm(g - g_ref) / jnp.linalg.norm(g_ref)),
    }


def fit(
    problem: Problem, net: Network, n: int, init_seed: int = 0, settings: FitSettings | None = None, log: Any = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Fit θ(0) in float64 on the n-point grid with the recipe ``settings`` (default: the default
    recipe, :data:`rsng.core.recipe.DEFAULT_RECIPE`); returns θ (p,) float64 and fit diagnostics.

    Large grids are subsampled (every k-th point): at most :data:`MAX_FIT_POINTS` points for
    L-BFGS and Adam and :data:`MAX_LM_POINTS` for Levenberg–Marquardt; a recipe's ``fit_points`` > 0
    replaces the L-BFGS and Adam stages' grid by that many equispaced points (``problem.grid``). The
    reported t=0 errors are measured on the whole n-point grid.
    """
    settings = settings or default_settings()
    x_full = jnp.asarray(problem.grid(n), jnp.float64)
    if settings.fit_points:
        x = jnp.asarray(problem.grid(settings.fit_points), jnp.float64)
    else:
        x = _subgrid(x_full, problem.grid_shape(n), MAX_FIT_POINTS)
    u_ref, g_ref = _targets(problem, x)
    nu, ng = jnp.linalg.norm(u_ref), jnp.linalg.norm(g_ref)
    grad_x = jax.vmap(jax.grad(net.apply, 1), (None, 0))

    decay = _decay_weights(net, settings.weight_decay)  # (p,) or None

    def loss(theta):
        u = net.apply_batch(theta, x)
        g = grad_x(theta, x)
        value = jnp.linalg.norm(u - u_ref) / nu + jnp.linalg.norm(g - g_ref) / ng
        return value if decay is None else value + jnp.linalg.norm(decay * theta)

    theta = start_theta(net, init_seed, settings)
    t0 = time.perf_counter()

    opt = optax.lbfgs()
    vg = optax.value_and_grad_from_state(loss)

    def lbfgs_body(_, carry):
        th, st = carry
        value, grad = vg(th, state=st)
        upd, st = opt.update(grad, st, th, value=value, grad=grad, value_fn=loss)
        th_new = optax.apply_updates(th, upd)
        ok = jnp.all(jnp.isfinite(th_new))
        return jnp.where(ok, th_new, th), st

    theta = _loop(lbfgs_body, (theta, opt.init(theta)), settings.lbfgs_steps, log, "L-BFGS", lambda c: loss(c[0]))[0]
    after_lbfgs = float(loss(theta))
    x_lm = _subgrid(x_full, problem.grid_shape(n), MAX_LM_POINTS)
    u_lm, g_lm = _targets(problem, x_lm)
    nu_lm, ng_lm = jnp.linalg.norm(u_lm), jnp.linalg.norm(g_lm)

    def lm(theta, steps):  # the Levenberg–Marquardt stage and the polish after Adam
        return _levenberg_marquardt(net, x_lm, u_lm, g_lm, nu_lm, ng_lm, theta, steps, log, decay)

    theta = lm(theta, settings.lm_steps)
    after_lm = float(loss(theta))

    sched = optax.cosine_decay_schedule(settings.adam_lr, max(1, settings.adam_steps))
    adam = optax.adam(sched)

    def adam_body(_, carry):
        th, st, best, best_val = carry
        val, grad = jax.value_and_grad(loss)(th)
        better = val < best_val
        best, best_val = jnp.where(better, th, best), jnp.where(better, val, best_val)
        upd, st = adam.update(grad, st, th)
        return optax.apply_updates(th, upd), st, best, best_val

    if settings.adam_steps:
        init = (theta, adam.init(theta), theta, loss(theta))
        th, _, best, best_val = _loop(adam_body, init, settings.adam_steps, log, "Adam", lambda c: c[3])
        theta = jnp.where(loss(th) < best_val, th, best)  # the best iterate, the last one included
    theta = lm(theta, settings.polish_steps)
    info = {
        "after_lbfgs": after_lbfgs,
        "after_lm": after_lm,
        "loss": float(loss(theta)),
        "fit_wall_s": time.perf_counter() - t0,
        **t0_error(problem, net, theta, x_full),
        "n": n,
        "init_seed": init_seed,
        **asdict(settings),
        "recipe": describe(settings),
    }
    if log:
        ran = [(n, v) for n, k, v in (("L-BFGS", "lbfgs_steps", after_lbfgs), ("LM", "lm_steps", after_lm)) if info[k]]
        stages = f" (after {', '.join(f'{n} {v:.3e}' for n, v in ran)})" if ran else ""
        log(
            f"fit {problem.name}: loss {info['loss']:.3e}{stages}, "
            f"rel_l2(u) {info['rel_l2_u']:.2e} in {info['fit_wall_s']:.0f} s"
        )
    return np.asarray(theta), info


#: A long first-order stage reports its progress this many times (when the fit has a log).
PROGRESS_REPORTS = 20


def _loop(body: Any, carry: Any, steps: int, log: Any, name: str, value: Any) -> Any:
    """``jax.lax.fori_loop(0, steps, body, carry)``, run as one jitted loop; with a ``log``, in
    :data:`PROGRESS_REPORTS` pieces, each followed by a line with the iterations done, ``value(carry)``
    and the time left at the rate so far (an Adam run of 30 000 iterations takes minutes). The pieces
    run the same compiled loop (the trip count is an argument), so θ does not depend on ``log``."""
    if steps <= 0:
        return carry
    run = jax.jit(lambda c, k: jax.lax.fori_loop(0, k, body, c))
    reports = 1 if log is None else PROGRESS_REPORTS
    ends = sorted({steps * i // reports for i in range(1, reports + 1)} - {0})  # min(steps, reports) pieces
    done, t0, first = 0, time.perf_counter(), None
    for end in ends:
        carry = run(carry, jnp.int32(end - done))
        done = end
        if log is not None:
            now = time.perf_counter()
            first = first or (now, done)  # the rate leaves out the first piece, which compiles the loop
            rate = (now - first[0]) / (done - first[1]) if done > first[1] else (now - t0) / done
            log(
                f"  {name} {done:6d}/{steps}: loss {float(value(carry)):.3e}, {now - t0:.0f} s, "
                f"≈ {rate * (steps - done):.0f} s left"
            )
    return carry


def start_theta(net: Network, init_seed: int, settings: FitSettings) -> jax.Array:
    """The fit's starting point: the network initialisation of ``init_seed`` (float64), rescaled by the
    recipe's ``embed_scale``/``weight_scale`` and with its activations' β0 set to ``beta0``."""
    theta = net.init(jax.random.PRNGKey(init_seed), jnp.float64)
    if (settings.embed_scale, settings.weight_scale, settings.beta0) == (1.0, 1.0, 1.0):
        return theta
    scale = np.ones(net.num_params)
    th = np.asarray(theta).copy()
    for name, (o, shape) in net.offsets.items():
        size = int(np.prod(shape))
        if name in ("embed/a", "embed/c"):
            scale[o : o + size] = settings.embed_scale
        elif net.is_dense_weight(name):
            scale[o : o + size] = settings.weight_scale
        elif name.endswith("/beta"):
            th[o + 2] = settings.beta0
    return jnp.asarray(th * scale)


def _subgrid(x: jax.Array, shape: tuple[int, ...], max_points: int) -> jax.Array:
    """Every k-th point along each axis of the tensor grid x (n, d), k the same for all axes."""
    n, d = x.shape
    if n <= max_points:
        return x
    k = int(np.ceil((n / max_points) ** (1 / d)))
    return x.reshape(*shape, d)[tuple(slice(None, None, k) for _ in shape)].reshape(-1, d)


def _decay_weights(net: Network, weight_decay: float) -> jax.Array | None:
    """``c`` (p,) with ``‖c ⊙ θ‖ = weight_decay · rms(W)`` (W: the hidden dense weights), or ``None`` at 0."""
    if weight_decay == 0:
        return None
    mask = np.zeros(net.num_params)
    for name, (o, shape) in net.offsets.items():
        if net.is_dense_weight(name):
            mask[o : o + int(np.prod(shape))] = 1.0
    if not mask.any():  # depth 2: no hidden dense layer
        return None
    return jnp.asarray(mask * weight_decay / np.sqrt(mask.sum()), jnp.float64)


def _decayed_lm_delta(J: jax.Array, r: jax.Array, th: jax.Array, lam: float, decay: jax.Array) -> jax.Array:
    """The weight-decayed Levenberg–Marquardt step ``δ = −(JᵀJ + D)⁻¹ (Jᵀ r + c² ⊙ θ)``, ``D = diag(c² + λ μ)``,
    ``μ = ‖J‖_F² / min(rows, p)``, by Woodbury: ``(JᵀJ + D)⁻¹ = D⁻¹ − D⁻¹Jᵀ (I + J D⁻¹ Jᵀ)⁻¹ J D⁻¹``
    (a rows × rows solve; rows < p here)."""
    mu = jnp.sum(J * J) / min(J.shape)
    dinv = 1.0 / (decay**2 + lam * mu)
    a = dinv * (J.T @ r + decay**2 * th)
    inner = jnp.eye(J.shape[0], dtype=J.dtype) + (J * dinv) @ J.T
    return -(a - dinv * (J.T @ jnp.linalg.solve(inner, J @ a)))


def _levenberg_marquardt(net, x, u_ref, g_ref, nu, ng, theta, steps, log=None, decay=None):
    """Levenberg–Marquardt on ``r(θ)`` (rows: n values, n·d gradient components).

    Step ``δ = −Jᵀ (J Jᵀ + λ μ I)⁻¹ r`` when rows ≤ p (μ = mean diagonal of J Jᵀ), else the primal
    ``(JᵀJ + λ μ I) δ = −Jᵀ r``; λ shrinks ×3 on success and grows ×4 on failure. With weight decay
    ``c`` (:func:`_decay_weights`) the residual gains the rows ``c ⊙ θ``, a diagonal block of J, and the
    step ``(JᵀJ + diag(c² + λ μ)) δ = −(Jᵀ r + c² ⊙ θ)`` is solved through the rows × rows matrix
    (Woodbury), μ = ‖J‖_F² / min(rows, p) as above.
    """
    if steps <= 0:
        return theta
    d = x.shape[1]

    def residual(th):
        u = net.apply_batch(th, x)
        g = jax.vmap(jax.grad(net.apply, 1), (None, 0))(th, x)
        return jnp.concatenate([(u - u_ref) / nu, ((g - g_ref) / ng).T.ravel()])

    def jac(th):
        rows = [jax.vmap(jax.grad(net.apply), (None, 0))(th, x) / nu]
        for k in range(d):
            dk = lambda t, xi, k=k: jax.grad(net.apply, 1)(t, xi)[k]
            rows.append(jax.vmap(jax.grad(dk), (None, 0))(th, x) / ng)
        return jnp.concatenate(rows)

    def objective(th):
        r = residual(th)
        return jnp.linalg.norm(r) if decay is None else jnp.sqrt(jnp.sum(r * r) + jnp.sum((decay * th) ** 2))

    @jax.jit
    def step(th, lam):
        J, r = jac(th), residual(th)
        if decay is not None:
            cand = th + _decayed_lm_delta(J, r, th, lam, decay)
            return cand, objective(th), objective(cand)
        if J.shape[0] <= J.shape[1]:
            K = J @ J.T
            mu = jnp.trace(K) / K.shape[0]
            delta = -J.T @ jnp.linalg.solve(K + lam * mu * jnp.eye(K.shape[0], dtype=K.dtype), r)
        else:
            K = J.T @ J
            mu = jnp.trace(K) / K.shape[0]
            delta = -jnp.linalg.solve(K + lam * mu * jnp.eye(K.shape[0], dtype=K.dtype), J.T @ r)
        cand = th + delta
        return cand, jnp.linalg.norm(r), jnp.linalg.norm(residual(cand))

    lam = 1e-3
    for it in range(steps):
        cand, f0, f1 = step(theta, lam)
        f0, f1 = float(f0), float(f1)
        if np.isfinite(f1) and f1 < f0:
            theta, lam = cand, max(lam / 3, 1e-12)
        else:
            lam = min(lam * 4, 1e8)
        if log and it % 50 == 0:
            log(f"  LM {it:4d}: |r| {min(f0, f1):.3e}  lambda {lam:.1e}")
    return theta


def full_jacobian(problem: Problem, net: Network, theta: np.ndarray, n: int) -> np.ndarray:
    """The full Jacobian ``J(θ)`` (n × p, float64) of u on the n-point grid."""
    x = jnp.asarray(problem.grid(n), jnp.float64)
    return np.asarray(
        jax.jit(lambda th: jax.vmap(jax.grad(net.apply), (None, 0))(th, x))(jnp.asarray(theta, jnp.float64))
    )


def singular_values(J: np.ndarray) -> np.ndarray:
    """Singular values (descending, float64) of J: the square roots of the eigenvalues of the float64 Gram
    matrix of its smaller side."""
    J = np.asarray(J, np.float64)
    G = J @ J.T if J.shape[0] <= J.shape[1] else J.T @ J
    lam = np.linalg.eigvalsh(G)[::-1]
    return np.sqrt(np.clip(lam, 0.0, None))


def jacobian_spectrum(problem: Problem, net: Network, theta: np.ndarray, n: int) -> np.ndarray:
    """Singular values (descending, float64) of the full Jacobian ``J(θ)`` (n × p) on the n-point grid
    (:func:`full_jacobian`, :func:`singular_values`)."""
    return singular_values(full_jacobian(problem, net, theta, n))


def spectrum_summary(sigma: np.ndarray, rconds: tuple[float, ...] = (1e-4, 1e-5)) -> dict[str, Any]:
    """σ_max of J(θ(0)) and, per cut-off, how many singular values lie above rcond·σ_max."""
    out: dict[str, Any] = {"j0_sigma_max": float(sigma[0])}
    for r in rconds:
        out[f"j0_rank@{r:g}"] = int(np.sum(sigma > r * sigma[0]))
    return out


def _save(path: Path, theta: np.ndarray, info: dict[str, Any], sigma: np.ndarray | None = None) -> None:
    extra = {} if sigma is None else {"sigma": np.asarray(sigma, np.float64)}
    atomic_write(path, lambda f: np.savez(f, theta=theta, info=np.asarray(json.dumps(info)), **extra))


def _load(path: Path) -> tuple[np.ndarray, dict[str, Any], np.ndarray | None]:
    with np.load(path, allow_pickle=False) as z:
        sigma = np.asarray(z["sigma"]) if "sigma" in z.files else None
        return np.asarray(z["theta"]), json.loads(str(z["info"])), sigma


def initial_theta(
    problem: Problem,
    net: Network,
    n: int,
    init_seed: int = 0,
    settings: FitSettings | None = None,
    cache_dir: str | Path | None = None,
    log: Any = None,
    refit: bool = False,
    ship: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """θ(0) (p,) float64 and its fit diagnostics (``source``: cache, shipped or fitted; ``recipe``: the
    settings as key=value items; ``sigma``: the singular values of the full J(θ(0)) on the n-point grid,
    stored with the fit — ``None`` above :data:`MAX_SPECTRUM_POINTS` points —, and their
    :func:`spectrum_summary`). A shipped file without the spectrum is copied, with it, to the user cache.

    ``ship=True`` also writes the file into the package's data folder (how the shipped files are made;
    an existing file is rewritten with its spectrum, θ unchanged, unless ``refit``).
    """
    settings = settings or default_settings()
    key = fit_key(problem, net, n, init_seed, settings)
    cache = cache_root(cache_dir) / "theta0" / f"{key}.npz"
    shipped = SHIPPED_DIR / f"{key}.npz"
    if not refit:
        for source, path in (("cache", cache), ("shipped", shipped)):
            if path.exists():
                theta, info, sigma = _load(path)
                if sigma is None and n <= MAX_SPECTRUM_POINTS:  # written before the spectrum was stored
                    sigma = jacobian_spectrum(problem, net, theta, n)
                    _save(cache, theta, info, sigma)  # the user cache (looked up first) keeps it
                if ship:
                    _save(shipped, theta, info, sigma)
                return theta, {**info, **_spectrum_info(settings, sigma), "source": source, "key": key}
    theta, info = fit(problem, net, n, init_seed, settings, log=log)
    sigma = jacobian_spectrum(problem, net, theta, n) if n <= MAX_SPECTRUM_POINTS else None
    _save(cache, theta, info, sigma)
    if ship:
        _save(shipped, theta, info, sigma)
    return theta, {**info, **_spectrum_info(settings, sigma), "source": "fitted", "key": key}


def read_theta(path: str | Path) -> np.ndarray:
    """θ from a file: an ``.npy`` array (``rsng solve --out`` writes ``theta_final.npy``) or an ``.npz``
    with the array ``theta`` (a fit's file: the user cache, ``rsng/core/data``). Never unpickles: any
    other file, a pickle included, raises ``ValueError`` saying what was found."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{str(path)!r} is not a file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as e:  # numpy refuses what it would have to unpickle: a pickle, any other file, objects
        what = "holds Python objects" if "Object arrays" in str(e) else "is not an .npy or .npz file"
        raise ValueError(f"{str(path)!r} {what} (numpy would unpickle it; rsng never unpickles)") from None
    except (OSError, EOFError) as e:
        raise ValueError(f"{str(path)!r} is not an .npy or .npz file ({e})") from None
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded as z:
        if "theta" not in z.files:
            raise ValueError(f"{str(path)!r} has no array 'theta' (it has: {', '.join(z.files) or 'nothing'})")
        try:
            return np.asarray(z["theta"])
        except ValueError:
            raise ValueError(
                f"{str(path)!r}: its 'theta' holds Python objects (numpy would unpickle it; rsng never unpickles)"
            ) from None


def given_theta(cfg: Any, theta: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """A θ(0) given instead of fitted (``rsng solve --theta0``) for the run ``cfg`` (a
    :class:`rsng.core.config.RunConfig`): ``theta`` a path (:func:`read_theta`) or an array. Checked —
    real numbers, shape (p,) of the run's network, finite — and returned as float64 with what a fit
    records: its t = 0 errors and the spectrum of the full J(θ(0)) on the run's grid (``sigma`` ``None``
    above :data:`MAX_SPECTRUM_POINTS` points). ``info`` has ``given: True``, ``recipe: None`` and
    ``source``: the file (or ``array``) and the first 12 hex digits of the SHA-256 of θ as float64.
    Raises ``ValueError`` before any computation when θ cannot be read or does not fit the network."""
    problem = get_problem(cfg.problem)
    net = Network(problem.dim, problem.lengths, cfg.width, cfg.depth)
    n = cfg.n
    if isinstance(theta, str | os.PathLike):
        source, theta = f"file {theta}", read_theta(theta)
    else:
        source = "array"
    arr = np.asarray(theta)
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"expected real numbers, got an array of dtype {arr.dtype}")
    if arr.shape != (net.num_params,):
        raise ValueError(
            f"expected shape ({net.num_params},), the parameters of depth {net.depth}, width {net.width} "
            f"in {net.dim}-D, got {arr.shape}"
        )
    th = arr.astype(np.float64)
    if not np.all(np.isfinite(th)):
        raise ValueError(f"{int(np.sum(~np.isfinite(th)))} of its {th.size} values are not finite")
    digest = hashlib.sha256(th.tobytes()).hexdigest()[:12]
    x = jnp.asarray(problem.grid(n), jnp.float64)
    sigma = jacobian_spectrum(problem, net, th, n) if n <= MAX_SPECTRUM_POINTS else None
    info: dict[str, Any] = {
        **t0_error(problem, net, jnp.asarray(th), x),
        "recipe": None,
        "sigma": sigma,
        "given": True,
        "source": f"{source} (sha256 {digest})",
    }
    return th, info if sigma is None else {**info, **spectrum_summary(sigma)}


def _spectrum_info(settings: FitSettings, sigma: np.ndarray | None) -> dict[str, Any]:
    out: dict[str, Any] = {"recipe": describe(settings), "sigma": sigma}
    return out if sigma is None else {**out, **spectrum_summary(sigma)}
