"""The search state machine (core/search.py): trials started within max_concurrent and
max_trials, ASHA's early stops on simulated populations with known learning curves, random
and grid searches that never stop, readable reasons, and a state that decides the same after
a JSON round trip. Pure and fast: simulated time, no sleeps."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_orch.core.errors import IllegalTransition, NotFound, SpecError
from jupyter_orch.core.search import Decision, SearchConfig, SearchState
from jupyter_orch.core.space import choice, loguniform, uniform

Curve = Callable[[dict[str, Any], int], float | None]


def point(
    step: int | None, value: float | None, *, metric: str = "val_loss", group: str = "validation"
) -> list[Any]:
    return [1.7e9, step, group, {metric: value}]


class Sim:
    """Trials as tasks advancing one step at a time in a random order (asynchronous), each
    reporting ``curve(params, step)`` at every ``every``-th step up to ``max_t``. Every call
    goes to each state in ``self.states`` (a twin rebuilt from JSON joins mid-search) and
    their answers must agree."""

    def __init__(self, state: SearchState, curve: Curve, *, seed: int = 0, every: int = 1) -> None:
        self.states = [state]
        self.curve = curve
        self.rng = random.Random(seed)
        self.every = every
        self.max_t = state.config.max_t or 20
        self.running: dict[str, dict[str, Any]] = {}
        self.steps_used = 0
        self.most_running = 0
        self.decisions: list[tuple[int, Decision]] = []  # (step it was decided at, decision)
        self.plans_made = 0
        self.decisions_before_twin = 0

    @property
    def state(self) -> SearchState:
        return self.states[0]

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        answers = [getattr(s, name) for s in self.states]
        if callable(answers[0]):
            answers = [answer(*args, **kwargs) for answer in answers]
        for other in answers[1:]:
            assert other == answers[0], name
        return answers[0]

    def twin(self) -> None:
        self.decisions_before_twin = len(self.decisions)
        self.states.append(SearchState.from_dict(json.loads(json.dumps(self.state.to_dict()))))
        assert self.states[-1].to_dict() == self.state.to_dict()

    def run(self, *, twin_at: int | None = None, limit: int = 100_000) -> Sim:
        events = 0
        while not self.call("done"):
            for plan in self.call("next_trials", len(self.running)):
                task_id = f"task-{plan.number}"
                self.call("started", plan.number, task_id)
                self.running[task_id] = {"params": plan.params, "step": 0, "offset": 0}
                self.plans_made += 1
            self.most_running = max(self.most_running, len(self.running))
            assert len(self.running) <= self.state.config.max_concurrent
            task_id = self.rng.choice(sorted(self.running))
            trial = self.running[task_id]
            trial["step"] += 1
            self.steps_used += 1
            step = trial["step"]
            decisions: list[Decision] = []
            if step % self.every == 0 or step >= self.max_t:
                offset = trial["offset"]
                trial["offset"] += 1
                p = point(step, self.curve(trial["params"], step), metric=self.state.config.metric)
                decisions = self.call("on_points", task_id, [(offset, p)])
            for d in decisions:
                assert d.action == "stop" and d.task_id == task_id
                self.decisions.append((step, d))
                self.call("ended", task_id, "cancelled")  # the server cancels the task
                del self.running[task_id]
            if not decisions and step >= self.max_t:
                self.call("ended", task_id, "succeeded")
                del self.running[task_id]
            events += 1
            if events == twin_at:
                self.twin()
            assert events < limit
        assert not self.running
        return self


def population(
    seed: int, *, n: int = 100, max_t: int = 81, mode: str = "min", **config: Any
) -> tuple[SearchState, Curve, Callable[[dict[str, Any]], float]]:
    """100 trials of value ``a + b / (step + 1)`` (negated for mode max), a and b sampled."""
    sign = 1 if mode == "min" else -1
    state = SearchState(
        SearchConfig(
            metric="val_loss" if mode == "min" else "val_score",
            mode=mode,
            max_trials=n,
            max_concurrent=8,
            max_t=max_t,
            seed=seed,
            **config,
        ),
        {"a": uniform(0, 1), "b": uniform(0, 3), "opt": ["adam", "sgd"]},
    )

    def curve(p: dict[str, Any], step: int) -> float:
        return float(sign * (p["a"] + p["b"] / (step + 1)))

    def final(p: dict[str, Any]) -> float:
        return float(sign * (p["a"] + p["b"] / (max_t + 1)))

    return state, curve, final


# --- ASHA on simulated populations ------------------------------------------------------------


@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_asha_spends_a_fraction_of_the_budget_and_finds_a_top_trial(mode: str, seed: int) -> None:
    state, curve, final = population(seed, mode=mode)
    sim = Sim(state, curve, seed=seed).run()
    full = 100 * 81
    assert sim.steps_used < 0.4 * full, sim.steps_used
    assert sim.plans_made == 100 and sim.most_running == 8
    counts = state.counts()
    assert counts["succeeded"] + counts["stopped"] == 100
    assert counts["stopped"] == len(sim.decisions) >= 50
    assert all(step >= 1 for step, _ in sim.decisions)  # grace_period 1

    best = state.best
    assert best is not None and best.state == "succeeded" and best.step == 81
    trials = [state.space.trial(i, seed) for i in range(100)]
    ranking = sorted(range(100), key=lambda i: final(trials[i]) * (1 if mode == "min" else -1))
    assert ranking.index(best.number) < 5, (ranking[:5], best)
    assert best.params == trials[best.number]
    assert best.value == pytest.approx(final(trials[best.number]))

    rows = state.table()
    assert rows[0]["number"] == best.number
    scores = [r["best"] for r in rows]
    assert scores == sorted(scores, reverse=mode == "max")
    stopped = [r for r in rows if r["state"] == "stopped"]
    assert all(r["reason"].startswith("stopped early by ASHA at step ") for r in stopped)
    assert all(r["rung"] is not None for r in rows)


def test_over_many_populations_asha_mostly_finds_the_very_best() -> None:
    ranks, used = [], []
    for seed in range(20):
        state, curve, final = population(100 + seed)
        sim = Sim(state, curve, seed=seed).run()
        trials = [state.space.trial(i, 100 + seed) for i in range(100)]
        ranking = sorted(range(100), key=lambda i: final(trials[i]))
        assert state.best is not None
        ranks.append(ranking.index(state.best.number))
        used.append(sim.steps_used / (100 * 81))
    assert sum(r == 0 for r in ranks) >= 10, ranks  # the true best, most of the time
    assert sum(r < 5 for r in ranks) >= 18, ranks
    assert max(used) < 0.25 and sum(used) / len(used) < 0.15, used


def test_no_trial_is_stopped_before_grace_period_and_rungs_follow_eta() -> None:
    state, curve, _ = population(5, max_t=100, grace_period=4, reduction_factor=2)
    assert state.milestones == (4, 8, 16, 32, 64)
    sim = Sim(state, curve, seed=5).run()
    assert sim.decisions
    assert min(step for step, _ in sim.decisions) >= 4
    assert {step for step, _ in sim.decisions} <= set(state.milestones)  # reports every step
    assert "best 1/2 of" in sim.decisions[0][1].reason


def test_points_every_few_steps_are_judged_at_the_first_point_past_a_rung() -> None:
    state, curve, final = population(7, max_t=81)
    sim = Sim(state, curve, seed=7, every=5).run()  # points at 5, 10, ...: past 1 and 3 at once
    assert sim.steps_used < 0.4 * 100 * 81
    assert {step for step, _ in sim.decisions} <= {5, 10, 30}  # the points past 1/3, 9 and 27
    for row in state.table():
        if row["state"] == "stopped":
            assert row["step"] == {1: 5, 3: 5, 9: 10, 27: 30}[row["rung"]]


def test_a_float_reduction_factor_and_the_defaults() -> None:
    assert SearchConfig("loss", max_t=81).milestones == (1, 3, 9, 27)
    assert SearchConfig("loss", max_t=82).milestones == (1, 3, 9, 27, 81)
    assert SearchConfig("loss", max_t=10, reduction_factor=2.5).milestones == (1, 2.5, 6.25)
    assert SearchConfig("loss", max_t=5, grace_period=5).milestones == ()  # nothing to judge
    assert SearchConfig("loss", scheduler="random", max_t=81).milestones == ()
    state, curve, _ = population(2, max_t=30, reduction_factor=2.5)
    sim = Sim(state, curve, seed=2).run()
    assert sim.steps_used < 0.5 * 100 * 30
    assert "best 1/2.5 of" in sim.decisions[0][1].reason
    assert "step-2.5 rung" in " ".join(d.reason for _, d in sim.decisions)


@pytest.mark.parametrize("scheduler", ["random", "grid"])
def test_random_and_grid_searches_never_stop_a_trial(scheduler: str) -> None:
    space: dict[str, Any] = {"a": [0.1, 0.5, 0.9], "b": [0.0, 1.0, 2.0, 3.0]}
    if scheduler == "random":
        space["c"] = loguniform(1e-3, 1)
    state = SearchState(
        SearchConfig(
            "val_loss",
            scheduler=scheduler,
            max_trials=12 if scheduler == "random" else None,
            max_concurrent=5,
        ),
        space,
    )
    assert state.total == 12
    sim = Sim(state, lambda p, s: p["a"] + p["b"] / (s + 1), seed=3)
    sim.max_t = 20
    sim.run()
    assert sim.decisions == [] and sim.steps_used == 12 * 20 and sim.most_running == 5
    assert state.counts()["succeeded"] == 12
    best = state.best
    assert best is not None and best.params["a"] == 0.1 and best.params["b"] == 0.0
    assert [r["rung"] for r in state.table()] == [None] * 12


def test_a_state_rebuilt_mid_search_decides_exactly_as_the_original() -> None:
    state, curve, _ = population(11)
    sim = Sim(state, curve, seed=11).run(twin_at=120)
    assert len(sim.states) == 2
    assert 10 < sim.decisions_before_twin < len(sim.decisions) - 10  # decided on both sides of it
    assert sim.states[1].to_dict() == sim.states[0].to_dict()
    assert sim.states[1].best == sim.states[0].best
    assert sim.states[1].table() == sim.states[0].table()


# --- the rules, one by one ---------------------------------------------------------------------


def asha(**config: Any) -> SearchState:
    given: dict[str, Any] = {"max_trials": 20, "max_concurrent": 20, "max_t": 27, **config}
    state = SearchState(SearchConfig("val_loss", **given), {"x": uniform(0, 1)})
    for plan in state.next_trials(0):
        state.started(plan.number, f"t{plan.number}")
    return state


def report(
    state: SearchState, n: int, step: int | None, value: float | None, offset: int = 0
) -> list[Decision]:
    return state.on_points(f"t{n}", [(offset, point(step, value))])


def test_the_promotion_rule_and_its_reason() -> None:
    state = asha()
    assert report(state, 0, 1, 0.9) == []  # fewer than η values: it goes on,
    assert report(state, 1, 1, 0.95) == []  # even when worse than every other
    assert report(state, 2, 1, 0.5) == []  # n = 3, the best 1: 0.5 is it
    [stop] = report(state, 3, 1, 0.7)  # n = 4, the best 1: 0.5 -> 0.7 stops
    assert stop == Decision(
        "stop",
        "t3",
        3,
        "stopped early by ASHA at step 1: val_loss 0.7 is not in the best 1/3 of 4 trials at the "
        "step-1 rung (cutoff 0.5, lower is better)",
    )
    assert report(state, 4, 1, 0.6) != []
    assert report(state, 5, 1, 0.6) == []  # n = 6, the best 2: 0.5 and 0.6 (a tie goes on)
    assert report(state, 6, 1, 0.5) == []  # n = 7: 0.5, 0.5
    # nothing is taken back: trial 0 (0.9) went on and is judged again at the next rung
    assert report(state, 0, 3, 0.4, offset=1) == []
    assert state.table()[0]["rung"] == 3
    assert report(state, 3, 2, 0.1, offset=1) == []  # a stopping trial is never judged again


def test_mode_max_is_symmetric() -> None:
    state = asha(mode="max")
    for n, value in enumerate([0.1, 0.05, 0.5]):
        assert report(state, n, 1, value) == []
    [stop] = report(state, 3, 1, 0.3)
    assert stop.reason.endswith(
        "val_loss 0.3 is not in the best 1/3 of 4 trials at the step-1 rung (cutoff 0.5, higher is better)"
    )
    best = state.best
    assert best is not None and best.number == 2 and best.value == 0.5


def test_a_nan_never_goes_on_and_counts_as_worst() -> None:
    state = asha()
    [stop] = report(state, 0, 1, None)  # even the first at the rung
    assert "val_loss is NaN or missing at the step-1 rung" in stop.reason
    assert report(state, 1, 1, 0.9) == []  # n = 2 (the NaN counts): goes on
    assert report(state, 2, 1, 0.8) == []  # n = 3, the best 1: 0.8
    assert report(state, 3, 1, 0.85) != []  # n = 4, the best 1: 0.8
    assert state.on_points("t4", [(0, point(1, math.nan))]) != []  # a raw NaN as well


def test_a_trial_at_max_t_is_never_stopped_but_is_recorded() -> None:
    state = asha()
    for n in range(3):
        report(state, n, 1, 0.1)
    assert report(state, 3, 27, 5.0) == []  # at max_t: passes 1, 3 and 9 and is not stopped
    assert [r["rung"] for r in state.table() if r["number"] == 3] == [9]
    assert report(state, 4, 30, None) == []
    # its recorded values count for the others
    assert report(state, 5, 1, 0.2) != []


def test_a_point_past_several_rungs_is_judged_at_each_lowest_first() -> None:
    state = asha()
    for n in range(3):
        report(state, n, 10, 0.5)  # rungs 1, 3 and 9 at once
    [stop] = report(state, 3, 4, 0.6)  # rungs 1 and 3: stopped at the first
    assert "step-1 rung" in stop.reason and "at step 4" in stop.reason
    rows = {r["number"]: r for r in state.table()}
    assert rows[0]["rung"] == 9 and rows[3]["rung"] == 1


def test_points_seen_again_change_nothing_and_a_retry_counts_from_zero() -> None:
    state = asha()
    state.on_points("t0", [(0, point(1, 0.9)), (1, point(2, 0.8))])
    before = state.to_dict()
    assert state.on_points("t0", [(0, point(1, 0.9)), (1, point(2, 0.8))]) == []
    assert state.to_dict() == before
    state.on_points("t0", [(0, point(1, 0.7))], attempt=1)  # a retry of the task
    row = state.table()[0]
    assert row["last"] == 0.7 and row["step"] == 1 and row["best"] == 0.7
    state.on_points("t0", [(5, point(9, 0.1))], attempt=0)  # the older attempt: ignored
    assert state.table()[0]["last"] == 0.7


def test_only_the_metric_and_group_asked_for_count_and_a_missing_step_is_the_offset() -> None:
    state = asha(group="validation")
    state.on_points("t0", [(0, point(1, 0.1, group="training")), (1, [0, 2, "validation", {"loss": 0.2}])])
    assert state.table()[0]["step"] is None
    state.on_points("t0", [(2, point(None, 0.3)), (3, point(None, 0.2))])
    row = state.table()[0]
    assert (row["step"], row["last"], row["best"], row["best_step"], row["rung"]) == (3, 0.2, 0.2, 3, 3)


def test_best_is_the_best_value_at_any_step() -> None:
    state = asha(scheduler="random")
    state.on_points(
        "t0", [(i, point(i, v)) for i, v in enumerate([0.9, 0.3, 0.6, None])]
    )  # overfits, then NaN
    state.on_points("t1", [(i, point(i, v)) for i, v in enumerate([0.8, 0.5, 0.4])])
    best = state.best
    assert best is not None and (best.number, best.value, best.step) == (0, 0.3, 1)
    rows = state.table()
    assert [(r["number"], r["best"], r["last"]) for r in rows[:2]] == [(0, 0.3, None), (1, 0.4, 0.4)]
    assert rows[2]["best"] is None  # trials without values last, by number
    assert [r["number"] for r in rows[2:]] == list(range(2, 20))


# --- starting and ending ------------------------------------------------------------------------


def test_next_trials_keeps_within_max_concurrent_and_max_trials() -> None:
    state = SearchState(
        SearchConfig("loss", scheduler="random", max_trials=10, max_concurrent=4, seed=5),
        {"lr": loguniform(1e-4, 1e-1), "opt": choice(["adam", "sgd"])},
    )
    first = state.next_trials(0)
    assert [p.number for p in first] == [0, 1, 2, 3]
    assert state.next_trials(0) == first  # not started yet: planned again, no new ones
    assert state.next_trials(3) == first[:1]  # the caller's count when it is larger
    for p in first:
        state.started(p.number, f"t{p.number}")
    assert state.next_trials(0) == []  # this state's own count when it is larger
    state.ended("t1", "failed")
    assert [p.number for p in state.next_trials(3)] == [4]
    assert first[2].params == state.space.trial(2, 5)
    state.started(4, "t4")
    for task in ("t0", "t2", "t3", "t4"):
        state.ended(task, "succeeded")
    rest = state.next_trials(0)
    assert [p.number for p in rest] == [5, 6, 7, 8]
    assert not state.done
    for p in rest:
        state.started(p.number, f"t{p.number}")
        state.ended(f"t{p.number}", "succeeded")
    assert [p.number for p in state.next_trials(0)] == [9]
    assert not state.done  # planned, not ended
    state.started(9, "t9")
    state.ended("t9", "cancelled")
    assert state.done and state.next_trials(0) == []
    assert state.counts() == {
        "planned": 0,
        "running": 0,
        "stopping": 0,
        "succeeded": 8,
        "failed": 1,
        "cancelled": 1,
        "stopped": 0,
        "total": 10,
    }


def test_how_trials_end() -> None:
    state = asha()
    for n in range(3):
        report(state, n, 1, 0.1)
    for n, end in ((3, "cancelled"), (4, "failed"), (5, "succeeded"), (6, "stopped")):
        assert report(state, n, 1, 0.9) != []
        state.ended(f"t{n}", end)
    state.ended("t7", "stopped")  # a stop it did not ask for
    state.ended("t8", "failed")
    state.ended("t8", "succeeded")  # said again: the first end holds
    states = {r["number"]: r["state"] for r in state.table()}
    assert [states[n] for n in range(3, 9)] == [
        "stopped",
        "stopped",
        "succeeded",
        "stopped",
        "cancelled",
        "failed",
    ]
    assert states[0] == "running"
    with pytest.raises(SpecError) as info:
        state.ended("t0", "exploded")
    assert info.value.field == "state"
    with pytest.raises(NotFound):
        state.ended("nope", "failed")
    with pytest.raises(NotFound):
        state.on_points("nope", [])


def test_started_refuses_what_makes_no_sense() -> None:
    state = SearchState(SearchConfig("loss", scheduler="random", max_trials=3), {"x": uniform(0, 1)})
    plans = state.next_trials(0)
    with pytest.raises(IllegalTransition):
        state.started(7, "t7")
    state.started(0, "a")
    state.started(0, "a")  # said twice: fine
    with pytest.raises(IllegalTransition):
        state.started(0, "b")
    with pytest.raises(IllegalTransition):
        state.started(1, "a")
    assert len(plans) == 3


# --- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({}, "metric"),
        ({"metric": ""}, "metric"),
        ({"metric": "step"}, "metric"),
        ({"metric": "loss", "mode": "minimize"}, "mode"),
        ({"metric": "loss", "scheduler": "hyperband"}, "scheduler"),
        ({"metric": "loss"}, "max_t"),  # asha needs it
        ({"metric": "loss", "max_t": 0}, "max_t"),
        ({"metric": "loss", "max_t": 10, "grace_period": 11}, "grace_period"),
        ({"metric": "loss", "max_t": 10, "grace_period": 0}, "grace_period"),
        ({"metric": "loss", "max_t": 10, "reduction_factor": 1}, "reduction_factor"),
        ({"metric": "loss", "max_t": 10, "reduction_factor": True}, "reduction_factor"),
        ({"metric": "loss", "max_t": 10, "reduction_factor": "3"}, "reduction_factor"),
        ({"metric": "loss", "max_t": 10, "max_concurrent": 0}, "max_concurrent"),
        ({"metric": "loss", "max_t": 10, "max_trials": 0}, "max_trials"),
        ({"metric": "loss", "max_t": 10, "max_trials": 10**6}, "max_trials"),
        ({"metric": "loss", "max_t": 10, "max_trials": 2.5}, "max_trials"),
        ({"metric": "loss", "max_t": 10, "group": "a b"}, "group"),
        ({"metric": "loss", "max_t": 10, "seed": "x"}, "seed"),
        ({"metric": "loss", "max_t": 10, "eta": 3}, "eta"),
    ],
)
def test_config_problems_name_their_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as info:
        SearchConfig.from_dict(raw)
    assert info.value.field == field, info.value.message


def test_config_and_space_must_go_together() -> None:
    with pytest.raises(SpecError) as info:
        SearchState(SearchConfig("loss", scheduler="grid"), {"lr": uniform(0, 1), "n": [1, 2]})
    assert info.value.field == "scheduler" and "lr" in info.value.message
    with pytest.raises(SpecError) as info:
        SearchState(SearchConfig("loss", scheduler="random"), {"lr": uniform(0, 1)})
    assert info.value.field == "max_trials"
    with pytest.raises(SpecError) as info:
        SearchState(SearchConfig("loss", scheduler="grid"), {f"p{i}": list(range(10)) for i in range(5)})
    assert info.value.field == "max_trials" and "100000 combinations" in info.value.message
    with pytest.raises(SpecError) as info:
        SearchState(SearchConfig("loss", scheduler="grid"), {"lr": []})
    assert info.value.field == "space.lr"
    grid = SearchState(SearchConfig("loss", scheduler="grid", max_trials=4), {"a": [1, 2, 3], "b": [1, 2]})
    assert grid.total == 4


def test_a_malformed_state_is_a_spec_error() -> None:
    good = asha().to_dict()
    for bad in (
        {},
        {**good, "version": 99},
        {k: v for k, v in good.items() if k != "space"},
        {**good, "trials": [{"number": 0}, {"nope": 1}]},
        {**good, "rungs": []},
        {**good, "trials": good["trials"][1:]},
        {**good, "trials": [{**good["trials"][0], "state": "weird"}]},
    ):
        with pytest.raises(SpecError) as info:
            SearchState.from_dict(bad)
        assert info.value.field in ("state", "space")


configs = st.builds(
    SearchConfig,
    metric=st.sampled_from(["loss", "val_loss", "accuracy"]),
    mode=st.sampled_from(["min", "max"]),
    scheduler=st.just("asha"),
    max_trials=st.none() | st.integers(1, 10_000),
    max_concurrent=st.integers(1, 1000),
    max_t=st.integers(100, 10_000),
    grace_period=st.integers(1, 100),
    reduction_factor=st.integers(2, 5) | st.floats(1.1, 10),
    group=st.none() | st.sampled_from(["validation", "training"]),
    seed=st.integers(0, 2**40),
)


@given(configs)
def test_config_round_trips(config: SearchConfig) -> None:
    assert SearchConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


events = st.lists(
    st.tuples(
        st.integers(0, 5),  # which trial
        st.integers(1, 7),  # how many steps it advances
        st.none() | st.floats(-10, 10) | st.just(math.nan),
        st.sampled_from(["report", "report", "report", "end", "again"]),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(events, st.sampled_from(["min", "max"]), st.sampled_from([2, 3, 2.5]))
def test_a_state_rebuilt_after_any_event_decides_the_same(
    evs: list[tuple[int, int, float | None, str]], mode: str, eta: float
) -> None:
    config = SearchConfig(
        "val_loss", mode=mode, max_trials=6, max_concurrent=6, max_t=30, reduction_factor=eta
    )
    state = SearchState(config, {"x": uniform(0, 1), "y": [1, 2]})
    for plan in state.next_trials(0):
        state.started(plan.number, f"t{plan.number}")
    steps = dict.fromkeys(range(6), 0)
    offsets = dict.fromkeys(range(6), 0)
    for n, advance, value, what in evs:
        twin = SearchState.from_dict(json.loads(json.dumps(state.to_dict())))
        assert twin.to_dict() == state.to_dict()
        task = f"t{n}"
        if what == "end":
            for s in (state, twin):
                s.ended(task, "cancelled")
        else:
            if what == "report":
                steps[n] += advance
                offsets[n] += 1
            batch = [(offsets[n] - 1, point(steps[n], value))] if offsets[n] else []
            decisions = state.on_points(task, batch)
            assert twin.on_points(task, batch) == decisions
            assert len(decisions) <= 1
            for d in decisions:
                assert d.task_id == task and d.reason.startswith("stopped early by ASHA at step ")
                assert steps[n] >= 1 and steps[n] < 30
        assert twin.to_dict() == state.to_dict()
        assert twin.best == state.best and twin.next_trials(0) == state.next_trials(0)
