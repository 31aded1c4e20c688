from collections import Counter

import optuna
import pytest

from colasearch.errors import ColasearchError
from colasearch.engine import InProcessExecutor, RunStore, run_search
from colasearch.searchers.base import make_searcher
from colasearch.searchers.random_search import RandomSearcher


@pytest.mark.parametrize("name", ["mcts", "optuna", "rl", "random", "unified"])
def test_budget_is_distinct_evaluations_and_nothing_runs_twice(name, planted):
    space, evaluator, objective = planted
    searcher = make_searcher(name, space, objective, seed=0)
    outcome = run_search(searcher, InProcessExecutor(evaluator), objective, 12)
    assert outcome.evaluations <= 12 and outcome.computed == outcome.evaluations == len(evaluator.evaluated)
    assert max(Counter(evaluator.evaluated).values()) == 1


def test_budget_zero_is_refused(planted):
    space, evaluator, objective = planted
    with pytest.raises(ColasearchError, match="budget must be at least 1"):
        run_search(RandomSearcher(space, objective), InProcessExecutor(evaluator), objective, 0)


def test_a_batching_executor_gives_the_searcher_several_at_once(planted):
    space, evaluator, objective = planted
    searcher = make_searcher("mcts", space, objective, seed=0)
    outcome = run_search(searcher, InProcessExecutor(evaluator, batch=4), objective, 20)
    assert max(Counter(evaluator.evaluated).values()) == 1 and outcome.evaluations == len(evaluator.evaluated)
    # Every proposal is projected onto the target: 2 of the 6 skippable layers, 15 schedules in all.
    assert outcome.evaluations == 15 and all(space.meets_target(schedule) for schedule, _ in outcome.records)
    assert objective.feasible(outcome.best_result)


def test_every_evaluation_is_a_complete_trial_in_the_journal(tmp_path, planted):
    space, evaluator, objective = planted
    journal = tmp_path / "run.journal"
    store = RunStore(journal, "study", objective.directions)
    outcome = run_search(make_searcher("random", space, objective, seed=0), InProcessExecutor(evaluator), objective, 6,
                         store=store)
    # Read back as optuna-dashboard would: a plain journal storage.
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    trials = optuna.load_study(study_name="study", storage=storage).trials
    assert len(trials) == 6 and all(trial.state == optuna.trial.TrialState.COMPLETE for trial in trials)
    assert [trial.user_attrs["key"] for trial in trials] == [schedule.key for schedule, _ in outcome.records]
    assert [trial.values[0] for trial in trials] == [result.quality["acc"] for _, result in outcome.records]
    assert [schedule for schedule, _ in store.records()] == [schedule for schedule, _ in outcome.records]


def test_an_existing_run_is_not_overwritten_without_resume(tmp_path, planted):
    space, evaluator, objective = planted
    journal = tmp_path / "run.journal"
    run_search(make_searcher("random", space, objective), InProcessExecutor(evaluator), objective, 2,
               store=RunStore(journal, "study", objective.directions))
    with pytest.raises(ColasearchError, match="--resume"):
        RunStore(journal, "study", objective.directions)
    assert len(RunStore(journal, "study", objective.directions, resume=True).records()) == 2


def test_an_unusable_storage_is_a_clear_error(tmp_path, planted):
    _, _, objective = planted
    with pytest.raises(ColasearchError, match="cannot open study storage"):
        RunStore("nosuchdialect://x", "study", objective.directions)
