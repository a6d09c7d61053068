"""Size BLAS / XLA thread pools to the CPUs a process was given — before numpy or JAX load.

Two full-size thread pools on a 2-core machine turned a 1000×150 least squares from 5 ms into
1.2 s (SPEC §5). Call :func:`configure_threads` first thing in every entry point (CLI, trial,
benchmark); it only sets environment variables, so it is a no-op once JAX has initialised.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["configure_threads", "available_cpus", "enable_compilation_cache"]

_BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def available_cpus() -> int:
    """CPUs this process may run on (affinity-aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def configure_threads(n: int | None = None, *, override: bool = False) -> int:
    """Set BLAS and XLA CPU thread counts to ``n`` (default: :func:`available_cpus`).

    Existing settings win unless ``override``; returns the count used.
    """
    n = max(1, int(n if n is not None else available_cpus()))
    for var in _BLAS_VARS:
        if override or var not in os.environ:
            os.environ[var] = str(n)
    flags = os.environ.get("XLA_FLAGS", "")
    # XLA has no flag for "k threads": one CPU → single-threaded Eigen (the JAX FAQ's recipe);
    # more → XLA's own pool, which follows the process's CPU affinity.
    if n == 1 and (override or "multi_thread_eigen" not in flags):
        keep = [f for f in flags.split() if "intra_op_parallelism_threads" not in f and "multi_thread_eigen" not in f]
        os.environ["XLA_FLAGS"] = " ".join(keep + ["--xla_cpu_multi_thread_eigen=false", "intra_op_parallelism_threads=1"])
    return n


def enable_compilation_cache(cache_dir: str | os.PathLike | None = None) -> Path:
    """Use JAX's persistent compilation cache in ``<cache_dir>/jax`` (default ``$RSNG_CACHE_DIR`` or
    ``~/.cache/rsng``), created private (mode 0700: compiled code is loaded from there).

    Sets the environment (read when JAX initialises) and, if JAX is already imported, its config.
    A repeated run of the same shapes then loads its executables instead of compiling them.
    """
    cache_dir = cache_dir or os.environ.get("RSNG_CACHE_DIR") or os.path.expanduser("~/.cache/rsng")
    jax_cache = Path(cache_dir) / "jax"
    jax_cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(jax_cache, 0o700)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(jax_cache)
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ["RSNG_CACHE_DIR"] = str(cache_dir)
    if "jax" in sys.modules:  # JAX read its environment already
        import jax

        jax.config.update("jax_compilation_cache_dir", str(jax_cache))
        jax.config.update("jax_persistent_cache_min_compile_time_secs",
                          float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))
    return jax_cache
