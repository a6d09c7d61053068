"""The frontier searcher of ``--search pareto`` (:class:`rsng.service.search.FrontierPolicy`) on its own:
pure Python and numpy over a real sweep's lattice (no Ray); outcomes come from a known cost and error
model, so what the policy must do is known."""

from __future__ import annotations

import math

import pytest

from rsng.service.search import FrontierPolicy, Outcome, SearchOptions, plan_search
from rsng.service.spec import SweepSpec

S = [10, 20, 40, 80, 160]


def lattice():
    spec = SweepSpec(
        "policy",
        grid={"s": S, "sampler": ["uniform", "column_norm"], "depth": [3, 4], "seed": [0, 1]},
        fixed={"problem": "heat", "preset": "smoke"},
        skip_invalid_s=True,
    )
    plan = plan_search(spec, SearchOptions(budget=1000))
    return plan, plan.studies["heat"]


def values(c):
    return {a: (S[c.params["s"]] if a == "s" else c.params[a]) for a in c.params} | {"depth": [3, 4][c.params["depth"]]}


def model(c):
    """cost ∝ s·depth (column_norm 1.5× dearer), error ∝ 1/s² (column_norm 10× better)."""
    v = values(c)
    cost = 1e-3 * v["s"] * v["depth"] * (1.5 if v["sampler"] == "column_norm" else 1.0)
    err = (1.0 / v["s"] ** 2) * (0.1 if v["sampler"] == "column_norm" else 1.0) * (1.2 if v["depth"] == 4 else 1.0)
    return Outcome("ok", err, cost, 2 * cost)


def run(policy, outcomes, n):
    known, order = {}, []
    for _ in range(n):
        c = policy.next(known, set())
        if c is None:
            break
        known[c.key] = outcomes(c)
        order.append(c)
    return known, order


def test_first_suggestion_is_the_cheapest_by_the_prior_and_every_configuration_comes_once():
    plan, lat = lattice()
    policy = FrontierPolicy(plan, lat, seed=3)
    first = policy.next({}, set())
    assert values(first)["s"] == S[0] and values(first)["depth"] == 3  # work grows with s and depth a priori
    known, order = run(policy, model, len(lat) + 5)
    assert len(order) == len(lat) == len({c.key for c in order})  # the whole lattice, each once
    assert policy.next(known, set()) is None


def test_running_configurations_are_not_suggested_again():
    plan, lat = lattice()
    policy = FrontierPolicy(plan, lat)
    busy = set()
    for _ in range(len(lat)):
        c = policy.next({}, busy)
        assert c is not None and c.key not in busy
        busy.add(c.key)
    assert policy.next({}, busy) is None


def test_the_cost_model_learns_the_measured_slopes():
    plan, lat = lattice()
    policy = FrontierPolicy(plan, lat)
    known = {c.key: model(c) for c in lat}
    a, beta = policy.cost_model(known)
    for c in lat:  # log cost = log 1e-3 + log s + log depth + log 1.5·[column_norm]: recovered
        assert math.isclose(a + float(policy.X[c.key] @ beta), math.log(model(c).cost), abs_tol=0.05)


def test_it_follows_the_front_and_leaves_configurations_far_from_it_for_last():
    """The front of this model is column_norm at depth 3, every s (and the cheapest point); the policy
    must find all of it before it runs any configuration that is neither on it nor next to it."""
    plan, lat = lattice()
    policy = FrontierPolicy(plan, lat)
    front = {c.key for c in lat if values(c)["sampler"] == "column_norm" and values(c)["depth"] == 3}
    front.add(min(lat, key=lambda c: model(c).cost).key)
    near = front | {n for k in front for n in policy.neighbours[k]}
    known, order = run(policy, model, len(lat))
    keys = [c.key for c in order]
    far = [k for k in keys if k not in near]
    assert far and min(keys.index(k) for k in far) > max(keys.index(k) for k in front), [c.label for c in order]
    assert set(policy.front(known)) == front


@pytest.mark.parametrize("status", ["stopped", "failed"])
def test_stopped_and_failed_configurations_are_never_front_points(status):
    plan, lat = lattice()
    policy = FrontierPolicy(plan, lat)
    cheap = min(lat, key=lambda c: model(c).cost)
    out = model(cheap)
    known = {cheap.key: Outcome(status, out.error / 100, out.cost, out.wall_s)}
    assert policy.front(known) == []
    assert policy.next(known, set()).key != cheap.key


def test_a_configuration_predicted_not_to_fit_the_budget_left_is_not_started():
    plan, lat = lattice()
    policy = FrontierPolicy(plan, lat)
    assert policy.predicted_cost(lat[0].key, {}) is None
    assert policy.next({}, set(), max_cost=1e-9) is not None  # no cost known yet: nothing to predict with
    known = {c.key: model(c) for c in lat if values(c)["s"] <= 20}
    pred = {c.key: policy.predicted_cost(c.key, known) for c in lat if c.key not in known}
    for c in lat:  # costs of the seeds together, from the fitted model
        if c.key in pred:
            assert math.isclose(pred[c.key], model(c).cost * len(c.trials), rel_tol=0.1)
    cap = sorted(pred.values())[2]
    got = policy.next(known, set(), max_cost=cap)
    assert got is not None and pred[got.key] <= cap
    assert policy.next(known, set(), max_cost=min(pred.values()) / 2) is None


def test_neighbours_differ_in_one_axis_by_one_step_or_any_other_category():
    """The indexed neighbour table equals the definition checked pair by pair over the lattice."""
    plan, lat = lattice()
    policy = FrontierPolicy(plan, lat)
    numeric = {"s", "depth"}
    for c in lat:
        expected = set()
        for d in lat:
            diff = [a for a in plan.axes if c.params[a] != d.params[a]]
            if len(diff) == 1 and (diff[0] not in numeric or abs(c.params[diff[0]] - d.params[diff[0]]) == 1):
                expected.add(d.key)
        assert set(policy.neighbours[c.key]) == expected and len(policy.neighbours[c.key]) == len(expected)
    # s = 10, uniform, depth 3: s = 20, column_norm or depth 4 (one axis changed each) — and nothing else
    corner = next(c for c in lat if values(c) == {"s": 10, "sampler": "uniform", "depth": 3})
    by_key = {c.key: values(c) for c in lat}
    got = sorted((by_key[k]["s"], by_key[k]["sampler"], by_key[k]["depth"]) for k in policy.neighbours[corner.key])
    assert got == [(10, "column_norm", 3), (10, "uniform", 4), (20, "uniform", 3)]
