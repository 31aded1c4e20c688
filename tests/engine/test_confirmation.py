"""The final choice, confirmed on items the search never used, before it replaces the run's start."""

import random

from colasearch.objectives import make_objective
from colasearch.results import EvalResult
from colasearch.engine import InProcessExecutor, run_search
from colasearch.engine.confirmation import (CONFIRM_ATTRIBUTE, confirmation_plan, confirmation_reserve,
                                            unconfirmed_reason)
from colasearch.engine.storage import RunStore
from colasearch.engine.testing import PerItemPlantedEvaluator
from colasearch.searchers.base import SearchSpace
from colasearch.tasks.splits import Split

from tests.engine.test_racing_loop import ScriptedSearcher

START, LUCKY, BETTER = [(3, "all")], [(5, "all")], [(1, "all")]


class ConfirmingEvaluator(PerItemPlantedEvaluator):
    """The planted problem with a confirmation split of its own items. ``lucky`` schedules are right on every
    search item and on no confirmation item: a lead that is only luck on the items the search saw."""

    def __init__(self, model, weights, confirm_items: int = 16, lucky=()):
        super().__init__(model, weights, items=32)
        self.splits = Split(search=[None] * 32, heldout=[None], confirm=[None] * confirm_items)
        generator = random.Random(11)
        self.confirm_difficulties = [generator.uniform(0.3, 1.0) for _ in range(confirm_items)]
        self.lucky = set(lucky)
        self.calls: list[str] = []

    def evaluate(self, schedule, split="search", items=None):
        self.calls.append(split)
        result = super().evaluate(schedule, "search", items)
        if split == "confirm":
            quality = self.quality(schedule)
            values = [float(quality >= difficulty) for difficulty in self.confirm_difficulties[:items]]
        else:
            values = result.per_item["acc"]
        if schedule is not None and schedule.key in self.lucky:
            values = [float(split != "confirm")] * len(values)
        return EvalResult(result.schedule_key, self.task, split, {"acc": sum(values) / len(values)},
                          result.ideal_speedup, extra={"items": len(values), "per_item": {"acc": values}})


def _run(tiny8, proposals, lucky=(), budget=10, confirm_items=16, store=None):
    weights = {(layer, "all"): 0.02 for layer in range(8)}
    weights[(3, "all")] = 0.4   # the start loses the items harder than 0.6
    space = SearchSpace.for_model(tiny8, target_speedup=1.0)
    evaluator = ConfirmingEvaluator(tiny8, weights, confirm_items,
                                    lucky=[space.schedule_skipping(units).key for units in lucky])
    objective = make_objective("quality", metric="acc")
    searcher = ScriptedSearcher(space, objective, proposals, seed=0)
    searcher.init_schedules = (space.schedule_skipping(START),)
    outcome = run_search(searcher, InProcessExecutor(evaluator), objective, budget=budget, evaluator=evaluator,
                         project=False, store=store)
    return outcome, evaluator, space


def test_a_lead_that_does_not_hold_on_unused_items_leaves_the_start_in_place(tiny8):
    outcome, evaluator, space = _run(tiny8, [LUCKY], lucky=[LUCKY])
    start, lucky = space.schedule_skipping(START), space.schedule_skipping(LUCKY)
    # The lucky schedule clears the bound on the search items (every one right) ...
    assert outcome.highest.key == lucky.key and outcome.choice_z == 1.0
    # ... is scored again with the start on the 16 confirmation items, loses there, and the start ships.
    assert evaluator.calls.count("confirm") == 2
    assert [(check.schedule_key, check.holds) for check in outcome.confirmations] == [(lucky.key, False)]
    assert outcome.confirmations[0].mean < 0 and outcome.confirmations[0].items == 16
    assert outcome.best.key == start.key and outcome.best_result.split == "search"
    # Both confirmation evaluations count against the budget, item by item.
    assert outcome.items_spent == outcome.prior_items + 32 + 32 + 2 * 16 and outcome.confirm_items == 16


def test_a_lead_that_holds_ships_and_the_best_holding_one_is_taken(tiny8):
    outcome, _, space = _run(tiny8, [LUCKY, BETTER], lucky=[LUCKY])
    better = space.schedule_skipping(BETTER)
    assert {check.schedule_key: check.holds for check in outcome.confirmations} == {
        better.key: True, space.schedule_skipping(LUCKY).key: False}
    assert outcome.best.key == better.key


def test_without_a_contender_nothing_is_confirmed_and_the_search_keeps_the_whole_budget(tiny8):
    worse = [(3, "all"), (4, "all")]
    outcome, evaluator, _ = _run(tiny8, [worse] * 3)
    assert "confirm" not in evaluator.calls and outcome.confirmations == [] and outcome.highest is None


