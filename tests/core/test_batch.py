"""Batched trajectories (several sketch seeds in one vmapped compiled call) against single runs."""

import csv
import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_integrate import SMALL, _blowup_problem, exact_reference, random_theta

from rsng.core.config import resolve
from rsng.core.integrate import Trajectory, TrajectoryBatch


def _batch(cfgs, **kw):
    return TrajectoryBatch(cfgs, theta0=random_theta(cfgs[0]), reference=exact_reference(cfgs[0]), **kw)


@pytest.mark.parametrize("sampler", ["uniform", "gaussian"])
def test_batch_matches_single_runs(sampler):
    cfgs = [resolve(None, **SMALL, s=30, sampler=sampler, seed=seed) for seed in (0, 1, 5)]
    results = _batch(cfgs, chunk=6).run()
    for cfg, res in zip(cfgs, results):
        single = Trajectory(cfg, theta0=random_theta(cfg), reference=exact_reference(cfg), chunk=6).run()
        assert res.config.seed == cfg.seed and res.batch_size == 3 and res.status == "ok"
        # vmapped kernels may sum in another order: equal to float32 rounding, not bit for bit
        np.testing.assert_allclose(res.theta, single.theta, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(res.rel_l2_t, single.rel_l2_t, rtol=1e-3, atol=1e-7)
    assert not np.allclose(results[0].theta, results[1].theta)  # other seed, other index sets


@pytest.mark.parametrize("sampler", ["uniform", "gaussian"])
def test_a_batch_of_one_is_the_single_trajectory_bit_for_bit(sampler):
    """A batch of one member runs the single trajectory's compiled chunk (vmapped over one member, XLA's
    code was 1.8–2.0× slower per step on a CPU, benchmarks/batch.py, and rounded otherwise)."""
    cfg = resolve(None, **SMALL, s=30, sampler=sampler, seed=4)
    (res,) = _batch([cfg], chunk=6).run()
    single = Trajectory(cfg, theta0=random_theta(cfg), reference=exact_reference(cfg), chunk=6).run()
    assert res.batch_size == 1 and res.status == "ok"
    np.testing.assert_array_equal(res.theta, single.theta)
    np.testing.assert_array_equal(res.rel_l2_t, single.rel_l2_t)
    assert res.rel_l2 == single.rel_l2


def test_batch_resumes_from_member_states_bit_identically():
    cfgs = [resolve(None, **SMALL, s=30, seed=seed) for seed in (2, 3)]
    full = _batch(cfgs, chunk=4).run()
    b1 = _batch(cfgs, chunk=4)
    b1.advance(9)
    states = [m.state() for m in b1.members]
    b2 = _batch(cfgs, chunk=4)
    for m, st in zip(b2.members, states):
        m.load_state(st)
    resumed = b2.run()
    for a, b in zip(full, resumed):
        np.testing.assert_array_equal(a.theta, b.theta)
        assert a.rel_l2 == b.rel_l2


def test_diverging_members_are_reported_each_at_its_own_step():
    base = resolve(None, problem=_blowup_problem(), depth=3, width=8, s=20, dt=1e-2)
    theta0 = random_theta(base).copy()
    theta0[-1] += 2.0  # u(0) ≈ 2: blow-up near t = 0.12 for every seed
    cfgs = [dataclasses.replace(base, seed=s) for s in (0, 1)]
    results = TrajectoryBatch(cfgs, theta0=theta0, reference=exact_reference(base), chunk=10).run()
    for cfg, r in zip(cfgs, results):
        single = Trajectory(cfg, theta0=theta0, reference=exact_reference(base), chunk=10).run()
        assert r.status == single.status == "diverged"
        assert r.diverged_step == single.diverged_step and r.steps == r.diverged_step - 1
        assert len(r.rel_l2_t) == r.steps + 1 and np.all(np.isfinite(r.rel_l2_t))


def test_batch_refuses_configs_that_differ_beyond_seed():
    with pytest.raises(ValueError, match="differ only in seed"):
        TrajectoryBatch([resolve(None, **SMALL, s=30), resolve(None, **SMALL, s=31, seed=1)])
    with pytest.raises(ValueError, match="distinct"):
        TrajectoryBatch([resolve(None, **SMALL, s=30), resolve(None, **SMALL, s=30)])


def test_batch_resumes_members_saved_at_different_chunks():
    """A batch interrupted between two members' state saves: one member is a chunk ahead."""
    cfgs = [resolve(None, **SMALL, s=30, seed=seed) for seed in (2, 3)]
    full = _batch(cfgs, chunk=4).run()
    b1 = _batch(cfgs, chunk=4)
    b1.advance(4)
    early = b1.members[0].state()
    b1.advance(4)
    b2 = _batch(cfgs, chunk=4)
    b2.members[0].load_state(early)  # k = 4
    b2.members[1].load_state(b1.members[1].state())  # k = 8
    resumed = b2.run()
    for a, b in zip(full, resumed):
        np.testing.assert_array_equal(a.theta, b.theta)
        assert a.rel_l2 == b.rel_l2


BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "batch.py"


def test_batch_benchmark_prints_and_writes_a_row_per_batch_size(tmp_path):
    """benchmarks/batch.py in a process of its own (it sizes the threads of the process it runs in)."""
    argv = [sys.executable, str(BENCHMARK), "--preset", "smoke", "--problems", "allen_cahn", "--out", str(tmp_path)]
    bad = subprocess.run([*argv, "--sizes", "0", "2"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--sizes must be ≥ 1, got 0 2" in bad.stderr and not list(tmp_path.iterdir())
    r = subprocess.run(
        [*argv, "--sizes", "2", "--steps", "10", "--repeats", "2"], capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stderr[-3000:]
    (csv_file,) = tmp_path.glob("batch-t1-*.csv")
    rows = list(csv.DictReader(csv_file.open()))
    assert [row["batch"] for row in rows] == ["single", "2"] and all(row["steps"] == "10" for row in rows)
    single, pair = (float(row["ms_per_step"]) for row in rows)
    assert single > 0 and pair > 0 and float(rows[0]["vs_single"]) == 1.0
    assert float(rows[1]["ms_per_seed_step"]) == pytest.approx(pair / 2)
    assert float(rows[1]["vs_single"]) == pytest.approx(pair / 2 / single)
    assert all(len(row["rounds_s"].split()) == 2 for row in rows)
    assert "allen_cahn" in r.stdout and "vs single" in r.stdout
