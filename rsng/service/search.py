"""Pareto search: the accuracy-versus-cost front of a sweep's grid with a fraction of the grid's compute.

A sweep script's grid defines a *lattice* of configurations (every grid point but the seed); instead
of running all of them (Tune's grid search), ``--search pareto`` lets a multi-objective searcher pick
configurations one after another, both objectives minimised: the error (mean ``rel_l2`` over the
configuration's seeds) and the cost (mean marching time ``wall_s`` per trajectory), each as log10.
Design and measurements: docs/search.md, benchmarks/README.md.

* Searchers, all inside one Tune ``Searcher`` (``LatticeSearcher``: never runs a configuration twice,
  learns outcomes from Parquet, stops suggesting when the budget is spent): ``--search pareto``,
  :class:`FrontierPolicy` — the cheapest-predicted unevaluated neighbour of the current front next,
  costs from a log-linear model fitted as the search goes; ``--search tpe``, Optuna's multi-objective
  TPE sampler through ``ray.tune.search.optuna.OptunaSearch`` (metric and mode lists; a repeated
  suggestion is answered from what is known); ``--search random``, Optuna's random sampler (the
  baseline of benchmarks/search.py).
* Axes: a numeric grid axis (s, depth, width, n, dt, rcond, …; ``dense`` counts as the largest s) is
  an ordered integer axis over its sorted grid values — log-spaced values make it a log-scaled axis —,
  a string axis (sampler, …) a categorical one. ``problem`` is never searched: each problem gets its
  own study (a front is per problem) and an equal share of the budget. ``seed`` is not an axis: every
  configuration runs all the grid's seeds, marched together in one trial (one vmapped call).
* Early stopping (:class:`FrontStopper`, a Tune scheduler): after each reported chunk, a trial whose
  mean running space-time error is above the error of a finished front point whose cost is at most
  the trial's projected cost (time so far + the remaining steps at the last chunk's pace) is stopped — it cannot reach the front. Its
  trajectories are kept with status ``stopped`` (their rows written by the driver from the rows the
  trial reported with the chunk), excluded from fronts and recommendations and counted in reports.
* Budget: ``--budget N`` trajectories (whole configurations: the last one may pass N by its seeds)
  or ``--budget-hours H`` of solver time (the sum of the trajectories' ``wall_s``; trials running when
  it is spent finish).
* Resume: nothing of the searcher is pickled; a resumed search replays every finished configuration
  from Parquet into the study and runs the configurations that were interrupted first (they continue
  from their saved states), so no finished trajectory runs again.

Only the driver imports Ray, Optuna and this module's Tune classes; the trial side is
:func:`search_trainable`, which runs one configuration's seeds with :func:`rsng.service.trial.run_trajectory`.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsng.service.spec import SweepSpec, SweepSpecError, TrialSpec

__all__ = ["SearchOptions", "SEARCHES", "SearchPlan", "Configuration", "plan_search", "run_search", "search_trainable"]

#: The searchers ``--search`` accepts.
SEARCHES = {
    "pareto": "grow the front from its cheap end: the cheapest-predicted neighbour of the front next (FrontierPolicy)",
    "tpe": "Optuna's multi-objective TPE sampler (error and cost both minimised)",
    "random": "Optuna's random sampler over the same lattice (a baseline)",
}
#: No trial is stopped before this fraction of its steps (its running error is still the fit's).
GRACE = 0.2
#: Reports per trajectory in a search (the chunk of steps is sized to give about this many).
REPORTS = 10
#: Random configurations TPE draws before it models the front.
STARTUP_TRIALS = 4


@dataclass(frozen=True)
class SearchOptions:
    """A search over a sweep's lattice (``--search``, ``--budget``, ``--budget-hours``, ``--search-axes``,
    ``--no-early-stop``, ``--search-seed``)."""

    method: str = "pareto"
    budget: int | None = None  # trajectories
    budget_hours: float | None = None  # solver time (sum of wall_s)
    axes: tuple[str, ...] | None = None  # None: every grid axis with more than one value (not problem, seed)
    early_stop: bool = True
    seed: int = 0


@dataclass
class Configuration:
    """One point of the lattice: its key, the searcher's parameters, its seeds' trajectories."""

    key: str
    problem: str
    params: dict[str, Any]
    trials: list[TrialSpec]
    label: str = ""  # the axes' values, e.g. "s=50 sampler=uniform"


@dataclass
class SearchPlan:
    """Per problem: the search space (Optuna distributions) and the lattice's configurations."""

    axes: list[str]
    held: dict[str, Any]  # grid axes not searched, held at their first grid value
    values: dict[str, list[Any]]  # axis -> ordered values (index = the searcher's parameter)
    studies: dict[str, list[Configuration]] = field(default_factory=dict)  # problem -> lattice

    def distributions(self) -> dict[str, Any]:
        import optuna

        out = {}
        for a in self.axes:
            vals = self.values[a]
            if _numeric(vals):
                out[a] = optuna.distributions.IntDistribution(0, len(vals) - 1)
            else:
                out[a] = optuna.distributions.CategoricalDistribution([str(v) for v in vals])
        return out


