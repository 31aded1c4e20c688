import warnings

import pytest

from colasearch.engine import InProcessExecutor, run_search
from colasearch.searchers.base import SearcherError, make_searcher
from colasearch.searchers.optuna_search import OptunaSearcher, _set_constraint as set_constraint
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
    violations = [trial for trial in trials if trial.user_attrs["constraint"] > 0]
    assert all(trial.values[0] <= -1e8 for trial in violations)
    feasible = {tuple(sorted(trial.params.items())) for trial in trials if trial not in violations}
    # No schedule is evaluated twice; the loop's projection may map several proposals onto one schedule.
    assert len(set(evaluator.evaluated)) == len(evaluator.evaluated) <= len(feasible)


@pytest.mark.parametrize("sampler", ["tpe", "gp", "nsga2"])
def test_optuna_constraint_reaches_the_study_without_deprecation_warnings(sampler, planted):
    """Optuna 4 (constraints_func reading the user attr) and 5 (Trial.set_constraint) alike."""
    space, _, objective = planted
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        searcher = OptunaSearcher(space, objective, seed=0, sampler=sampler, startup_trials=0)
        study = searcher.study
        values = {"infeasible": 100.0, "feasible": 1.0}
        for label, shortfall in (("infeasible", 0.3), ("feasible", 0.0)):
            trial = study.ask()
            set_constraint(trial, shortfall)
            value = values[label]
            study.tell(trial, value if sampler != "nsga2" else (value, 1.0))
    best = study.best_trial if sampler != "nsga2" else study.best_trials[0]
    assert best.values[0] == 1.0  # the better-valued trial is infeasible, so it is not the best
    assert [trial.user_attrs["constraint"] for trial in study.trials] == [0.3, 0.0]


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


def test_rl_samples_land_on_the_target_and_rounds_open_with_the_mode(planted):
    space, evaluator, objective = planted
    searcher = RLSearcher(space, objective, seed=0, batch=4)
    first_round = searcher.ask(5)
    assert first_round[0].key == searcher.final_schedule().key  # the policy's mode opens the round
    for schedule in first_round:  # every proposal reaches the target and is minimal: no curriculum below it
        assert space.meets_target(schedule)
        skipped = [(layer, "all") for layer in range(8) if layer not in {entry.layer for entry in schedule.layers}]
        assert not any(space.meets_target(space.chain_skipping([unit for unit in skipped if unit != back]))
                       for back in skipped)
    searcher = RLSearcher(space, objective, seed=0, batch=4)
    outcome = run_search(searcher, InProcessExecutor(evaluator), objective, 13)
    assert outcome.evaluations <= 13
    final = searcher.final_schedule()
    assert space.meets_target(final)
    # The learned policy prefers the units whose planted loss is lowest.
    best_value, _ = evaluator.best_skip_set(space)
    assert outcome.best_value == pytest.approx(best_value)
