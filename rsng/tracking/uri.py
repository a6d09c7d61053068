"""Tracking-URI helpers (pure Python; MLflow is not imported)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["default_tracking_uri", "validate_tracking_uri", "ACCEPTED_URIS"]

#: How the accepted tracking URIs are described in error messages.
ACCEPTED_URIS = "sqlite:///PATH, http://HOST:PORT, https://…"


def default_tracking_uri(sweep_dir) -> str:
    """The local store of a sweep: ``sqlite:///<absolute sweep_dir>/mlflow.db``.

    (An absolute path starts with ``/``, so the URI has four slashes, as SQLAlchemy wants.) A sweep
    on an object store (``s3://BUCKET/PREFIX/SWEEP``) keeps its sqlite store on local disk — sqlite
    cannot live in a bucket — in :func:`local_mlflow_dir`; on a cluster, give ``--mlflow-uri`` of a
    tracking server instead (cluster/README.md).
    """
    from rsng.results.fs import storage_path

    path = storage_path(sweep_dir)
    folder = path.resolve() if isinstance(path, Path) else local_mlflow_dir(path)
    return f"sqlite:///{folder / 'mlflow.db'}"


def local_mlflow_dir(sweep_dir) -> Path:
    """Where the default MLflow store of a sweep on an object store lives:
    ``$RSNG_CACHE_DIR/mlflow/<scheme>/<bucket>/<prefix>/<sweep>`` (default ``~/.cache/rsng/…``) on the
    machine of the sweep driver (``rsng mlflow-sync`` finds the same store there)."""
    from rsng.core.files import cache_root

    base = cache_root().resolve()
    return base / "mlflow" / sweep_dir.scheme / sweep_dir.path


def validate_tracking_uri(uri: str) -> str:
    """Check an ``--mlflow-uri`` value and return it (stripped, scheme lower-cased).

    Accepted: ``sqlite:///PATH`` (a file database; ``sqlite://`` in-memory is refused, it would
    vanish with the process), ``http://HOST[:PORT][/prefix]`` and ``https://…`` (a tracking
    server). Anything else raises ``ValueError`` — in particular ``file:``/``./mlruns`` stores,
    which MLflow 3 refuses unless ``MLFLOW_ALLOW_FILE_STORE=true``.
    """
    if not isinstance(uri, str):
        raise ValueError(f"--mlflow-uri: expected a string, got {type(uri).__name__}; accepted: {ACCEPTED_URIS}")
    text = uri.strip()
    scheme, sep, rest = text.partition(":")
    if not sep or not scheme or not scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
        raise ValueError(f"--mlflow-uri: no scheme in {uri!r}; accepted: {ACCEPTED_URIS}")
    scheme = scheme.lower()
    if scheme == "sqlite":
        if not rest.startswith("///") or not rest[3:].strip():
            raise ValueError(
                f"--mlflow-uri: {uri!r} is not a sqlite file URI (sqlite:///relative/path.db or "
                f"sqlite:////absolute/path.db); accepted: {ACCEPTED_URIS}"
            )
        return f"sqlite:{rest}"
    if scheme in ("http", "https"):
        from urllib.parse import urlsplit

        parts = urlsplit(f"{scheme}:{rest}")
        try:
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise ValueError(f"--mlflow-uri: bad port in {uri!r}; accepted: {ACCEPTED_URIS}") from None
        if not rest.startswith("//") or not parts.hostname:
            raise ValueError(f"--mlflow-uri: no host in {uri!r}; accepted: {ACCEPTED_URIS}")
        return f"{scheme}:{rest}"
    raise ValueError(f"--mlflow-uri: unsupported scheme {scheme!r}; accepted: {ACCEPTED_URIS}")