def _numeric(vals: Sequence[Any]) -> bool:
    return all((isinstance(v, (int, float)) and not isinstance(v, bool)) or v == "dense" for v in vals)


def _order(vals: Sequence[Any]) -> list[Any]:
    if _numeric(vals):  # ascending, dense (s = p) last
        return sorted(vals, key=lambda v: (v == "dense", v if v != "dense" else 0))
    return list(vals)


def validate_options(sopts: SearchOptions) -> None:
    if sopts.method not in SEARCHES:
        raise SweepSpecError("--search", f"unknown searcher {sopts.method!r}; accepted: {', '.join(SEARCHES)}")
    if (sopts.budget is None) == (sopts.budget_hours is None):
        raise SweepSpecError(
            "--budget", "give exactly one of --budget N (trajectories) or --budget-hours H with --search"
        )
    if sopts.budget is not None and (
        isinstance(sopts.budget, bool) or not isinstance(sopts.budget, int) or sopts.budget < 1
    ):
        raise SweepSpecError("--budget", f"must be an integer ≥ 1 (trajectories), got {sopts.budget!r}")
    if sopts.budget_hours is not None and not (
        isinstance(sopts.budget_hours, (int, float)) and math.isfinite(sopts.budget_hours) and sopts.budget_hours > 0
    ):
        raise SweepSpecError("--budget-hours", f"must be a finite number > 0, got {sopts.budget_hours!r}")
    if isinstance(sopts.seed, bool) or not isinstance(sopts.seed, int) or sopts.seed < 0:
        raise SweepSpecError("--search-seed", f"must be an integer ≥ 0, got {sopts.seed!r}")


def plan_search(spec: SweepSpec, sopts: SearchOptions, *, confirm_large: bool = False) -> SearchPlan:
    """The lattice of ``spec`` and the search space; raises :class:`SweepSpecError` naming the option."""
    validate_options(sopts)
    spec.validate_shape()
    grid = {k: list(v) for k, v in spec.grid.items()}
    candidates = [k for k in grid if k not in ("seed", "problem")]
    if sopts.axes is not None:
        if not sopts.axes:
            raise SweepSpecError("--search-axes", "is empty; name at least one grid axis")
        for a in sopts.axes:
            if a not in candidates:
                why = " (each problem is searched on its own)" if a == "problem" else ""
                why = " (every configuration runs all the grid's seeds)" if a == "seed" else why
                raise SweepSpecError(
                    "--search-axes",
                    f"{a!r} is not a searchable axis of {spec.name}{why}; its axes: {', '.join(candidates) or 'none'}",
                )
        axes = list(dict.fromkeys(sopts.axes))
    else:
        axes = [k for k in candidates if len(grid[k]) > 1]
    if not axes:
        raise SweepSpecError("--search", f"{spec.name} has no grid axis to search (its grid: {', '.join(grid)})")
    held = {k: grid[k][0] for k in candidates if k not in axes}
    values = {a: _order(grid[a]) for a in axes}
    problems = grid.get("problem") or [spec.fixed.get("problem")]
    seeds = grid.get("seed", [spec.fixed.get("seed", 0)])
    plan = SearchPlan(axes, held, values)
    fixed = {k: v for k, v in spec.fixed.items() if k != "seed"}
    n = 0
    for problem in problems:
        lattice = []
        for combo in itertools.product(*(values[a] for a in axes)):
            point = {**held, **dict(zip(axes, combo))}
            if "problem" in grid:
                point["problem"] = problem
            sub = SweepSpec(spec.name, {"seed": list(seeds)}, {**fixed, **point}, skip_invalid_s=spec.skip_invalid_s)
            try:
                trials = sub.expand(confirm_large=True)
            except SweepSpecError as e:
                if spec.skip_invalid_s and e.key in ("grid", "s"):
                    continue  # s > p at this architecture: not in the lattice
                raise
            params = {a: (values[a].index(v) if _numeric(values[a]) else str(v)) for a, v in zip(axes, combo)}
            label = " ".join(f"{a}={v}" for a, v in zip(axes, combo))
            lattice.append(Configuration(_canon(params), str(problem), params, trials, label))
            n += len(trials)
        if not lattice:
            raise SweepSpecError("grid", f"no valid configuration for problem {problem!r}")
        plan.studies[str(problem)] = lattice
    from rsng.service.spec import MAX_TRIALS_WITHOUT_CONFIRMATION

    if n > MAX_TRIALS_WITHOUT_CONFIRMATION and not confirm_large:
        raise SweepSpecError("grid", f"{n} trajectories exceed {MAX_TRIALS_WITHOUT_CONFIRMATION}; pass --yes")
    return plan


