"""The run loop's final choice: the start stays unless a candidate leads it by a paired lower bound."""

import math

import pytest

from colasearch.objectives import make_objective
from colasearch.results import EvalResult
from colasearch.schedule import Schedule
from colasearch.search.loop import SearchOutcome, _choose_confidently
from colasearch.search.racing import RacingPolicy


def _record(layers, values, estimated=False):
    extra = {"items": len(values), "per_item": {"acc": values}}
    if estimated:
        extra = {"items": len(values), "estimated": True}
    result = EvalResult("k", "t", "search", {"acc": sum(values) / len(values)}, 1.3, extra=extra)
    return Schedule.from_layers(layers), result


def _outcome(records):
    objective = make_objective("quality", metric="acc")
    outcome = SearchOutcome(records=list(records))
    full = [(s, r) for s, r in records if not r.extra.get("estimated")]
    outcome.best, outcome.best_result = max(full, key=lambda entry: entry[1].quality["acc"])
    outcome.best_value = objective.scalar(outcome.best_result)
    return outcome, objective


START = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]


def test_a_luckier_candidate_does_not_replace_the_start():
    start = _record([0, 1, 2, 4], START)
    lucky = _record([0, 1, 3, 4], [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0])  # +2 -1 items: +0.125, SE 0.23
    stopped = _record([0, 2, 3, 4], [1.0] * 4, estimated=True)  # raced out on a subset: never chosen
    outcome, objective = _outcome([start, stopped, lucky])
    _choose_confidently(outcome, objective, "acc", 1.0, RacingPolicy(choice_z=1.0))
    assert outcome.best.key == start[0].key and outcome.best_result is start[1]
    assert outcome.highest.key == lucky[0].key
    assert outcome.best_value == objective.scalar(start[1])


def test_a_clearly_better_candidate_is_chosen_and_nothing_is_marked():
    start = _record([0, 1, 2, 4], START)
    better = _record([0, 1, 3, 4], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0])  # three gained, none lost
    outcome, objective = _outcome([start, better])
    _choose_confidently(outcome, objective, "acc", 1.0, RacingPolicy(choice_z=1.0))
    assert outcome.best.key == better[0].key and outcome.highest is None


def test_the_bound_grows_with_the_number_of_candidates_compared():
    policy = RacingPolicy(choice_z=1.0)
    assert policy.choice_bound(1) == 1.0 and policy.choice_bound(2) == pytest.approx(math.sqrt(2 * math.log(2)))
    assert policy.choice_bound(100) > 3.0 > policy.choice_bound(50) > policy.choice_bound(10) > 2.0
    assert RacingPolicy(choice_z=1.0, multiplicity=False).choice_bound(100) == 1.0
    assert RacingPolicy(choice_z=0.0).choice_bound(100) == 0.0  # the plain maximum stays the plain maximum


def test_among_many_candidates_a_lead_of_two_standard_errors_is_not_enough():
    start = _record([0, 1, 2, 4], START)
    # Three items gained, none lost (+0.375, paired SE 0.18: 2.0 SE) after 40 others were tried.
    better = _record([0, 1, 3, 4], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    others = [_record([0, 2, 3, 4], START) for _ in range(40)]
    outcome, objective = _outcome([start, *others, better])
    _choose_confidently(outcome, objective, "acc", 1.0, RacingPolicy(choice_z=1.0))
    assert outcome.best.key == start[0].key and outcome.choice_z > 2.5
    outcome, objective = _outcome([start, better])
    _choose_confidently(outcome, objective, "acc", 1.0, RacingPolicy(choice_z=1.0))
    assert outcome.best.key == better[0].key
