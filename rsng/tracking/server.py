"""Start a local ``mlflow server`` (for tests, and for users who want the UI/REST store).

The server runs in its own process group (``python -m mlflow server``), bound to 127.0.0.1 unless
another host is asked for explicitly, with one worker and MLflow's GenAI job execution (a huey
consumer) switched off: on a small, busy machine that cuts the start from ~15–60 s to ~5–10 s.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ServerHandle", "start_server", "free_port"]

_WILDCARD = ("0.0.0.0", "::", "")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _url_host(host: str) -> str:
    if host in _WILDCARD:
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _tail(path: Path, n: int = 3000) -> str:
    try:
        data = path.read_bytes()[-n:]
    except OSError:
        return ""
    return data.decode(errors="replace")


@dataclass
class ServerHandle:
    """A running ``mlflow server``: ``uri`` (``http://host:port``), ``process``, ``log_path``;
    :meth:`stop` (or leaving the ``with`` block) terminates its process group."""

    uri: str
    host: str
    port: int
    process: subprocess.Popen
    log_path: Path
    started_in_s: float = 0.0
    _log_file: object = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the server's process group, SIGKILL it after ``timeout`` seconds."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout)
        # reap stragglers of the group (uvicorn workers) that outlived the parent
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_server(
    backend_uri: str,
    artifacts_dir: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    workers: int = 1,
    timeout: float = 60.0,
    log_path: str | os.PathLike | None = None,
    job_execution: bool = False,
) -> ServerHandle:
    """Launch ``mlflow server`` and wait until ``/health`` answers; return its handle.

    Args:
      backend_uri: the store, e.g. ``sqlite:////abs/path/mlflow.db`` (created and migrated by the
        server if missing — a fresh database adds a few seconds to the start).
      artifacts_dir: ``--artifacts-destination`` (a folder or a URI); the server proxies artifacts.
      host: interface to bind; 127.0.0.1 by default. Bind ``0.0.0.0`` only deliberately (the server
        has no authentication); ``uri`` then still points at 127.0.0.1.
      port: 0 picks a free port.
      workers: uvicorn workers (1 starts fastest and is plenty for one sweep driver).
      timeout: seconds to wait for ``/health``; on expiry the server is stopped and
        ``TimeoutError`` raised with the end of its log.
      log_path: where the server's stdout/stderr go (default: a temp file, kept for debugging).
      job_execution: keep MLflow's GenAI job runner (off by default; rsng does not use it).

    Raises ``RuntimeError`` (with the log's end) if the server exits during start-up.
    """
    if port == 0:
        port = free_port(host if host not in _WILDCARD else "127.0.0.1")
    if "://" not in str(artifacts_dir):
        Path(artifacts_dir).mkdir(parents=True, exist_ok=True)
    if str(backend_uri).startswith("sqlite:///"):
        Path(str(backend_uri)[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix=f"rsng-mlflow-server-{port}-", suffix=".log")
        os.close(fd)
        log_path = name
    log_path = Path(log_path)
    env = dict(os.environ)
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "true" if job_execution else "false"
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        host,
        "--port",
        str(port),
        "--backend-store-uri",
        str(backend_uri),
        "--artifacts-destination",
        str(artifacts_dir),
        "--workers",
        str(int(workers)),
    ]
    t0 = time.monotonic()
    log = open(log_path, "ab")
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    handle = ServerHandle(
        uri=f"http://{_url_host(host)}:{port}", host=host, port=port, process=proc, log_path=log_path, _log_file=log
    )
    import urllib.error
    import urllib.request

    health = f"{handle.uri}/health"
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"mlflow server exited with code {proc.returncode} during start-up "
                    f"(log {log_path}):\n{_tail(log_path)}"
                )
            try:
                with urllib.request.urlopen(health, timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(
                    f"mlflow server not healthy after {timeout:.0f} s (log {log_path}):\n{_tail(log_path)}"
                )
            time.sleep(0.25)
    except BaseException:
        handle.stop()
        raise
    handle.started_in_s = time.monotonic() - t0
    return handle