def _canon(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), sort_keys=True, default=str)


# --- outcomes from Parquet ---------------------------------------------------------------------------


@dataclass
class Outcome:
    """A configuration's result as the searcher sees it: ``status`` ``ok`` (every seed ok), ``stopped``
    (stopped early) or ``failed`` (a seed diverged or failed); error and cost per trajectory (means;
    a stopped one's cost is projected to the whole run and its error is the last step's)."""

    status: str
    error: float
    cost: float
    wall_s: float  # solver time spent (sum over its trajectories)


def _read_rows(sweep_dir, trials: list[TrialSpec]) -> list[dict] | None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rsng.results import safe_name

    rows = []
    for t in trials:
        path = sweep_dir / "trajectories" / f"{safe_name(t.trial_id)}.parquet"
        if not path.exists():
            return None
        if isinstance(path, Path):
            table = pq.read_table(path)
        else:
            table = pq.read_table(pa.BufferReader(path.read_bytes()))
        rows.append(table.to_pylist()[0])
    return rows


def outcome(sweep_dir, trials: list[TrialSpec]) -> Outcome | None:
    """The outcome of a configuration whose trajectories all have rows (``None`` otherwise)."""
    rows = _read_rows(sweep_dir, trials)
    if rows is None:
        return None
    wall = sum(float(r["wall_s"] or 0.0) for r in rows)
    st = {r["status"] for r in rows}
    if st == {"ok"}:
        err = sum(r["rel_l2"] for r in rows) / len(rows)
        return Outcome("ok", err, wall / len(rows), wall)
    if "stopped" in st and st <= {"ok", "stopped"}:
        errs = [r["rel_l2"] if r["status"] == "ok" else r["rel_l2_final"] for r in rows]
        total = [t.config.steps for t in trials]
        proj = [float(r["wall_s"]) * k / max(1, int(r["steps"])) for r, k in zip(rows, total)]
        return Outcome("stopped", sum(errs) / len(errs), sum(proj) / len(proj), wall)
    return Outcome("failed", math.nan, math.nan, wall)


class Front:
    """The finished configurations on the front so far (cost, error per trajectory), for early stopping."""

    def __init__(self) -> None:
        self.points: list[tuple[float, float]] = []

    def add(self, cost: float, error: float) -> None:
        if math.isfinite(cost) and math.isfinite(error):
            self.points.append((cost, error))

    def best_error(self, max_cost: float) -> float | None:
        """The lowest error among the points of cost ≤ ``max_cost`` (``None``: none)."""
        errs = [e for c, e in self.points if c <= max_cost]
        return min(errs) if errs else None


# --- the lattice searcher of ``--search pareto`` ----------------------------------------------------------

#: Prior slope of log cost against log value, per run field used as a numeric axis (before any
#: configuration has run, and as the ridge's anchor after): work grows with these and falls with δt.
COST_PRIOR = {"s": 1.0, "n": 1.0, "width": 1.0, "depth": 1.0, "t_end": 1.0, "dt": -1.0}
#: Weight of the prior against the measured costs in the cost model (one configuration counts 1).
PRIOR_WEIGHT = 1.0


