"""Fixtures of the MLflow tests: a factory of copies of the session's migrated template sqlite store
(``template_db`` in tests/conftest.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

HTTP_ENV = ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR")


@pytest.fixture(autouse=True)
def _mlflow_env(monkeypatch):
    """No telemetry; the HTTP env defaults that the tracker sets process-wide are undone after each test."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    saved = {k: os.environ.pop(k, None) for k in HTTP_ENV}
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def make_db(template_db, tmp_path):
    """``make_db(path=None) -> sqlite URI`` of a fresh copy of the template store."""

    def make(path: Path | None = None) -> str:
        path = Path(path) if path is not None else tmp_path / f"store-{len(list(tmp_path.glob('store-*')))}.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template_db, path)
        return f"sqlite:///{path}"

    return make
