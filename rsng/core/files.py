"""Local files: the cache folder and atomic writes (standard library only, no JAX).

Every layer writes its local files through :func:`atomic_write` (the result store adds object
stores on top, :mod:`rsng.results.store`) and finds the cache through :func:`cache_root`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["CACHE_ENV", "cache_root", "atomic_write", "fsync_dir"]

#: The environment variable naming the cache folder (θ(0) fits, reference solutions, JAX's
#: compilation cache, the local MLflow store of an object-store sweep).
CACHE_ENV = "RSNG_CACHE_DIR"
_DEFAULT_CACHE = "~/.cache/rsng"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``cache_dir`` when given, else ``$RSNG_CACHE_DIR``, else ``~/.cache/rsng``
    (``~`` expanded; the folder is not created)."""
    return Path(cache_dir or os.environ.get(CACHE_ENV) or _DEFAULT_CACHE).expanduser()


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename in it) to disk, where the platform allows."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object], *, durable: bool = True) -> Path:
    """Call ``write(fileobj)`` on a hidden temp file next to ``path``, then rename it over ``path``:
    a reader sees the old file or the complete new one, never a part. With ``durable`` the file and
    its folder are ``fsync``-ed as well (a crash of the machine keeps it); a file that is cheap to
    recompute may skip that. The temp file is removed when ``write`` raises. Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)
    return path