class FrontierPolicy:
    """The searcher of ``--search pareto``: grow the front outward from its cheap end, on the lattice.

    The next configuration is the one predicted cheapest among the unevaluated *neighbours* of the
    current front (configurations that differ from a front point in one axis: one step along a numeric
    axis, any other value of a categorical one); when none is left, among the neighbours of any
    evaluated configuration; then among all. The cost prediction is a log-linear model — log cost
    against log value of each numeric axis and one-hot categorical values — fitted to the measured
    costs (a stopped configuration's projected one) by ridge regression anchored at
    :data:`COST_PRIOR`. So cheap configurations near the front run first, expensive ones only where
    the front leads to them, and a dominated one is stopped early by :class:`FrontStopper`. Ties go
    by a permutation drawn from the search seed. Pure Python and numpy: tested without Ray.
    """

    def __init__(self, plan: SearchPlan, lattice: list[Configuration], seed: int = 0):
        import random

        import numpy as np

        self.lattice = lattice
        self.index = {c.key: i for i, c in enumerate(lattice)}
        order = list(range(len(lattice)))
        random.Random(seed).shuffle(order)
        self.tie = {lattice[i].key: rank for rank, i in enumerate(order)}
        cols, prior = [], []
        for a in plan.axes:
            vals = plan.values[a]
            if _numeric(vals):
                nums = [float(v) for v in vals if v != "dense"]
                top = max(nums) if nums else 1.0
                logs = all(v > 0 for v in nums)
                cols.append(
                    (
                        a,
                        "num",
                        [
                            (math.log(2 * top) if logs else len(vals))
                            if v == "dense"
                            else (math.log(float(v)) if logs else float(i))
                            for i, v in enumerate(vals)
                        ],
                    )
                )
                prior.append(COST_PRIOR.get(a, 0.0) if logs else 0.0)
            else:
                for v in vals[1:]:
                    cols.append((a, "cat", str(v)))
                    prior.append(0.0)
        self.prior = np.asarray(prior)

        def features(c: Configuration) -> list[float]:
            out = []
            for a, kind, spec in cols:
                p = c.params[a]
                out.append(spec[p] if kind == "num" else float(str(p) == spec))
            return out

        self.X = {c.key: np.asarray(features(c)) for c in lattice}
        # neighbours by lookup, O(lattice × Σ axis sizes): one step along a numeric axis (params are
        # value indices), any other value of a categorical one (params are the values' strings)
        axes = plan.axes
        alternatives = {a: (None if _numeric(plan.values[a]) else [str(v) for v in plan.values[a]]) for a in axes}
        at = {tuple(c.params[a] for a in axes): c.key for c in lattice}
        self.neighbours: dict[str, list[str]] = {}
        for c in lattice:
            base = [c.params[a] for a in axes]
            near = []
            for j, a in enumerate(axes):
                options = (base[j] - 1, base[j] + 1) if alternatives[a] is None else alternatives[a]
                for v in options:
                    key = at.get((*base[:j], v, *base[j + 1 :])) if v != base[j] else None
                    if key is not None:
                        near.append(key)
            self.neighbours[c.key] = near

    def cost_model(self, known: Mapping[str, Outcome]):
        """``(intercept, slopes)`` of log cost, ridge-anchored at the prior; intercept 0 before any data."""
        import numpy as np

        obs = [
            (self.X[k], math.log(o.cost))
            for k, o in known.items()
            if o.status in ("ok", "stopped") and math.isfinite(o.cost) and o.cost > 0
        ]
        if not obs:
            return 0.0, self.prior
        X = np.stack([x for x, _ in obs])
        y = np.asarray([v for _, v in obs])
        m = X.shape[1]
        # minimise ‖y − a − Xβ‖² + w‖β − β0‖²: least squares on [1 X; 0 √w I] against [y; √w β0]
        A = np.block([[np.ones((len(obs), 1)), X], [np.zeros((m, 1)), math.sqrt(PRIOR_WEIGHT) * np.eye(m)]])
        b = np.concatenate([y, math.sqrt(PRIOR_WEIGHT) * self.prior])
        coef = np.linalg.lstsq(A, b, rcond=None)[0]
        return float(coef[0]), coef[1:]

    def front(self, known: Mapping[str, Outcome]) -> list[str]:
        """Keys of the evaluated ``ok`` configurations no other one beats in both cost and error."""
        pts = sorted((o.cost, o.error, k) for k, o in known.items() if o.status == "ok")
        out, best = [], math.inf
        for _, e, k in pts:
            if e < best:
                out.append(k)
                best = e
        return out

    def predicted_cost(self, key: str, known: Mapping[str, Outcome]) -> float | None:
        """Predicted solver time of a configuration's seeds together (``None`` before any cost is known)."""
        if not any(o.status in ("ok", "stopped") and o.cost > 0 for o in known.values()):
            return None
        a, beta = self.cost_model(known)
        return math.exp(a + float(self.X[key] @ beta)) * len(self.lattice[self.index[key]].trials)

    def next(self, known: Mapping[str, Outcome], busy: set[str], max_cost: float | None = None) -> Configuration | None:
        """The configuration to run next (``None``: the lattice is covered, or no configuration is
        predicted to fit in ``max_cost`` seconds of solver time — checked once a cost is known)."""
        free = [c.key for c in self.lattice if c.key not in known and c.key not in busy]
        a, beta = self.cost_model(known)
        if max_cost is not None and any(o.status in ("ok", "stopped") and o.cost > 0 for o in known.values()):
            n = {c.key: len(c.trials) for c in self.lattice}
            free = [k for k in free if math.exp(a + float(self.X[k] @ beta)) * n[k] <= max_cost]
        if not free:
            return None
        pool: list[str] = []
        for source in (self.front(known), list(known)):
            pool = sorted({n for k in source for n in self.neighbours[k] if n in free})
            if pool:
                break
        pool = pool or free
        best = min(pool, key=lambda k: (a + float(self.X[k] @ beta), self.tie[k]))
        return self.lattice[self.index[best]]


