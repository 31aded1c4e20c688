import pytest

from colasearch.errors import ColasearchError
from colasearch.results import EvalResult
from colasearch.schedule import Metrics, Provenance, QualityMetric, Schedule, SpeedupMetric
from colasearch.engine.storage import RunStore
from colasearch.study_plot import draw_study, study_points


def _study(tmp_path):
    journal = tmp_path / "run.journal"
    store = RunStore(journal, "colasearch|tiny|words|mcts|constrained|target=1.2", ["maximize"])
    for index, chain in enumerate(([0, 1, 2, 3], [0, 1, 3], [0, 3])):
        schedule = Schedule.from_layers(chain)
        result = EvalResult(schedule.key, "words", "search", {"acc": 0.9 - 0.2 * index}, 1.0 + 0.3 * index)
        store.add(schedule, result, [result.quality["acc"]], True)
    chosen = Schedule.from_layers([0, 1, 3], metrics=Metrics(quality=QualityMetric(metric="acc", heldout=0.6),
                                                           speedup=SpeedupMetric(ideal=1.3)),
                                  provenance=Provenance(searcher="mcts", target_speedup=1.2,
                                                        baseline={"name": "unified", "heldout": 0.4, "ideal_speedup": 1.3}))
    chosen.save(tmp_path / "run.yaml")
    return journal


def test_a_study_is_drawn_with_its_choice_and_baseline(tmp_path):
    journal = _study(tmp_path)
    points, metric = study_points(journal)
    assert metric == "acc" and points == {"mcts": [(1.0, 0.9), (1.3, 0.7), (1.6, 0.5)]}
    png = draw_study(journal, tmp_path / "front.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_a_missing_or_empty_study_is_a_clear_error(tmp_path):
    with pytest.raises(ColasearchError, match="not found"):
        study_points(tmp_path / "none.journal")
    RunStore(tmp_path / "empty.journal", "colasearch|a|b|c|d", ["maximize"])
    with pytest.raises(ColasearchError, match="no finished evaluations"):
        study_points(tmp_path / "empty.journal")
