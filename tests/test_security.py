"""Security properties of SECURITY.md that a test can hold the code to: no unpickling of on-disk
data anywhere in the package, state files refuse pickles, the JAX compilation cache is private."""

from __future__ import annotations

import ast
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rsng"

#: modules whose loaders execute code from the data they read
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "cloudpickle", "dill", "joblib", "shelve", "marshal"}
#: calls that unpickle (or evaluate) what they read, whatever object they are called on
#: (``DataFrame.eval`` / ``.query`` evaluate a string: rsng parses its expression options itself)
UNSAFE_CALLS = {"read_pickle", "loads_pickle", "unsafe_load", "full_load", "eval", "query"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def unsafe_uses(source: str, filename: str = "<src>") -> list[str]:
    """Every place in ``source`` that could unpickle on-disk data (or run code from a string)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{where} import {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in UNSAFE_MODULES:
            found.append(f"{where} from {node.module} import …")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            last = name.rsplit(".", 1)[-1]
            if name in ("eval", "exec") or last in UNSAFE_CALLS:
                found.append(f"{where} {name}(…)")
            elif name in ("torch.load", "yaml.load"):
                found.append(f"{where} {name}(…)")
            elif name in ("np.load", "numpy.load", "jnp.load"):
                kw = {k.arg: k.value for k in node.keywords}
                v = kw.get("allow_pickle")
                if not (isinstance(v, ast.Constant) and v.value is False):
                    found.append(f"{where} {name}(…) without allow_pickle=False")
    return found


def test_the_scanner_finds_what_it_looks_for():
    bad = (
        "import pickle\nimport numpy as np\nfrom cloudpickle import loads\nnp.load(p)\n"
        "np.load(p, allow_pickle=True)\nimport pandas as pd\npd.read_pickle(p)\neval('1')\n"
        "df.eval(expr)\ndf.query(expr)\n"
    )
    assert len(unsafe_uses(bad)) == 8
    assert unsafe_uses("import numpy as np\nnp.load(p, allow_pickle=False)\n") == []


def test_no_unpickling_of_on_disk_data_in_the_package():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20
    found = [u for f in files for u in unsafe_uses(f.read_text(), str(f.relative_to(ROOT)))]
    assert found == []
    # and the places that do read arrays say so explicitly
    loads = [f for f in files if "np.load(" in f.read_text()]
    assert {f.name for f in loads} >= {"trial.py", "fit.py", "reference.py"}


def test_a_state_file_holding_a_pickle_is_refused(tmp_path):
    from rsng.service.trial import _load_state, _save_state

    good = {"theta": np.arange(3, dtype=np.float32), "k": np.asarray(5)}
    _save_state(tmp_path / "ok.npz", good)
    assert int(_load_state(tmp_path / "ok.npz")["k"]) == 5
    np.savez(tmp_path / "evil.npz", theta=np.array([{"code": "anything"}], dtype=object), k=np.asarray(5))
    assert _load_state(tmp_path / "evil.npz") is None  # an object array needs unpickling: not loaded


def test_a_theta0_file_holding_a_pickle_is_refused_unopened(tmp_path):
    """`rsng solve --theta0` (and ``rsng.solve(theta0=…)``) reads arrays only: a pickle whose loading
    would create a file is refused, and the file is never created."""
    import pickle

    from rsng.cli import main

    marker = tmp_path / "unpickled"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    for name, payload in (("theta.pkl", Evil()), ("theta.npy", Evil())):
        (tmp_path / name).write_bytes(pickle.dumps(payload))
        assert main(["solve", "--problem", "heat", "--preset", "smoke", "--theta0", str(tmp_path / name)]) == 2
    np.savez(tmp_path / "theta.npz", theta=np.array([Evil()], dtype=object))
    assert main(["solve", "--problem", "heat", "--preset", "smoke", "--theta0", str(tmp_path / "theta.npz")]) == 2
    assert not marker.exists()


@pytest.mark.parametrize("pre_existing", [False, True])
def test_compilation_cache_dir_is_private(tmp_path, pre_existing):
    cache = tmp_path / "cache"
    if pre_existing:
        (cache / "jax").mkdir(parents=True)
        os.chmod(cache / "jax", 0o777)
    code = (
        "import os, sys; os.umask(0o022); from rsng.service.trial import prepare_environment; "
        "prepare_environment(1, 0, sys.argv[1]); print(os.environ['JAX_COMPILATION_CACHE_DIR'])"
    )
    r = subprocess.run([sys.executable, "-c", code, str(cache)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(cache / "jax")
    assert stat.S_IMODE((cache / "jax").stat().st_mode) == 0o700