def test_a_quarter_of_the_budget_is_held_back_and_shared_evenly_by_the_start_and_the_contenders():
    assert confirmation_reserve(30 * 256, 1024) == 1920
    assert confirmation_reserve(30 * 256, 8) == confirmation_reserve(100, 1024) == 0  # too few items to be worth it
    # One contender gets half of what is left, on as many items as that pays for (a multiple of 16) ...
    assert confirmation_plan(1920, 1, 1024) == (1, 960) and confirmation_plan(960, 1, 512) == (1, 480)
    # ... three get a quarter each, and a split smaller than the share is used whole.
    assert confirmation_plan(960, 3, 512) == (3, 240) and confirmation_plan(1920, 1, 744) == (1, 744)
    # Where the share falls below the smallest level, fewer contenders are confirmed, then none.
    assert confirmation_plan(40, 3, 512) == (1, 16) and confirmation_plan(20, 3, 512) == (0, 0)


def test_a_resumed_run_reads_the_confirmation_back_instead_of_scoring_it_again(tiny8, tmp_path):
    journal = tmp_path / "run.journal"
    store = RunStore(journal, "confirmation-test", ("maximize",))
    first, _, _ = _run(tiny8, [LUCKY], lucky=[LUCKY], store=store)
    store.close()
    assert len(store.attribute(CONFIRM_ATTRIBUTE)) == 2
    # Trials stay search-split results only: what optuna-dashboard and a resume read as evaluations.
    assert all(result.split == "search" for _, result in store.records())
    again = RunStore(journal, "confirmation-test", ("maximize",), resume=True)
    second, evaluator, _ = _run(tiny8, [LUCKY], lucky=[LUCKY], store=again)
    again.close()
    assert evaluator.calls == [] and second.computed == 0
    assert second.best.key == first.best.key and second.items_spent == first.items_spent
    assert [check.to_dict() for check in second.confirmations] == [check.to_dict() for check in first.confirmations]


def test_the_in_process_executor_runs_each_split_on_its_own(tiny8):
    _, evaluator, space = _run(tiny8, [], budget=1)
    executor = InProcessExecutor(evaluator)
    start, other = space.schedule_skipping(START), space.schedule_skipping(BETTER)
    evaluator.calls.clear()
    executor.submit(start, None, "confirm")
    executor.submit(other)
    executor.submit(other, None, "confirm")
    finished = [executor.next_finished() for _ in range(3)]
    assert sorted((schedule.key, result.split) for schedule, result in finished) == sorted(
        [(start.key, "confirm"), (other.key, "search"), (other.key, "confirm")])
    assert executor.pending() == 0


def test_a_choice_shipped_without_a_confirmation_says_why(tiny8):
    # No items after the held-out split: the bound's choice ships as it is, and the run must say it is unconfirmed.
    outcome, evaluator, space = _run(tiny8, [LUCKY], lucky=[LUCKY], confirm_items=0)
    lucky = space.schedule_skipping(LUCKY)
    assert "confirm" not in evaluator.calls and outcome.best.key == lucky.key
    assert unconfirmed_reason(outcome.start, outcome.best, outcome.confirmations, 0) == \
        "there is no confirmation split: --confirm-size 0, or no items left after the held-out split"
    assert "budget" in unconfirmed_reason(outcome.start, outcome.best, [], 64)
    # The start shipping, a confirmed choice, or a baseline (no start) need no word.
    assert unconfirmed_reason(outcome.start, outcome.start, [], 0) is None
    confirmed, _, _ = _run(tiny8, [LUCKY, BETTER], lucky=[LUCKY])
    assert unconfirmed_reason(confirmed.start, confirmed.best, confirmed.confirmations, 16) is None
    assert unconfirmed_reason(None, lucky, [], 0) is None


def test_a_confirmation_saved_before_evaluations_had_typed_fields_is_read_back(tiny8, tmp_path):
    journal = tmp_path / "run.journal"
    store = RunStore(journal, "confirmation-test", ("maximize",))
    first, _, _ = _run(tiny8, [LUCKY], lucky=[LUCKY], store=store)
    store.close()
    again = RunStore(journal, "confirmation-test", ("maximize",), resume=True)
    # The layout results had on disk before: items and per-item values inside ``extra``.
    typed = ("items", "per_item", "expert_skip_ratio", "acceptance_rate", "accepted_fraction", "draft_tokens",
             "estimated", "subset_quality")
    again.set_attribute(CONFIRM_ATTRIBUTE, {
        key: {**{name: value for name, value in saved.items() if name not in typed},
              "extra": {"items": saved["items"], "per_item": saved["per_item"]}}
        for key, saved in again.attribute(CONFIRM_ATTRIBUTE).items()})
    second, evaluator, _ = _run(tiny8, [LUCKY], lucky=[LUCKY], store=again)
    again.close()
    assert "confirm" not in evaluator.calls and second.best.key == first.best.key
    assert [check.to_dict() for check in second.confirmations] == [check.to_dict() for check in first.confirmations]