# --- the searcher ------------------------------------------------------------------------------------


def _make_searcher(plan: SearchPlan, lattice: list[Configuration], sopts: SearchOptions, budget, sweep_dir, front, log):
    import optuna
    from ray.tune.search import Searcher
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    class LatticeSearcher(Searcher):
        """Optuna's multi-objective sampler on the lattice: each Tune trial is one configuration (all
        its seeds), suggested at most once; the study learns (log10 error, log10 cost) from Parquet."""

        def __init__(self):
            super().__init__(metric=["error", "cost"], mode=["min", "min"])
            self.policy = FrontierPolicy(plan, lattice, sopts.seed) if sopts.method == "pareto" else None
            self.inner = None
            if self.policy is None:
                if sopts.method == "random":
                    sampler = optuna.samplers.RandomSampler(seed=sopts.seed)
                else:
                    sampler = optuna.samplers.TPESampler(
                        seed=sopts.seed, multivariate=True, n_startup_trials=STARTUP_TRIALS
                    )
                self.inner = OptunaSearch(
                    space=plan.distributions(), metric=["error", "cost"], mode=["min", "min"], sampler=sampler
                )
            self.queue: list[Configuration] = []  # interrupted configurations, run first on resume
            self.by_key = {c.key: c for c in lattice}
            self.seen: set[str] = set()
            self.known: dict[str, Outcome] = {}
            self.running: dict[str, tuple[str, str]] = {}  # Tune trial id -> (inner id, key)
            self.wall_running: dict[str, float] = {}
            self.used_trajectories = 0
            self.spent_s = 0.0
            self.finished = False
            self.redraws = 0
            resume = []
            for c in lattice:  # a resumed search: finished configurations replayed, interrupted ones first
                out = outcome(sweep_dir, c.trials)
                if out is not None:
                    self._learn(None, c, out)
                elif any(_has_row(sweep_dir, t.trial_id) or _has_state(sweep_dir, t.trial_id) for t in c.trials):
                    resume.append(c)
            for c in resume:
                if self.inner is not None:
                    self.inner._ot_study.enqueue_trial(dict(c.params))
                else:
                    self.queue.append(c)
            self.replayed, self.resumed = len(self.seen), len(resume)

        def _learn(self, inner_id: str | None, c: Configuration, out: Outcome) -> None:
            if c.key not in self.seen:
                self.seen.add(c.key)
                self.used_trajectories += len(c.trials)
            self.known[c.key] = out
            self.spent_s += out.wall_s
            if out.status == "ok":
                front.add(out.cost, out.error)
            self._tell(inner_id, c, out)

        def _tell(self, inner_id: str | None, c: Configuration, out: Outcome | None) -> None:
            if self.inner is None:  # the frontier policy reads self.known
                return
            values = None
            if out is not None and out.status in ("ok", "stopped") and out.error > 0 and out.cost > 0:
                values = {"error": math.log10(out.error), "cost": math.log10(out.cost)}
            if inner_id is None:  # a replayed configuration (OptunaSearch.add_evaluated_point is single-objective)
                state = optuna.trial.TrialState.FAIL if values is None else optuna.trial.TrialState.COMPLETE
                self.inner._ot_study.add_trial(
                    optuna.trial.create_trial(
                        state=state,
                        values=None if values is None else [values["error"], values["cost"]],
                        params=dict(c.params),
                        distributions=self.inner._space,
                    )
                )
            else:
                self.inner.on_trial_complete(inner_id, values, error=values is None)

        def spent(self) -> bool:
            if budget[0] is not None:
                return self.used_trajectories >= budget[0]
            return self.spent_s + sum(self.wall_running.values()) >= budget[1]

        def suggest(self, trial_id: str):
            if self.finished or self.spent() or len(self.seen) >= len(lattice):
                self.finished = True
                return Searcher.FINISHED
            if self.policy is not None:
                busy = {key for _, key in self.running.values()}
                left = None
                if budget[1] is not None:  # solver time left after what runs now (at its predicted cost)
                    left = budget[1] - self.spent_s
                    for tid, (_, key) in self.running.items():
                        pred = self.policy.predicted_cost(key, self.known) or 0.0
                        left -= max(pred, self.wall_running.get(tid, 0.0))
                c = self.queue.pop(0) if self.queue else self.policy.next(self.known, busy, left)
                if c is None:
                    if self.running and left is not None and len(busy) + len(self.known) < len(lattice):
                        return None  # nothing predicted to fit now; a running trial may end early
                    self.finished = True  # the lattice is covered, or nothing fits the budget
                    return Searcher.FINISHED
                self.seen.add(c.key)
                self.used_trajectories += len(c.trials)
                self.running[trial_id] = (None, c.key)
                return {"point": c.key}
            for attempt in range(200):
                inner_id = trial_id if attempt == 0 else f"{trial_id}-redraw{attempt}"
                params = self.inner.suggest(inner_id)
                c = self.by_key.get(_canon(params))
                if c is None:  # not in the lattice (s > p at this architecture)
                    self.inner.on_trial_complete(inner_id, None, error=True)
                    continue
                if c.key in self.seen:  # answered from what is known; drawn again
                    self.redraws += 1
                    self._tell(inner_id, c, self.known.get(c.key))
                    continue
                self.seen.add(c.key)
                self.used_trajectories += len(c.trials)
                self.running[trial_id] = (inner_id, c.key)
                return {"point": c.key}
            self.finished = True  # the sampler keeps proposing known points: the lattice is covered
            return Searcher.FINISHED

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            if trial_id in self.running:
                self.wall_running[trial_id] = float(result.get("wall_s", 0.0) or 0.0)

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            if trial_id not in self.running:
                return
            inner_id, key = self.running.pop(trial_id)
            self.wall_running.pop(trial_id, None)
            c = self.by_key[key]
            out = outcome(sweep_dir, c.trials)
            if out is None:  # no rows (an interrupted sweep): nothing learnt; --resume runs it again
                self.seen.discard(key)
                self.used_trajectories -= len(c.trials)
                if self.inner is not None:
                    self.inner.on_trial_complete(inner_id, None, error=True)
                return
            self._learn(inner_id, c, out)

        def save(self, checkpoint_path: str) -> None:  # state is replayed from Parquet, never pickled
            return None

        def __reduce__(self):  # Tune pickles its settings for Tuner.restore, which a search never uses
            return (_inert_searcher, ())

        def restore(self, checkpoint_path: str) -> None:
            return None

    return LatticeSearcher()


