"""The confident choice and the confirmation step as objects: what the run loop asks of them between searches."""

from colasearch.objectives import make_objective
from colasearch.results import EvalResult
from colasearch.schedule import Schedule
from colasearch.engine.choice import ConfidentChoice
from colasearch.engine.confirmation import ConfirmationStep, confirmation_plan
from colasearch.engine.racing import RacingPolicy

START = [1.0, 0.0] * 16


def _record(layers, values, estimated=False):
    result = EvalResult("k", "t", "search", {"acc": sum(values) / len(values)}, 1.3, items=len(values),
                        per_item=None if estimated else {"acc": values}, estimated=estimated)
    return Schedule.from_layers(layers), result


def _choice():
    return ConfidentChoice(make_objective("quality", metric="acc"), "acc", 1.0, RacingPolicy(choice_z=1.0))


def test_there_is_a_contender_only_once_a_full_split_result_clears_the_bound():
    choice = _choice()
    records = [_record([0, 1, 2, 4], START)]
    assert not choice.has_contender(records)
    # Luckier by a little: not a contender. An estimate from a race, however high, never is.
    records.append(_record([0, 1, 3, 4], [1.0, 1.0] + START[2:]))
    records.append(_record([0, 2, 3, 4], [1.0] * 4, estimated=True))
    assert not choice.has_contender(records)
    records.append(_record([0, 3, 4], [1.0] * 32))
    assert choice.has_contender(records)
    anchor, bound, ranked = choice.rank(records)
    assert anchor[0] is records[0][0] and bound >= 1.0 and [entry[0] for entry in ranked] == [records[3][0]]


def test_whether_there_is_a_contender_is_ranked_anew_only_when_a_full_split_result_comes_in():
    choice = _choice()
    ranked = []
    choice.rank = lambda records: ranked.append(len(records)) or (None, None, [])
    records = [_record([0, 1, 2, 4], START), _record([0, 1, 3, 4], START)]
    choice.has_contender(records)
    choice.has_contender(records)
    choice.has_contender(records + [_record([0, 2, 3, 4], [1.0] * 4, estimated=True)])
    assert ranked == [2]
    choice.has_contender(records + [_record([0, 3, 4], START)])
    assert ranked == [2, 3]


def test_the_confirmation_holds_back_its_reserve_and_confirms_at_most_its_share_of_contenders():
    step = ConfirmationStep(3, 0.05, 30 * 256, 1024)
    assert step.reserve == 1920
    assert step.plan(1920, 5) == confirmation_plan(1920, 3, 1024) and step.plan(1920, 1) == (1, 960)
    # Asked to confirm none, or with too few items to confirm on: nothing is held back, nothing confirmed.
    for idle in (ConfirmationStep(0, 0.05, 30 * 256, 1024), ConfirmationStep(3, 0.05, 30 * 256, 8)):
        assert idle.reserve == 0 and idle.plan(1920, 3) == (0, 0)
