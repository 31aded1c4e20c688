"""Every optional hook of a plug-in is declared on its base class with a default, so the run calls it plainly."""

import pytest

from colasearch.engine.session import resolve_search_metric
from colasearch.searchers.base import BaseSearcher, SearcherError
from colasearch.tasks.base import Task


class Plain(BaseSearcher):
    """A searcher that offers none of the optional hooks."""

    name = "plain"

    def ask(self, n=1):
        return []

    def tell(self, schedule, result):
        pass


class PlainTask(Task):
    evaluated_as = "scoring"
    name = "plain"
    primary_metric = "acc"
    metric_directions = {"acc": "maximize", "nll": "minimize"}

    def items(self):
        return []


def test_a_searcher_without_hooks_gets_their_defaults(planted):
    space, _, objective = planted
    searcher = Plain(space, objective)
    assert searcher.prepare_cost == 0 and searcher.oracle is False
    assert searcher.study_attributes() == {}
    assert searcher.use_importance([0.5, 0.25]) is None   # nothing calibrated: nothing to take back
    with pytest.raises(SearcherError, match="no oracle mode"):
        searcher.oracle_report()


def test_a_task_without_smooth_or_dense_metrics_searches_on_its_primary_metric():
    task = PlainTask()
    assert dict(task.smooth_metrics) == {} and task.dense_metric is None
    assert [resolve_search_metric(task, name) for name in ("primary", "smooth", "dense", "nll")] == \
        ["acc", "acc", "acc", "nll"]


def test_the_run_finds_no_hook_by_probing():
    """The hooks are called, not looked for: no ``hasattr``/``getattr`` on a searcher or task in the run."""
    import inspect

    from colasearch.engine import loop, session

    for module in (loop, session):
        source = inspect.getsource(module)
        for hook in ("use_importance", "study_attributes", "prepare_cost", "smooth_metrics", "dense_metric"):
            assert f'"{hook}"' not in source, f"{module.__name__} probes for {hook}"
