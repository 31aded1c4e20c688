"""The acceptance estimator, the expected-speedup formula and the ``speculative`` objective."""

import math

import pytest
import torch

from colasearch import ColasearchError, Schedule
from colasearch.cost import CostModel
from colasearch.objectives.base import BaseObjective
from colasearch.objectives.speculative import SpeculativeObjective
from colasearch.results import EvalResult
from colasearch.speculative import acceptance_extra, expected_speedup, measure_acceptance
from colasearch.testing import make_tiny_model


@pytest.fixture(scope="module")
def model():
    return make_tiny_model("qwen2")


def _prompts(count=3):
    generator = torch.Generator().manual_seed(3)
    return [torch.randint(3, 96, (5 + index,), generator=generator) for index in range(count)]


def test_formula_limits():
    # Nothing accepted: one token per round, paid with k draft steps and a verify.
    assert expected_speedup(0.0, 4, 0.5) == pytest.approx(1 / (4 * 0.5 + 1))
    # Everything accepted: k + 1 tokens per round.
    assert expected_speedup(1.0, 4, 0.5) == pytest.approx(5 / 3)
    # A free draft that is always right gives k + 1.
    assert expected_speedup(1.0, 3, 0.0) == pytest.approx(4.0)
    assert expected_speedup(0.8, 4, 0.5) == pytest.approx((1 - 0.8 ** 5) / 0.2 / 3)
    values = [expected_speedup(a / 10, 4, 0.6) for a in range(11)]
    assert values == sorted(values)
    with pytest.raises(ColasearchError):
        expected_speedup(1.5, 4, 0.5)


def test_identity_draft_matches_perfectly(model):
    measured = measure_acceptance(model, Schedule.identity(model), _prompts(), k=3, max_new_tokens=12)
    assert measured["acceptance_rate"] == 1.0 and measured["accepted_fraction"] == 1.0
    assert measured["draft_cost"] == pytest.approx(1.0)
    # An exact draft as expensive as the full model buys nothing: (k + 1) / (k + 1).
    assert measured["expected_speedup"] == pytest.approx(1.0)
    assert measured["new_tokens"] == 3 * 12 and measured["prompts"] == 3


def test_shorter_draft_reports_consistent_numbers(model):
    schedule = Schedule.from_layers([0, 1, 2, 3], model=model)
    measured = measure_acceptance(model, schedule, _prompts(), k=2, max_new_tokens=12)
    assert 0.0 <= measured["acceptance_rate"] <= 1.0
    assert measured["accepted"] <= measured["drafted"] <= 2 * measured["rounds"]
    assert measured["draft_ideal_speedup"] == pytest.approx(CostModel.from_model(model).ideal_speedup(schedule))
    assert measured["expected_speedup"] == pytest.approx(
        expected_speedup(measured["acceptance_rate"], 2, 1 / measured["draft_ideal_speedup"]))
    extra = acceptance_extra(model, schedule, _prompts(), k=2, max_new_tokens=12)
    assert extra["acceptance_rate"] == pytest.approx(measured["acceptance_rate"]) and extra["draft_tokens"] == 2


def test_measure_acceptance_refuses_bad_input(model):
    schedule = Schedule.identity(model)
    with pytest.raises(ColasearchError, match="at least one prompt"):
        measure_acceptance(model, schedule, [])
    with pytest.raises(ColasearchError, match="fixed number"):
        measure_acceptance(model, schedule, _prompts(1), k="adaptive")
    with pytest.raises(ColasearchError, match="non-empty"):
        measure_acceptance(model, schedule, [torch.zeros(0, dtype=torch.long)])


def _result(acceptance=None, ideal=1.5, draft_tokens=None):
    extra = {} if acceptance is None else {"acceptance_rate": acceptance}
    if draft_tokens is not None:
        extra["draft_tokens"] = draft_tokens
    return EvalResult(schedule_key="k", task="t", split="search", quality={}, ideal_speedup=ideal, extra=extra)


def test_objective_is_the_expected_speedup():
    objective = SpeculativeObjective(draft_tokens=4)
    assert isinstance(objective, BaseObjective) and SpeculativeObjective.name == "speculative"
    assert objective.directions == ("maximize",)
    assert objective.values(_result(0.8))[0] == pytest.approx(expected_speedup(0.8, 4, 1 / 1.5))
    # The lookahead the acceptance was measured at wins over the objective's default.
    assert objective.values(_result(0.8, draft_tokens=2))[0] == pytest.approx(expected_speedup(0.8, 2, 1 / 1.5))
    better, worse = _result(0.9), _result(0.5)
    assert objective.scalar(better) > objective.scalar(worse)
    cheap, dear = _result(0.7, ideal=2.0), _result(0.7, ideal=1.2)
    assert objective.scalar(cheap) > objective.scalar(dear)


def test_objective_constraints_and_errors():
    objective = SpeculativeObjective(min_acceptance=0.6)
    assert objective.scalar(_result(0.5)) == -math.inf
    assert objective.feasible(_result(0.7))
    with pytest.raises(ColasearchError, match="acceptance_rate"):
        objective.scalar(_result(None))
    with pytest.raises(ColasearchError, match="draft_tokens"):
        SpeculativeObjective(draft_tokens=0)
    with pytest.raises(ColasearchError, match="min_acceptance"):
        SpeculativeObjective(min_acceptance=2.0)


def test_objective_builds_like_the_registered_ones():
    # make_objective calls cls(metric, direction, target_speedup=...); the target floors the expected speedup.
    objective = SpeculativeObjective("acc", "maximize", target_speedup=1.0)
    fast = _result(0.95, ideal=2.0)
    assert objective.values(fast)[0] > 1.0 and objective.feasible(fast)
    assert objective.scalar(_result(0.3, ideal=1.2)) == -math.inf
