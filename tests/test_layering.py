"""Imports flow one way: the numerical core never pulls in Ray, MLflow or pandas; the result and
tracking layers never start JAX."""

import subprocess
import sys

import pytest


def modules_after(stmt: str) -> set[str]:
    code = f"import sys; {stmt}; print(','.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return set(out.stdout.strip().split(","))


def test_core_imports_no_service_dependency():
    mods = modules_after("import rsng.core.integrate, rsng.core.fit, rsng.core.reference, rsng.cli")
    assert "jax" in mods
    assert not mods & {"ray", "mlflow", "pandas", "pyarrow"}


@pytest.mark.parametrize("module", ["rsng", "rsng.results", "rsng.tracking", "rsng.service.spec"])
def test_light_layers_do_not_start_jax_or_ray(module):
    mods = modules_after(f"import {module}")
    assert not mods & {"ray", "mlflow", "jax"}


def test_threads_can_be_sized_before_jax_loads():
    # entry points call configure_threads / prepare_environment first: that must not import JAX
    assert "jax" not in modules_after("import rsng.core.threads, rsng.core.config, rsng.service.trial")
