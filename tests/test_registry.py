"""The one plug-in registry: lazy built-ins, entry points read once, one-line errors; and the three registries
built on it (searchers, objectives, task kinds)."""

import json
from importlib.metadata import EntryPoint

import pytest

import colasearch.registry as registry
from colasearch.errors import ColasearchError, TaskError
from colasearch.registry import PluginError, Registry

GROUP = "colasearch.tests-registry"


def with_entry_points(monkeypatch, *points: tuple[str, str]) -> list[str]:
    """Entry points of GROUP as ``(name, "module:attr")``; returns the list of groups asked for, one per scan."""
    asked = []

    def entry_points(group):
        asked.append(group)
        return [EntryPoint(name=name, value=value, group=GROUP) for name, value in points] if group == GROUP else []

    monkeypatch.setattr(registry, "entry_points", entry_points)
    return asked


def test_builtins_are_imported_on_first_use_only(monkeypatch):
    with_entry_points(monkeypatch)
    things = Registry("thing", GROUP, {"dumps": "json:dumps", "nested": "json:JSONDecoder.decode"})
    assert things.names() == ["dumps", "nested"] and "dumps" in things and "loads" not in things
    assert not things._loaded  # listing names imported nothing
    assert things.get("dumps") is json.dumps and things["nested"] is json.JSONDecoder.decode


def test_entry_points_are_read_once_and_never_shadow_a_builtin(monkeypatch):
    asked = with_entry_points(monkeypatch, ("loads", "json:loads"), ("dumps", "json:loads"))
    things = Registry("thing", GROUP, {"dumps": "json:dumps"})
    assert things.names() == ["dumps", "loads"] and things.names() == ["dumps", "loads"]
    assert asked == [GROUP]
    assert things.get("dumps") is json.dumps and things.get("loads") is json.loads
    assert things.is_plugin("loads") and not things.is_plugin("dumps") and things.builtin_names() == ["dumps"]


def test_an_unknown_name_is_one_line_listing_the_known_ones(monkeypatch):
    with_entry_points(monkeypatch, ("loads", "json:loads"))
    things = Registry("thing", GROUP, {"dumps": "json:dumps"}, error=TaskError)
    with pytest.raises(TaskError, match=r"^unknown thing 'nope' \(known: dumps, loads\)$"):
        things.get("nope")


def test_a_plugin_that_cannot_be_imported_is_a_user_error_naming_its_entry_point(monkeypatch):
    with_entry_points(monkeypatch, ("broken", "no_such_module_for_colasearch:Thing"))
    things = Registry("thing", GROUP, {})
    with pytest.raises(PluginError, match="thing 'broken' .*no_such_module_for_colasearch:Thing.*cannot be loaded") as error:
        things.get("broken")
    assert isinstance(error.value, ColasearchError) and "\n" not in str(error.value)


def test_register_adds_a_name_directly_or_as_a_decorator(monkeypatch):
    with_entry_points(monkeypatch)
    things = Registry("thing", GROUP, {})

    @things.register("made")
    def made():
        return 1

    assert things.register("other", len) is len
    assert things.names() == ["made", "other"] and things.get("made") is made
    assert dict(things.items()) == {"made": made, "other": len} and list(things) == ["made", "other"]


def test_searchers_objectives_and_task_kinds_share_the_registry():
    from colasearch.objectives import OBJECTIVES, ObjectiveError
    from colasearch.searchers.base import SEARCHERS, SearcherError, searcher_class
    from colasearch.tasks import TASK_KINDS

    assert {"evolution", "mcts", "unified", "random"} <= set(SEARCHERS.builtin_names())
    assert searcher_class("unified").is_baseline and not searcher_class("evolution").is_baseline
    assert {"constrained", "speculative"} <= set(OBJECTIVES) and {"jsonl", "builtin", "composite"} <= set(TASK_KINDS)
    for names, error in ((SEARCHERS, SearcherError), (OBJECTIVES, ObjectiveError), (TASK_KINDS, TaskError)):
        with pytest.raises(error, match="unknown"):
            names.get("nope")


def test_objectives_refuse_options_they_do_not_take_quality_included():
    from colasearch.objectives import ObjectiveError, make_objective

    with pytest.raises(ObjectiveError, match="'quality' takes no lambda"):
        make_objective("quality", "acc", lam=0.1)
    with pytest.raises(ObjectiveError, match="'scalarized' takes no draft_tokens"):
        make_objective("scalarized", "acc", draft_tokens=3)
    with pytest.raises(ObjectiveError, match="'speculative' takes no lambda"):
        make_objective("speculative", "acc", lam=0.1)
    assert make_objective("speculative", "acc", draft_tokens=3).config.draft_tokens == 3
    assert make_objective("quality", "acc", target_speedup=1.5).target is None  # quality has no floor


def test_a_plugin_objective_is_built_from_the_settings_without_code_of_its_own():
    from colasearch.objectives import ConstrainedObjective, ObjectiveError

    class Floored(ConstrainedObjective):
        name = "floored"

    objective = Floored.from_settings("acc", "maximize", target_speedup=1.3)
    assert isinstance(objective, Floored) and objective.target_speedup == 1.3
    with pytest.raises(ObjectiveError, match="'floored' takes no lambda"):
        Floored.from_settings("acc", target_speedup=1.3, lam=0.5)
