"""CPU claims: each claiming process gets CPUs no other holds, pinned for all its threads, released
when it dies. Real processes, real flock()s, real affinity masks."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

from rsng.core.threads import available_cpus, cpu_kind

CLAIM = textwrap.dedent("""
    import json, os, sys, time
    from rsng.core.threads import claim_cpus
    got = claim_cpus(int(sys.argv[2]), sys.argv[1])
    if got is not None and sys.argv[3] == "jax":  # JAX's thread pools start after the claim
        import jax.numpy as jnp
        (jnp.ones((300, 300)) @ jnp.ones((300, 300))).block_until_ready()
    masks = {t: sorted(os.sched_getaffinity(int(t))) for t in os.listdir("/proc/self/task")}
    print(json.dumps({"got": got, "masks": masks}), flush=True)
    if sys.argv[4] == "hold":
        time.sleep(600)
""")


@pytest.mark.skipif(shutil.which("lscpu") is None, reason="no lscpu to compare with")
def test_cpu_kind_names_this_cpu_as_lscpu_does():
    """Vendor, family and model as util-linux's lscpu reads them; the ISA from the CPU's flags."""
    env = {**os.environ, "LC_ALL": "C"}
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True, env=env).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    if "CPU family" not in fields:  # not an x86 CPU: no family in /proc/cpuinfo either
        pytest.skip(f"lscpu names no CPU family here: {sorted(fields)}")
    vendor, family, model, isa = cpu_kind().split("-")
    assert (vendor, family, model) == (fields["Vendor ID"], fields["CPU family"], fields["Model"])
    flags = fields.get("Flags", "").split()
    assert isa == ("avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "other")


def start(lock_dir, n=1, jax="nojax", hold="hold"):
    p = subprocess.Popen(
        [sys.executable, "-c", CLAIM, str(lock_dir), str(n), jax, hold],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    return p, json.loads(p.stdout.readline())


@pytest.mark.skipif(available_cpus() < 2, reason="needs 2 CPUs to claim one of them")
def test_claims_are_exclusive_pin_every_thread_and_die_with_the_process(tmp_path):
    ncpu = available_cpus()
    holders = []
    try:
        for _ in range(ncpu - 1):  # a claim of all CPUs would change nothing, so ncpu - 1 of 1 each
            p, out = start(tmp_path)
            holders.append(p)
            assert out["got"] is not None and len(out["got"]) == 1
            assert all(mask == out["got"] for mask in out["masks"].values())  # every thread pinned
            holders[-1].claimed = out["got"][0]
        assert len({p.claimed for p in holders}) == ncpu - 1
        # the last free CPU goes to a JAX process; its XLA pool threads (started after) stay on it
        p, out = start(tmp_path, jax="jax")
        holders.append(p)
        free = sorted(set(os.sched_getaffinity(0)) - {h.claimed for h in holders[:-1]})
        assert out["got"] == free
        assert len(out["masks"]) > 3 and all(mask == free for mask in out["masks"].values())
        # nothing left: the next process is not pinned
        _, out = start(tmp_path, hold="exit")
        assert out["got"] is None and all(len(m) == ncpu for m in out["masks"].values())
        # a SIGKILLed holder's CPU is free again
        holders[0].send_signal(signal.SIGKILL)
        holders[0].wait()
        _, out = start(tmp_path, hold="exit")
        assert out["got"] == [holders[0].claimed]
    finally:
        for p in holders:
            p.kill()
            p.wait()


def test_claiming_every_cpu_or_none_changes_nothing(tmp_path):
    for n in (0, available_cpus()):
        _, out = start(tmp_path, n=n, hold="exit")
        assert out["got"] is None
        assert all(len(m) == available_cpus() for m in out["masks"].values())


FLAGS = textwrap.dedent("""
    import json, os, sys
    from rsng.core.threads import configure_threads
    configure_threads(1, override=True)
    import jax, jax.numpy as jnp
    hlo = jax.jit(lambda a, b: a @ b.T).lower(jnp.ones((1000, 25)), jnp.ones((25, 25))).compile().as_text()
    print(json.dumps({"flags": os.environ["XLA_FLAGS"], "ynn": "ynn" in hlo}))
""")


@pytest.mark.parametrize("user_flag,ynn", [("", True), ("--xla_cpu_experimental_ynn_fusion_type=", False)])
def test_xla_flags_are_read(user_flag, ynn):
    """XLA stops reading XLA_FLAGS at a token without "--" (the JAX FAQ's intra_op_parallelism_threads=1
    did that): configure_threads drops such a token, and the flags after it must reach XLA, seen in the
    compiled HLO — XLA's default YNNPACK dot fusions, or none where the user's flag turns them off."""
    env = {**os.environ, "XLA_FLAGS": f"intra_op_parallelism_threads=1 {user_flag}".strip(), "JAX_PLATFORMS": "cpu"}
    out = json.loads(
        subprocess.run(
            [sys.executable, "-c", FLAGS], env=env, capture_output=True, text=True, check=True
        ).stdout.splitlines()[-1]
    )
    assert "intra_op_parallelism_threads" not in out["flags"]
    assert "--xla_cpu_multi_thread_eigen=false" in out["flags"]
    assert out["ynn"] is ynn


def test_xla_gets_the_cpus_and_blas_one_thread(monkeypatch):
    """Several OpenBLAS threads slowed the least squares' LAPACK eigen-decomposition (threads.py)."""
    from rsng.core.threads import _BLAS_VARS, configure_threads

    for var in _BLAS_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XLA_FLAGS", "")
    assert configure_threads(2) == 2
    assert all(os.environ[var] == "1" for var in _BLAS_VARS)
    assert "multi_thread_eigen" not in os.environ["XLA_FLAGS"]  # XLA's pool: the process's CPUs
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    configure_threads(1)
    assert os.environ["OPENBLAS_NUM_THREADS"] == "4"  # a user's setting wins unless override
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_multi_thread_eigen=false"
    configure_threads(1, override=True)
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"


@pytest.mark.skipif(available_cpus() < 2, reason="needs 2 CPUs to claim one of them")
def test_a_claim_folder_another_user_owns_or_can_write_is_refused(tmp_path):
    from rsng.core.threads import claim_cpus

    folder = tmp_path / "claims"
    assert claim_cpus(1, folder) is not None  # created private, claimed
    assert os.stat(folder).st_mode & 0o777 == 0o700
    claim_cpus(0)  # drop the claim (and the pin) again
    os.chmod(folder, 0o777)  # a folder others can write: they could hold every lock
    with pytest.raises(PermissionError, match=r"claims.*mode 0777, not 0700.*RSNG_PIN_CPUS=0"):
        claim_cpus(1, folder)
    os.chmod(folder, 0o700)
    if os.getuid() != 0:
        pytest.skip("chown to another user needs root")
    os.chown(folder, 4242, 4242)  # pre-created by another user
    with pytest.raises(PermissionError, match=r"owned by uid 4242, not by this user"):
        claim_cpus(1, folder)
    link = tmp_path / "link"
    os.chown(folder, os.getuid(), os.getgid())
    link.symlink_to(folder)
    with pytest.raises(PermissionError, match="not a directory"):
        claim_cpus(1, link)
