"""Size XLA's thread pool to the CPUs a process was given, BLAS/LAPACK's to one — before numpy or
JAX load.

Two full-size thread pools on a 2-core machine turned a 1000×150 least squares from 5 ms into
1.2 s (measured on a 2-core VM). Call :func:`configure_threads` first thing in every entry point (CLI, trial,
benchmark); it only sets environment variables, so it is a no-op once JAX has initialised. Sweep
trials also pin themselves to cores of their own (:func:`claim_cpus`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rsng.core.files import CACHE_ENV, cache_root

__all__ = ["configure_threads", "available_cpus", "cpu_kind", "enable_compilation_cache", "claim_cpus"]

_BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def available_cpus() -> int:
    """CPUs this process may run on (affinity-aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def cpu_kind() -> str:
    """This CPU's kind: vendor, family, model and widest vector ISA from ``/proc/cpuinfo``, e.g.
    ``AuthenticAMD-25-17-avx512`` (``unknown`` where there is none).

    XLA compiles for the host's vector width, so the summation order, and in float32 the last bits,
    differ between kinds; the truncated least squares amplifies that (tests/core/test_golden.py:
    1e-3–3e-2 relative after 12 steps), and long fits do not repeat across kinds
    (docs/initial-fit.md). So results rows record it in ``device`` (``cpu:<kind>``), the benchmarks
    print it, and tests/core/golden/ names its bit-for-bit sets by it.
    """
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        return "unknown"
    flags = set(info.get("flags", "").split())
    isa = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "other"
    parts = [info.get("vendor_id", "unknown"), info.get("cpu family", "?"), info.get("model", "?"), isa]
    return "-".join(p.replace(" ", "_") for p in parts)


def configure_threads(n: int | None = None, *, override: bool = False) -> int:
    """Give XLA ``n`` CPU threads (default: :func:`available_cpus`) and BLAS/LAPACK one.

    A run's only BLAS/LAPACK work is the eigen-decomposition of the s × s Gram that XLA hands to
    LAPACK, and several OpenBLAS threads slow it down (measured on 2 CPUs, XLA with two threads:
    fast allen_cahn 18.4 s with two OpenBLAS threads against 11.3 s with one; n = 10 000, s = 800:
    945 against 838 ms/step; only n = 1000, s = 800 gained, 266 against 297 ms). Existing settings
    win unless ``override``; returns ``n``. XLA's other CPU settings stay at their defaults: its
    YNNPACK dot kernels, which an earlier version turned off for sketches up to s = 200, are faster
    at every size since the fast solver's factors run points along the minor axis
    (benchmarks/README.md); a user's own ``XLA_FLAGS`` pass through.
    """
    n = max(1, int(n if n is not None else available_cpus()))
    for var in _BLAS_VARS:
        if override or var not in os.environ:
            os.environ[var] = "1"
    flags = os.environ.get("XLA_FLAGS", "")
    # XLA has no flag for "k threads": one CPU → single-threaded Eigen; more → XLA's own pool, which
    # follows the process's CPU affinity (:func:`claim_cpus`). The JAX FAQ's companion token
    # "intra_op_parallelism_threads=1" is not an XLA flag, and XLA stops reading XLA_FLAGS at the
    # first token without "--" (every flag after it was silently ignored), so it is removed.
    flags = " ".join(f for f in flags.split() if "intra_op_parallelism_threads" not in f)
    if n == 1 and (override or "multi_thread_eigen" not in flags):
        flags = " ".join(
            [f for f in flags.split() if "multi_thread_eigen" not in f] + ["--xla_cpu_multi_thread_eigen=false"]
        )
    os.environ["XLA_FLAGS"] = flags.strip()
    return n


#: CPUs this process holds (lock file descriptors stay open for the life of the process).
_CLAIM: dict[str, object] = {"cpus": None, "fds": [], "orig": None}


def _pin_process(cpus: set[int]) -> None:
    """Restrict every thread of this process to ``cpus`` (``sched_setaffinity`` acts on one thread;
    threads created later inherit their creator's set)."""
    tids = [int(t) for t in os.listdir("/proc/self/task")] if os.path.isdir("/proc/self/task") else [0]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
        except (ProcessLookupError, PermissionError):  # a thread that just exited
            pass


def claim_cpus(n: int, lock_dir: str | os.PathLike | None = None) -> list[int] | None:
    """Claim ``n`` of this process's CPUs that no other claiming process on this machine holds, and
    pin the whole process to them; returns the CPUs, or ``None`` (nothing changed) when fewer than
    ``n`` are free or ``n`` is not below the CPUs available.

    Ray's CPU resources are counts, not cores: two 1-CPU trials on a 2-core node would each run XLA's
    thread pool (sized to the process's affinity, i.e. both cores) and contend for both cores. Pinned,
    each gets its own core: two concurrent fast allen_cahn runs marched in 15.4 and 15.8 s pinned
    against 18.1 s each unpinned (``taskset``; ``benchmarks/README.md``). Affinity is how XLA:CPU's
    threads are bounded (jax-ml/jax#1539). A claim is an exclusive
    ``flock`` on ``<lock_dir>/cpu<k>.lock`` (default: a per-user folder in the temp directory); the
    kernel releases it when the process exits, SIGKILL included. A process keeps its claim across
    calls (Ray reuses trial processes); calling again re-pins threads created since. The folder is
    created with mode 0700; one that is not a directory owned by this user with mode 0700 raises
    :class:`PermissionError` naming it (another user could hold every lock in it).
    """
    import fcntl
    import tempfile

    if not hasattr(os, "sched_setaffinity"):  # pragma: no cover - non-Linux
        return None
    if _CLAIM["cpus"] is not None and len(_CLAIM["cpus"]) == n:
        _pin_process(set(_CLAIM["cpus"]))
        return list(_CLAIM["cpus"])
    _release_claim()
    mine = sorted(os.sched_getaffinity(0))
    _CLAIM["orig"] = set(mine)
    if n < 1 or n >= len(mine):
        return None
    folder = Path(lock_dir or Path(tempfile.gettempdir()) / f"rsng-cpus-{os.getuid()}")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    _check_private(folder)
    got: list[int] = []
    fds: list[int] = []
    for cpu in mine:
        fd = os.open(folder / f"cpu{cpu}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        got.append(cpu)
        fds.append(fd)
        if len(got) == n:
            break
    if len(got) < n:
        for fd in fds:
            os.close(fd)  # closing the descriptor drops its lock
        return None
    _CLAIM.update(cpus=got, fds=fds)
    _pin_process(set(got))
    return got


def _check_private(folder: Path) -> None:
    """Refuse a claim folder that another user owns or can write: whoever can write it can hold every
    core's lock (or swap the lock files), and the trials would then run unpinned or wait on them."""
    import stat

    st = os.lstat(folder)
    problems = []
    if not stat.S_ISDIR(st.st_mode):
        problems.append("is not a directory (a symbolic link?)")
    if st.st_uid != os.getuid():
        problems.append(f"is owned by uid {st.st_uid}, not by this user (uid {os.getuid()})")
    if stat.S_IMODE(st.st_mode) & 0o077:
        problems.append(f"has mode {stat.S_IMODE(st.st_mode):04o}, not 0700")
    if problems:
        raise PermissionError(
            f"CPU-claim folder {folder} " + " and ".join(problems) + ": refusing to use it. Remove it "
            "(another user may have created it), or set RSNG_PIN_CPUS=0 to run trials unpinned."
        )


def _release_claim() -> None:
    """Drop this process's claim and give its threads back the CPUs they had before."""
    for fd in _CLAIM["fds"]:
        os.close(fd)
    if _CLAIM["cpus"] is not None and _CLAIM["orig"]:
        _pin_process(_CLAIM["orig"])
    _CLAIM.update(cpus=None, fds=[])


def enable_compilation_cache(cache_dir: str | os.PathLike | None = None) -> Path:
    """Use JAX's persistent compilation cache in ``<cache_dir>/jax`` (default ``$RSNG_CACHE_DIR`` or
    ``~/.cache/rsng``), created private (mode 0700: compiled code is loaded from there).

    Sets the environment (read when JAX initialises) and, if JAX is already imported, its config.
    A repeated run of the same shapes then loads its executables instead of compiling them.
    """
    cache_dir = cache_root(cache_dir)
    jax_cache = cache_dir / "jax"
    jax_cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(jax_cache, 0o700)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(jax_cache)
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ[CACHE_ENV] = str(cache_dir)
    if "jax" in sys.modules:  # JAX read its environment already
        import jax

        jax.config.update("jax_compilation_cache_dir", str(jax_cache))
        jax.config.update(
            "jax_persistent_cache_min_compile_time_secs",
            float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]),
        )
    return jax_cache