def _make_stopper(front: Front, sweep_dir, on_records, enabled: bool):
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler

    class FrontStopper(FIFOScheduler):
        """Stops a trial whose mean running error is above a finished front point of cost ≤ its
        projected cost (time so far + the remaining steps at the last chunk's pace), after :data:`GRACE`
        of its steps and two reports; writes its rows with status ``stopped``."""

        def __init__(self):
            super().__init__()
            self.stopped: dict[str, int] = {}
            self.last: dict[str, tuple[float, float]] = {}  # trial -> (progress, wall_s) of its last report

        @property
        def supports_buffered_results(self) -> bool:  # decide on every chunk, before the next one runs
            return False

        def on_trial_result(self, tune_controller, trial, result):
            if not enabled or not result.get("if_stopped"):  # (emptied in a result Tune repeats at the end)
                return TrialScheduler.CONTINUE
            progress, wall = float(result.get("progress", 1.0)), float(result["wall_s"])
            prev = self.last.get(trial.trial_id)
            self.last[trial.trial_id] = (progress, wall)
            if prev is None or not GRACE <= progress < 1.0 or progress <= prev[0]:
                return TrialScheduler.CONTINUE
            # the rest of the run at the last chunk's pace (the first chunk also pays one-time start-up costs)
            members = max(1, len(json.loads(result["if_stopped"])))
            rate = (wall - prev[1]) / (progress - prev[0])
            projected = (wall + (1.0 - progress) * rate) / members
            best = front.best_error(projected)
            if best is None or not float(result["running_rel_l2"]) > best:
                return TrialScheduler.CONTINUE
            from rsng.results import write_trajectory
            from rsng.service.trial import decode_records

            records = decode_records(result["if_stopped"])
            for rec in records:
                rec["row"]["error_message"] += (
                    f" (running error {float(result['running_rel_l2']):.3g} > {best:.3g} at projected cost "
                    f"{projected:.3g} s)"
                )
                write_trajectory(sweep_dir, rec["row"])
            on_records(records)
            self.stopped[trial.trial_id] = int(result.get("step", 0))
            return TrialScheduler.STOP

        def save(self, checkpoint_path: str) -> None:
            return None

        def restore(self, checkpoint_path: str) -> None:
            return None

        def __reduce__(self):  # holds the driver's MLflow queue; the pickled copy is inert
            return (_inert_scheduler, ())

    return FrontStopper()


