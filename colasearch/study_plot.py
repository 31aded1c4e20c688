"""The Pareto front of a study (every evaluation's quality vs ideal speedup, the chosen schedule and baseline),
and of several searchers side by side (``colasearch compare``)."""

from __future__ import annotations

from pathlib import Path

from colasearch.errors import ColasearchError


def study_points(journal: Path) -> tuple[dict[str, list[tuple[float, float]]], str]:
    """Search-split (ideal speedup, quality) per study in a journal, and the quality metric's name."""
    import optuna

    from colasearch.engine.storage import open_storage

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


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not dominated in (speedup up, quality up), sorted by speedup."""
    front = []
    for speedup, quality in sorted(points, key=lambda point: (-point[0], -point[1])):
        if not front or quality > front[-1][1]:
            front.append((speedup, quality))
    return sorted(front)


def plot_pareto(path: Path, records: dict[str, list[tuple[float, float]]], chosen: dict[str, tuple[float, float]],
                target: float, metric: str) -> None:
    """Each searcher's search-split points, its held-out choice (a star), the front and the target, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from colasearch.files import write_atomically

    figure, axes = plt.subplots(figsize=(7, 4.5))
    everything = []
    for index, (name, points) in enumerate(records.items()):
        color = f"C{index}"
        if points:
            axes.scatter([p[0] for p in points], [p[1] for p in points], s=12, alpha=0.4, color=color, label=f"{name} (search)")
            everything.extend(points)
        if name in chosen:
            axes.scatter([chosen[name][0]], [chosen[name][1]], s=80, marker="*", color=color, edgecolor="black",
                         label=f"{name} (held-out)")
    front = pareto_front(everything)
    if front:
        axes.step([p[0] for p in front], [p[1] for p in front], where="post", color="black", linewidth=1,
                  label="Pareto front (search)")
    axes.axvline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target:g}x")
    axes.set_xlabel("ideal speedup")
    axes.set_ylabel(metric)
    axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    write_atomically(path, lambda tmp: figure.savefig(tmp, format="png", dpi=120))
    plt.close(figure)
