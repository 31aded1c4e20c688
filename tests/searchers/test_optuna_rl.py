import pytest

from colasearch.search import InProcessExecutor, run_search
from colasearch.searchers.base import SearcherError, make_searcher
from colasearch.searchers.optuna_search import OptunaSearcher
from colasearch.searchers.rl import RLSearcher


@pytest.mark.parametrize("sampler", ["tpe", "gp", "nsga2"])
def test_optuna_samplers_only_spend_evaluations_on_schedules_that_reach_the_target(sampler, planted):
    space, evaluator, objective = planted
    searcher = OptunaSearcher(space, objective, seed=0, sampler=sampler, startup_trials=4)
    outcome = run_search(searcher, InProcessExecutor(evaluator), objective, 8)
    assert outcome.evaluations == 8
    assert all(space.meets_target(schedule) for schedule, _ in outcome.records)
    # Infeasible proposals are told to the study as constraint violations, not evaluated.
    trials = searcher.study.trials
    violations = [trial for trial in trials if trial.system_attrs["constraints:speed_target_shortfall"] > 0]
    assert all(trial.values[0] <= -1e8 for trial in violations)
    feasible = {tuple(sorted(trial.params.items())) for trial in trials if trial not in violations}
    assert len(feasible) == 8  # each distinct feasible proposal is one evaluation; repeats are answered from cache


def test_optuna_unknown_sampler(planted):
    space, _, objective = planted
    with pytest.raises(SearcherError, match="unknown sampler 'cma'"):
        make_searcher("optuna", space, objective, sampler="cma")


def test_optuna_repeats_are_searchable(tiny8, planted):
    from colasearch.searchers.base import SearchSpace

    _, evaluator, objective = planted
    space = SearchSpace.for_model(tiny8, target_speedup=1.25, repeats=True)
    searcher = OptunaSearcher(space, objective, seed=0)
    proposals = searcher.ask(6)
    assert any(param.startswith("repeat_") for param in searcher.study.trials[0].params)
    assert all(space.meets_target(schedule) for schedule in proposals)


def test_rl_ramps_the_target_and_ends_with_the_most_probable_units(planted):
    space, evaluator, objective = planted
    searcher = RLSearcher(space, objective, seed=0, budget=13, ramp_rounds=3, batch=4)
    first_round = searcher.ask(4)
    # The first round's target is a third of the way to 1.25x, so fewer units are skipped.
    assert all(1.0 < space.speedup(schedule) < 1.25 for schedule in first_round)
    outcome = run_search(RLSearcher(space, objective, seed=0, budget=13, ramp_rounds=3, batch=4),
                         InProcessExecutor(evaluator), objective, 13)
    assert outcome.evaluations <= 13
    final_searcher = RLSearcher(space, objective, seed=0, budget=13, ramp_rounds=3, batch=4)
    run_search(final_searcher, InProcessExecutor(evaluator), objective, 13)
    final = final_searcher.final_schedule()
    assert space.meets_target(final)
    assert final.key in {schedule.key for schedule, _ in outcome.records}
    # The learned policy prefers the units whose planted loss is lowest.
    best_value, best_skipped = evaluator.best_skip_set(space)
    assert evaluator.quality(final) == pytest.approx(best_value)
