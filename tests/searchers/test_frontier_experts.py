"""``frontier`` with MoE expert thresholds as knobs: bisection for one token group, a staircase for two."""

import math

import pytest

from colasearch.evaluator import Evaluator
from colasearch.objectives import make_objective
from colasearch.executor import InProcessExecutor
from colasearch.engine.loop import run_search
from colasearch.engine.session import RunContext, search_with
from colasearch.searchers.base import SearcherError, SearchSpace
from colasearch.searchers.frontier import FrontierSearcher
from colasearch.searchers.thresholds import bisection, staircase
from colasearch.tasks import load_task
from colasearch.tasks.char_tokenizer import CharTokenizer
from colasearch.testing import make_tiny_model

TEXT = ("The river ran past the mill and under the old stone bridge, where children threw pebbles. "
        "In winter the water froze and the town skated from the church to the market square. ") * 12
GRID, TOLERANCE, TARGET = 64, 0.03, 0.5


class CountingEvaluator(Evaluator):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.evaluated = 0

    def _quality(self, schedule, split, count):
        self.evaluated += 1
        return super()._quality(schedule, split, count)


@pytest.fixture(scope="module")
def moe():
    return make_tiny_model("mixtral", num_layers=4)


@pytest.fixture(scope="module")
def fidelity_task(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "river.txt"
    path.write_text(TEXT)
    return f"fidelity:{path}"


def _evaluator(moe, task_spec):
    return CountingEvaluator.from_options(moe, CharTokenizer(), load_task(task_spec, window=32, max_windows=24),
                                          search_size=8, heldout_size=4, expert_skip_items=8)


def test_one_group_bisects_to_the_target_ratio_with_least_kl(moe, fidelity_task):
    evaluator = _evaluator(moe, fidelity_task)
    objective = make_objective("quality", "kl", "minimize")
    space = SearchSpace.for_model(moe)
    searcher = FrontierSearcher(space, objective, experts=True, expert_skip_ratio=TARGET, expert_grid=GRID,
                                expert_tolerance=TOLERANCE)
    outcome = run_search(searcher, InProcessExecutor(evaluator), objective, budget=40, evaluator=evaluator)
    assert searcher.finished and len(searcher.importance) == 4 and math.isclose(sum(searcher.importance), 1.0)
    # A bisection of the grid: at most log2(grid) evaluations, each one counted by the evaluator.
    assert outcome.evaluations == evaluator.evaluated <= math.ceil(math.log2(GRID))
    schedule, result = searcher.expert_best
    assert schedule.experts is not None and schedule.experts.thresholds["text"] > 0
    assert abs(result.expert_skip_ratio - TARGET) <= TOLERANCE
    reaching = [r.quality["kl"] for _, r in outcome.records if r.expert_skip_ratio >= TARGET - TOLERANCE]
    assert result.quality["kl"] == min(reaching)
    # The ideal speedup the evaluator reports follows the measured skip ratio.
    assert result.ideal_speedup == pytest.approx(
        evaluator.cost_model.ideal_speedup(schedule, result.expert_skip_ratio))
    assert result.ideal_speedup > 1.0


def test_speed_target_sets_the_skip_ratio_and_importance_is_stored(moe, fidelity_task, tmp_path):
    tokenizer, task = CharTokenizer(), load_task(fidelity_task, window=32, max_windows=24)
    evaluator = Evaluator.from_options(moe, tokenizer, task, search_size=8, heldout_size=4, expert_skip_items=8)
    context = RunContext("tiny-mixtral", moe, tokenizer, task, evaluator, fidelity_task)
    storage = tmp_path / "study.journal"
    outcome, _ = search_with(context, "frontier", budget=10, target_speedup=1.2, seed=0, objective_name="constrained",
                             storage=storage, options={"experts": True, "expert_grid": 32})
    searcher = outcome.searcher
    cost = evaluator.cost_model
    needed = (1 - 1 / 1.2) * cost.params_per_token(None) / sum(cost.routed)
    assert searcher.target_skip_ratio == pytest.approx(needed)
    assert outcome.store.attribute("expert_importance") == pytest.approx(list(searcher.importance))
    # The run loop's best (constrained: quality at the speed target) reaches 1.2x by the measured ratio.
    assert outcome.best.experts is not None and outcome.best_result.ideal_speedup >= 1.2 * (1 - TOLERANCE)


def test_two_group_staircase_finds_the_best_reaching_point_in_linear_evaluations():
    grid = 20

    def ratio(point):  # monotone in both thresholds, not additive
        i, j = point
        return 1 - (1 - 0.6 * i / grid) * (1 - 0.9 * (j / grid) ** 1.5)

    def quality(point):  # more skipping never helps
        i, j = point
        return -(3.0 * i + 1.0 * j ** 1.2)

    walk, visited = staircase(grid, 0.45, 0.0), []
    point = next(walk)
    try:
        while True:
            visited.append(point)
            point = walk.send((ratio(point), quality(point)))
    except StopIteration:
        pass
    assert len(visited) <= 2 * (grid + 1)
    reaching = [(i, j) for i in range(grid + 1) for j in range(grid + 1) if ratio((i, j)) >= 0.45]
    best = max(reaching, key=quality)
    assert best in visited and max((p for p in visited if ratio(p) >= 0.45), key=quality) == best


def test_bisection_is_logarithmic_and_least():
    walk, visited, ratios = bisection(256, 0.3, 0.0), [], [min(1.0, (index / 256) ** 2) for index in range(257)]
    point = next(walk)
    try:
        while True:
            visited.append(point)
            point = walk.send((ratios[point[0]], 0.0))
    except StopIteration:
        pass
    least = min(index for index in range(257) if ratios[index] >= 0.3)
    assert len(visited) <= 8 and (least,) in visited


def test_bad_expert_options_are_refused(moe):
    space = SearchSpace.for_model(moe)
    objective = make_objective("quality", "kl", "minimize")
    with pytest.raises(SearcherError, match="expert_grid"):
        FrontierSearcher(space, objective, experts=True, expert_skip_ratio=0.5, expert_grid=1)
    with pytest.raises(SearcherError, match="expert_skip_ratio"):
        FrontierSearcher(space, objective, experts=True, expert_skip_ratio=1.5)
    with pytest.raises(SearcherError, match="MoE"):
        FrontierSearcher(SearchSpace.for_model(make_tiny_model("llama"), target_speedup=1.2), objective, experts=True)
