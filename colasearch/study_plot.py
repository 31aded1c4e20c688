"""The Pareto front of a study: every evaluation's quality vs ideal speedup, the chosen schedule and baseline."""

from __future__ import annotations

from pathlib import Path

from colasearch.errors import ColasearchError


def study_points(journal: Path) -> tuple[dict[str, list[tuple[float, float]]], str]:
    """Search-split (ideal speedup, quality) per study in a journal, and the quality metric's name."""
    import optuna

    from colasearch.search.storage import open_storage

    if not journal.is_file():
        raise ColasearchError(f"study journal not found: {journal}")
    storage = open_storage(journal)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    points: dict[str, list[tuple[float, float]]] = {}
    metric = None
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        label = summary.study_name.split("|")[3] if summary.study_name.count("|") >= 3 else summary.study_name
        for trial in study.get_trials(deepcopy=False):
            result = trial.user_attrs.get("result")
            if not result:
                continue
            metric = metric or next(iter(result["quality"]))
            points.setdefault(label, []).append((result["ideal_speedup"], result["quality"][metric]))
    if not points:
        raise ColasearchError(f"{journal} holds no finished evaluations")
    return points, metric


def draw_study(journal: Path, png: Path, schedule_path: Path | None = None) -> Path:
    """Draw the study; the chosen schedule (default: the YAML next to the journal) and its baseline are marked."""
    from colasearch.cli.run_commands import plot_pareto
    from colasearch.schedule import Schedule

    points, metric = study_points(journal)
    chosen: dict[str, tuple[float, float]] = {}
    target = 1.0
    schedule_path = schedule_path or journal.with_suffix(".yaml")
    if schedule_path.is_file():
        schedule = Schedule.load(schedule_path)
        metrics, provenance = schedule.metrics, schedule.provenance
        if metrics and metrics.quality and metrics.speedup:
            label = provenance.searcher if provenance and provenance.searcher in points else next(iter(points))
            chosen[label] = (metrics.speedup.ideal, metrics.quality.heldout)
            metric = metrics.quality.metric
        extra = provenance.model_extra if provenance else {}
        target = float(extra.get("target_speedup", 1.0))
        baseline = extra.get("baseline")
        if baseline:
            points.setdefault(f"{baseline['name']} (baseline)", [])
            chosen[f"{baseline['name']} (baseline)"] = (baseline["ideal_speedup"], baseline["heldout"])
    plot_pareto(png, points, chosen, target, metric)
    return png