def _inert_searcher():
    from ray.tune.search import BasicVariantGenerator

    return BasicVariantGenerator()


def _inert_scheduler():
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


def _has_row(sweep_dir, trial_id: str) -> bool:
    from rsng.results import safe_name

    return (sweep_dir / "trajectories" / f"{safe_name(trial_id)}.parquet").exists()


def _has_state(sweep_dir, trial_id: str) -> bool:
    from rsng.results import safe_name

    return (sweep_dir / "_state" / f"{safe_name(trial_id)}.npz").exists()


# --- the trial ---------------------------------------------------------------------------------------


def search_trainable(config: dict[str, Any], points: dict[str, dict[str, Any]] | None = None) -> None:
    """One configuration's seeds (those without a row), marched together; a ``tune.report`` after every
    chunk with ``error``/``cost`` (log10 running error and projected cost, for Tune), the progress,
    the running error and the rows the trajectories would get if stopped now; the last one carries
    the finished trajectories' log records (:data:`rsng.service.trial.RESULT_KEY`)."""
    from ray import tune

    from rsng.service.trial import RESULT_KEY, _has_row, log_record, run_trajectory

    item = points[config["point"]]
    cpus = float(item.cpus)
    if cpus >= 1 and cpus.is_integer() and os.environ.get("RSNG_PIN_CPUS", "1") != "0":
        from rsng.core.threads import claim_cpus

        claim_cpus(int(cpus))
    members = [m for m in item.members if not _has_row(item.sweep_dir, m.trial_id)]
    points_n = item.history_points
    records: list[dict] = [{"trial_id": m.trial_id} for m in item.members if m not in members]
    if not members:
        tune.report({RESULT_KEY: json.dumps(records), "error": math.nan, "cost": math.nan, "wall_s": 0.0})
        return
    payload = dataclasses.replace(item, members=tuple(members), trial_id=members[0].trial_id)
    n = len(members)

    def report(metrics: dict, state: dict | None) -> None:
        out = {"step": int(metrics.get("step", 0)), "wall_s": float(metrics.get("wall_s", 0.0))}
        if metrics.get("done"):
            err = metrics.get("rel_l2")
            out.update(progress=1.0, status=str(metrics.get("status", "")), running_rel_l2=err)
            out[RESULT_KEY] = json.dumps(records)
            records.clear()
        else:
            for k in ("progress", "running_rel_l2", "if_stopped"):
                if k in metrics:
                    out[k] = metrics[k]
            out[RESULT_KEY] = ""
        err, prog = out.get("running_rel_l2"), out.get("progress") or 0.0
        ok = isinstance(err, float) and err > 0 and prog > 0 and out["wall_s"] > 0
        out["error"] = math.log10(err) if ok else math.nan
        out["cost"] = math.log10(out["wall_s"] / n / prog) if ok else math.nan
        tune.report(out)

    run_trajectory(payload, report=report, on_row=lambda row, series: records.append(log_record(row, series, points_n)))


# --- the driver --------------------------------------------------------------------------------------


