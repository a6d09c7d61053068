"""Batched trajectories (several sketch seeds in one vmapped compiled call) against single runs."""

import dataclasses

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
