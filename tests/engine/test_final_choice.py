"""The run loop's final choice: the start stays unless a candidate leads it by a paired lower bound."""

import random

import torch

from colasearch.objectives import make_objective
from colasearch.results import EvalResult
from colasearch.schedule import Schedule
from colasearch.engine.choice import ConfidentChoice
from colasearch.engine.loop import SearchOutcome
from colasearch.engine.racing import RacingPolicy


def _record(layers, values, estimated=False):
    extra = {"items": len(values), "per_item": {"acc": values}}
    if estimated:
        extra = {"items": len(values), "estimated": True}
    result = EvalResult("k", "t", "search", {"acc": sum(values) / len(values)}, 1.3, extra=extra)
    return Schedule.from_layers(layers), result


def _outcome(records):
    objective = make_objective("quality", metric="acc")
    outcome = SearchOutcome(records=list(records))
    full = [(s, r) for s, r in records if not r.estimated]
    outcome.best, outcome.best_result = max(full, key=lambda entry: entry[1].quality["acc"])
    outcome.best_value = objective.scalar(outcome.best_result)
    return outcome, objective


START = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]


def test_a_luckier_candidate_does_not_replace_the_start():
    start = _record([0, 1, 2, 4], START)
    lucky = _record([0, 1, 3, 4], [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0])  # +2 -1 items: +0.125, SE 0.23
    stopped = _record([0, 2, 3, 4], [1.0] * 4, estimated=True)  # raced out on a subset: never chosen
    outcome, objective = _outcome([start, stopped, lucky])
    ConfidentChoice(objective, "acc", 1.0, RacingPolicy(choice_z=1.0)).choose(outcome)
    assert outcome.best.key == start[0].key and outcome.best_result is start[1]
    assert outcome.highest.key == lucky[0].key
    assert outcome.best_value == objective.scalar(start[1])


def test_a_clearly_better_candidate_is_chosen_and_nothing_is_marked():
    start = _record([0, 1, 2, 4], START)
    better = _record([0, 1, 3, 4], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0])  # three gained, none lost
    outcome, objective = _outcome([start, better])
    ConfidentChoice(objective, "acc", 1.0, RacingPolicy(choice_z=1.0)).choose(outcome)
    assert outcome.best.key == better[0].key and outcome.highest is None


def _noise(count, items, seed):
    generator = random.Random(seed)
    return [[generator.choice((-1.0, 0.0, 0.0, 1.0)) for _ in range(items)] for _ in range(count)]


def test_the_bound_grows_with_the_number_of_unlike_candidates_compared():
    policy = RacingPolicy(choice_z=1.0)
    assert policy.choice_bound(_noise(1, 200, 0)) == 1.0
    # Independent candidates: about the largest of K normals at the quantile Phi(1), 2.62 for K = 40.
    assert 2.3 < policy.choice_bound(_noise(40, 200, 0)) < 2.9
    assert policy.choice_bound(_noise(100, 200, 0)) > policy.choice_bound(_noise(10, 200, 0)) > 1.5
    assert RacingPolicy(choice_z=1.0, multiplicity=False).choice_bound(_noise(100, 200, 0)) == 1.0
    assert RacingPolicy(choice_z=0.0).choice_bound(_noise(100, 200, 0)) == 0.0  # the plain maximum stays so


def test_candidates_that_gain_and_lose_on_the_same_items_count_as_one():
    policy = RacingPolicy(choice_z=1.0)
    alike = _noise(1, 200, 0) * 40
    assert policy.choice_bound(alike) == policy.choice_bound(alike[:1]) == 1.0
    assert policy.choice_bound(_noise(40, 200, 0)) > 2.0
    continuous = [[value * 0.37 for value in row] for row in _noise(40, 200, 1)]  # NLL-like, no pseudo-count
    assert 2.3 < policy.choice_bound(continuous) < 2.9


def test_the_bound_neither_uses_nor_moves_the_callers_random_state():
    # A resumed run must choose the same schedule, and a run's searcher draws from the global generators: so the
    # sign flips come from a generator of the bound's own, whatever the global state, and leave it as it was.
    differences = _noise(20, 64, 3)
    torch.manual_seed(1)
    first = RacingPolicy().choice_bound(differences)
    torch.manual_seed(2)
    state = torch.get_rng_state()
    assert RacingPolicy().choice_bound(differences) == first
    assert torch.equal(torch.get_rng_state(), state)


def test_among_many_unlike_candidates_a_lead_of_two_standard_errors_is_not_enough():
    items = START * 8
    start = _record([0, 1, 2, 4], items)
    # Five items gained, none lost (1.9 paired SE with the pseudo-disagreements), after 40 others whose gains
    # and losses fall on different items: the bound is near the largest of 40 independent t values.
    better = _record([0, 1, 3, 4], [1.0 if position < 10 else value for position, value in enumerate(items)])
    others = [_record([0, 5 + index, 4], [max(0.0, min(1.0, a + b)) for a, b in zip(items, row)])
              for index, row in enumerate(_noise(40, len(items), 5))]
    outcome, objective = _outcome([start, *others, better])
    ConfidentChoice(objective, "acc", 1.0, RacingPolicy(choice_z=1.0)).choose(outcome)
    assert outcome.best.key == start[0].key and outcome.choice_z > 2.3
    outcome, objective = _outcome([start, better])
    ConfidentChoice(objective, "acc", 1.0, RacingPolicy(choice_z=1.0)).choose(outcome)
    assert outcome.best.key == better[0].key


def test_a_lead_that_its_neighbours_share_is_taken():
    # The default run on capitals: candidates a swap or two apart gain on the same items. Their t values
    # move together under the null, so the bound stays near the one-candidate bound, and the lead
    # (five gained, none lost) is taken even after 40 such neighbours (two to four gained).
    items = START * 8
    start = _record([0, 1, 2, 4], items)
    better = _record([0, 1, 3, 4], [1.0 if position < 10 else value for position, value in enumerate(items)])
    neighbours = [_record([0, 5 + index, 4], [1.0 if position < 8 - index % 3 * 2 else value
                                               for position, value in enumerate(items)]) for index in range(40)]
    outcome, objective = _outcome([start, *neighbours, better])
    ConfidentChoice(objective, "acc", 1.0, RacingPolicy(choice_z=1.0)).choose(outcome)
    assert outcome.best.key == better[0].key and outcome.choice_z < 1.9


def test_a_result_on_other_items_is_left_out_of_the_bound_instead_of_failing_the_choice():
    items = START * 8
    start = _record([0, 1, 2, 4], items)
    other_items = _record([0, 2, 3, 4], items[:32])  # e.g. read back from a run with a smaller split
    better = _record([0, 1, 3, 4], [1.0 if position < 10 else value for position, value in enumerate(items)])
    outcome, objective = _outcome([start, other_items, better])
    ConfidentChoice(objective, "acc", 1.0, RacingPolicy(choice_z=1.0)).choose(outcome)
    assert outcome.choice_z == 1.0 and outcome.best.key == better[0].key
