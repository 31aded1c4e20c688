"""A run killed with SIGKILL resumes: no finished evaluation is lost, recomputed or counted twice."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter

import optuna
import pytest

from colasearch.engine import InProcessExecutor, RunStore, run_search
from colasearch.searchers.base import make_searcher

SCRIPT = textwrap.dedent("""
    import sys
    from colasearch.engine import InProcessExecutor, RunStore, run_search
    from colasearch.engine.testing import PlantedEvaluator, PlantedObjective
    from colasearch.searchers.base import SearchSpace, make_searcher
    from colasearch.testing import make_tiny_model

    model = make_tiny_model("llama", num_layers=8)
    space = SearchSpace.for_model(model, target_speedup=1.25)
    evaluator = PlantedEvaluator(model, PlantedEvaluator.random_weights(8, seed=1), delay=0.15)
    objective = PlantedObjective(1.25)
    store = RunStore(sys.argv[1], "study", objective.directions, resume=True)
    run_search(make_searcher(sys.argv[2], space, objective, seed=0), InProcessExecutor(evaluator),
               objective, 12, store=store)
""")


def _finished_trials(journal):
    if not journal.exists():
        return 0
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    try:
        return len(optuna.load_study(study_name="study", storage=storage).trials)
    except KeyError:
        return 0


@pytest.mark.parametrize("name", ["mcts", "optuna"])
def test_sigkill_then_resume(name, tmp_path, planted):
    space, evaluator, objective = planted
    journal = tmp_path / "run.journal"
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    process = subprocess.Popen([sys.executable, str(script), str(journal), name], env={**os.environ})
    deadline = time.time() + 60
    while _finished_trials(journal) < 5 and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    stored_before = _finished_trials(journal)
    # 12 of the 15 schedules on the target (every proposal is projected there), so none is proposed twice.
    assert 5 <= stored_before < 12

    store = RunStore(journal, "study", objective.directions, resume=True)
    outcome = run_search(make_searcher(name, space, objective, seed=0), InProcessExecutor(evaluator),
                         objective, 12, store=store)
    assert outcome.reused == stored_before
    assert outcome.computed == 12 - stored_before == len(evaluator.evaluated)
    assert outcome.evaluations == 12 == _finished_trials(journal)
    keys = [trial.user_attrs["key"] for trial in store.study.trials]
    assert max(Counter(keys).values()) == 1

    # The resumed run ends where an uninterrupted one does.
    evaluator.evaluated.clear()
    clean = run_search(make_searcher(name, space, objective, seed=0), InProcessExecutor(evaluator),
                       objective, 12)
    assert clean.best.key == outcome.best.key
    assert [s.key for s, _ in clean.records] == [s.key for s, _ in outcome.records]