def run_search(prep, opts, versions: dict, on_records: Callable, history_points: int) -> dict[str, Any]:
    """Run the search of ``opts.search`` over ``prep``'s lattice, one Tune experiment per problem;
    raises :class:`rsng.service.runner.SweepInterrupted` when it was stopped before its budget was spent."""
    from rsng.service.runner import (
        TUNE_ENV_DEFAULTS,
        SweepInterrupted,
        _slots,
        _work_item,
        init_ray,
    )

    for k, v in TUNE_ENV_DEFAULTS.items():
        os.environ.setdefault(k, v)

    sopts: SearchOptions = opts.search
    plan = plan_search(prep.spec, sopts, confirm_large=True)
    init_ray(opts.ray_address, log=opts.log)
    slots = _slots(opts)
    n_problems = len(plan.studies)
    budget = (
        -(-sopts.budget // n_problems) if sopts.budget is not None else None,
        sopts.budget_hours * 3600 / n_problems if sopts.budget_hours is not None else None,
    )
    summary: dict[str, Any] = {}
    for problem, lattice in plan.studies.items():
        front = Front()
        searcher = _make_searcher(plan, lattice, sopts, budget, prep.sweep_dir, front, opts.log)
        stopper = _make_stopper(front, prep.sweep_dir, on_records, sopts.early_stop)
        payloads = {}
        for c in lattice:
            first = c.trials[0]
            chunk = max(1, math.ceil(first.config.steps / REPORTS))
            payloads[c.key] = dataclasses.replace(
                _work_item(first.trial_id, list(c.trials), prep, opts, versions),
                chunk=chunk,
                report_steps=chunk,
                stoppable=sopts.early_stop,
                history_points=history_points,
            )
        opts.log(
            f"search {sopts.method} over {problem}: {len(lattice)} configurations × seeds on axes "
            f"{', '.join(plan.axes)}; budget "
            + (f"{budget[0]} trajectories" if budget[0] is not None else f"{budget[1]:.0f} s of solver time")
            + (
                f"; resumed: {searcher.replayed} configurations replayed, {searcher.resumed} continued"
                if searcher.replayed or searcher.resumed
                else ""
            )
        )
        if searcher.resumed == 0 and (searcher.spent() or len(searcher.seen) >= len(lattice)):
            searcher.finished = True  # a resumed search that had ended: no Tune experiment to start
        else:
            _fit_search(searcher, stopper, payloads, prep, opts, problem, slots, on_records)
        if not searcher.finished or searcher.running:  # Tune returns normally after a SIGINT
            raise SweepInterrupted(f"search over {problem} stopped before its budget was spent")
        n_stopped = sum(1 for o in searcher.known.values() if o.status == "stopped")
        opts.log(
            f"search {problem}: {len(searcher.known)} of {len(lattice)} configurations evaluated "
            f"({n_stopped} stopped early), {searcher.used_trajectories} trajectories, "
            f"{searcher.spent_s:.1f} s of solver time"
        )
        summary[problem] = {
            "configurations": len(searcher.known),
            "lattice": len(lattice),
            "stopped": n_stopped,
            "trajectories": searcher.used_trajectories,
            "solver_s": searcher.spent_s,
        }
    return summary


def _fit_search(searcher, stopper, payloads, prep, opts, problem, slots, on_records) -> None:
    """One problem's search as a Tune experiment (returns when the searcher is finished or on SIGINT)."""
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    from rsng.service.runner import _trial_dirname
    from rsng.service.trial import RESULT_KEY

    sink = _make_search_sink(on_records, payloads, opts.max_failures, RESULT_KEY)
    resources = {"cpu": opts.cpus_per_trial, "gpu": opts.gpus_per_trial}
    trainable = tune.with_resources(tune.with_parameters(search_trainable, points=payloads), resources)
    if isinstance(prep.sweep_dir, Path):
        storage = {"storage_path": str(prep.sweep_dir / "_ray")}
    else:
        storage = {"storage_path": (prep.sweep_dir / "_ray").path, "storage_filesystem": prep.sweep_dir.fs}
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=stopper,
            num_samples=-1,
            max_concurrent_trials=slots,
            reuse_actors=True,
            trial_dirname_creator=_trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=f"{prep.spec.name}-{problem}-search-{int(time.time())}",
            **storage,
            failure_config=tune.FailureConfig(max_failures=opts.max_failures),
            callbacks=[sink, JsonLoggerCallback()],
            verbose=0,
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=0, checkpoint_at_end=False),
        ),
    )
    tuner.fit()


def _make_search_sink(on_records, payloads: dict, max_failures: int, result_key: str):
    from ray import tune

    from rsng.service.runner import _inert_callback, _record_lost_trial, drop_records, member_ids

    class _SearchSink(tune.Callback):
        """Hand each finished trajectory to the driver's MLflow logger; record trials that died for good."""

        def __reduce__(self):
            return (_inert_callback, ())

        def on_trial_result(self, iteration, trials, trial, result, **info):
            text = result.get(result_key)
            if text:
                on_records(text)
            drop_records(result, (result_key, "if_stopped"))  # the scheduler has had them

        def on_trial_error(self, iteration, trials, trial, **info):
            payload = payloads[trial.config["point"]]
            _record_lost_trial(payload, f"trial process failed {max_failures + 1} times: {trial.error_file or ''}")
            on_records([{"trial_id": tid} for tid in member_ids(payload)])

    return _SearchSink()
