"""One owner of the speed target: the search space holds it, the objectives are handed it, one tolerance."""

import re
from pathlib import Path

import pytest

from colasearch.objectives import OBJECTIVES, make_objective
from colasearch.results import EvalResult
from colasearch.searchers.base import SearchSpace
from colasearch.target import TOLERANCE, Target

ROOT = Path(__file__).resolve().parents[2]


def result(speedup: float) -> EvalResult:
    return EvalResult(schedule_key="k", task="t", split="search", quality={"acc": 0.5}, ideal_speedup=speedup,
                      measured_speedup=speedup, extra={"acceptance_rate": 1.0, "draft_tokens": 1})


def test_a_speedup_on_the_target_reaches_it_through_rounding_and_one_below_does_not():
    target = Target(1.25)
    assert target.reaches(1.25) and target.reaches(1.25 * (1 - TOLERANCE / 10)) and target.reaches(1.3)
    assert not target.reaches(1.25 * (1 - 10 * TOLERANCE))
    assert Target.of(None) is None and Target.of(target) is target and Target.of(2) == Target(2.0)


@pytest.mark.parametrize("name", ["constrained", "scalarized", "pareto", "measured"])
def test_objectives_handed_the_space_target_answer_feasible_as_the_space_does(tiny8, name):
    space = SearchSpace.for_model(tiny8, target_speedup=1.25)
    objective = make_objective(name, "acc", target_speedup=space.target)
    assert objective.target == space.target and objective.target_speedup == 1.25
    for speedup in (1.0, 1.2, 1.25 * (1 - 10 * TOLERANCE), 1.25 * (1 - TOLERANCE / 10), 1.25, 1.4):
        assert objective.feasible(result(speedup)) == space.reaches(speedup), speedup


def test_the_speculative_objective_floors_the_expected_speedup_by_the_same_target():
    # Acceptance 1 with one draft token at a draft costing 1/4 of the model: (1 + 1) / (1/4 + 1) = 1.6 expected.
    assert make_objective("speculative", "acc", target_speedup=Target(1.6)).feasible(result(4.0))
    assert not make_objective("speculative", "acc", target_speedup=Target(1.7)).feasible(result(4.0))


def test_objectives_without_a_target_hold_none():
    for name in ("quality", "scalarized", "pareto", "speculative"):
        assert make_objective(name, "acc").target is None and make_objective(name, "acc").target_speedup is None
    assert set(OBJECTIVES) >= {"quality", "scalarized", "pareto", "speculative"}


def test_a_target_the_best_chain_reaches_through_rounding_is_not_refused_as_impossible(tiny8):
    best = SearchSpace.for_model(tiny8).max_speedup()
    space = SearchSpace.for_model(tiny8, target_speedup=best * (1 + TOLERANCE / 10))
    assert space.reaches(best)  # what meets_target says of the best chain
    space.check_target()  # so the target is possible


def test_the_tolerance_is_written_once():
    pattern = re.compile(r"\(\s*1\s*-\s*(1e-9|TOLERANCE)\s*\)")
    sources = [*(ROOT / "colasearch").rglob("*.py"), *(ROOT / "searchers").glob("*.py"),
               *(ROOT / "objectives").glob("*.py")]
    writers = sorted(str(path.relative_to(ROOT)) for path in sources if pattern.search(path.read_text()))
    assert writers == ["colasearch/target.py"]
