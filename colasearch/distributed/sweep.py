"""A grid of models x tasks x searchers x targets as one Ray job: one schedule file per cell and a summary.

Each cell is one :class:`~colasearch.run_config.RunConfig` run by :func:`colasearch.find_schedule`, the code
behind ``colasearch run`` (same files), executed as a Ray task. A cell whose schedule file already exists is
skipped, so re-submitting a sweep only does what is missing.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from colasearch.errors import ColasearchError, validation_message
from colasearch.files import WriteFailed, read_yaml, slug, spreadsheet_safe, write_text_atomically


# ``run`` options a sweep file may not pass in ``extra_args``: they override the cell's own, so they would send
# a cell's schedule, study or Ray connection elsewhere, load code, or replace results. A sweep file is shared
# like data; these stay with whoever types the command.
REFUSED_EXTRA_ARGS = ("--out", "--storage", "--address", "--overwrite", "--resume", "--config", "--lm-eval-include")
# ``run``'s flags whose RunConfig field has another name; every other flag is its field's name in kebab case.
FLAG_FIELDS = {"--task": "tasks", "-t": "tasks", "--option": "searcher_options", "-o": "searcher_options",
               "-m": "model", "-b": "budget", "-s": "searcher"}
REPEATABLE = ("tasks", "init")  # a repeated flag adds to the cell's own, as on the command line


def run_fields(extra_args: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``colasearch run`` flags (``--sub-blocks``, ``--option max_swaps=2``, ``--budget=40``) as RunConfig fields.
    Raises ValueError for a refused or unknown flag, or one without its value."""
    from colasearch.run_config import RunConfig, parse_options

    fields, values, tokens = RunConfig.model_fields, {}, list(extra_args)
    while tokens:
        token = tokens.pop(0)
        flag, has_value, inline = token.partition("=")
        if flag in REFUSED_EXTRA_ARGS:
            raise ValueError(f"{flag} cannot come from a sweep file (it redirects a cell's outputs, study or "
                             "Ray, loads code or replaces results)")
        name = FLAG_FIELDS.get(flag) or (flag[2:].replace("-", "_") if flag.startswith("--") else "")
        negated = name.startswith("no_") and name not in fields and name[3:] in fields
        name = name[3:] if negated else name
        if name not in fields:
            raise ValueError(f"{flag[:40]} is not an option of colasearch run that a sweep cell takes")
        if fields[name].annotation is bool:
            if has_value:
                raise ValueError(f"{flag} takes no value")
            values[name] = not negated
            continue
        if not has_value:
            if not tokens:
                raise ValueError(f"{flag} needs a value")
            inline = tokens.pop(0)
        if name == "searcher_options":
            values.setdefault(name, {}).update(parse_options([inline]))
        elif name in REPEATABLE:
            values.setdefault(name, []).append(inline)
        else:
            values[name] = inline
    return values


class SweepConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    models: tuple[str, ...] = Field(min_length=1)
    tasks: tuple[str, ...] = Field(min_length=1)
    searchers: tuple[str, ...] = ("evolution",)
    targets: tuple[float, ...] = (1.25,)
    budget: int = Field(default=40, ge=1)
    seed: int = 0
    search_size: int = Field(default=64, ge=1)
    heldout_size: int = Field(default=200, ge=1)
    confirm_size: int | None = Field(default=None, ge=0)   # None: colasearch run's default (4 x search_size)
    baselines: str = "unified"
    measure: bool = True
    workers_per_cell: int = Field(default=0, ge=0)
    cpus_per_cell: float = Field(default=1.0, gt=0)
    # Each cell's placement, as ``colasearch run`` takes it; a cell on a GPU reserves ``gpus_per_cell`` in Ray
    # (0.5: two cells share a GPU), and Ray shows it only the GPUs it reserved.
    device: str = "auto"
    dtype: str = "auto"
    device_map: str | None = None
    gpus_per_cell: float = Field(default=0.0, ge=0)
    extra_args: tuple[str, ...] = ()

    @field_validator("extra_args")
    @classmethod
    def _run_options_only(cls, extra_args: tuple[str, ...]) -> tuple[str, ...]:
        try:
            run_fields(extra_args)  # refused, unknown or incomplete flags fail when the file is read
        except ColasearchError as error:  # a searcher option that is not KEY=VALUE
            raise ValueError(str(error)) from None
        return extra_args

    @classmethod
    def load(cls, path: Path) -> SweepConfig:
        data = read_yaml(path, "sweep file")
        if not isinstance(data, dict):
            raise ColasearchError(f"{path}: a sweep file is a mapping with models, tasks, searchers and targets")
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise ColasearchError(f"{path}: {validation_message(error, 'sweep')}") from None


class Cell(BaseModel):
    model_config = ConfigDict(frozen=True)

    model: str
    task: str
    searcher: str
    target: float

    @property
    def name(self) -> str:
        return slug(f"{Path(self.model).name}__{Path(self.task).name}__{self.searcher}__x{self.target:g}")

    def run_config(self, config: SweepConfig, out_dir: Path):
        """The cell as one run: the grid's settings, then the file's ``extra_args`` over them."""
        from colasearch.run_config import RunConfig

        fields: dict[str, Any] = dict(
            model=self.model, tasks=(self.task,), searcher=self.searcher, target_speedup=self.target,
            budget=config.budget, seed=config.seed, search_size=config.search_size,
            heldout_size=config.heldout_size, confirm_size=config.confirm_size, baselines=config.baselines,
            measure=config.measure, workers=config.workers_per_cell, threads=self._threads(config),
            device=config.device, dtype=config.dtype, device_map=config.device_map)
        for name, value in run_fields(config.extra_args).items():
            fields[name] = (*fields.get(name, ()), *value) if name in REPEATABLE else value
        # Every cell continues its own study: a resubmitted sweep finishes what a killed one started.
        fields.update(out=out_dir / f"{self.name}.yaml", resume=True)
        try:
            return RunConfig(**fields)
        except ValidationError as error:
            raise ColasearchError(f"sweep cell {self.name}: {validation_message(error, 'cell')}") from None

    @staticmethod
    def _threads(config: SweepConfig) -> int | None:
        """A cell evaluating in its own Ray task uses the CPUs it reserved, no more: Ray reuses worker
        processes, and torch's default (every core of the node) would oversubscribe cells packed together."""
        return max(1, int(config.cpus_per_cell)) if config.workers_per_cell == 0 else None


def cells(config: SweepConfig) -> list[Cell]:
    return [Cell(model=m, task=t, searcher=s, target=x)
            for m, t, s, x in itertools.product(config.models, config.tasks, config.searchers, config.targets)]


def run_cell(config, label: str = "") -> str | None:
    """Run one cell in this process (a Ray task); returns its error line, or None on success."""
    from colasearch.pipeline import find_schedule

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        find_schedule(config, label=label)
    except ColasearchError as error:
        return str(error).splitlines()[0]
    return None


def check_cells(config: SweepConfig) -> None:
    """Every searcher and task of the grid exists, checked before Ray starts rather than cell by cell."""
    from colasearch.searchers.base import searcher_class
    from colasearch.tasks import load_task

    for name in dict.fromkeys(config.searchers):
        searcher_class(name)
    for spec in dict.fromkeys(config.tasks):
        try:
            load_task(spec)
        except ColasearchError as error:
            raise ColasearchError(f"sweep task {spec[:80]!r}: {str(error)[:200]}") from None


def run_sweep(config: SweepConfig, out_dir: Path, address: str | None = None) -> list[dict]:
    from colasearch.distributed.cluster import init_ray, ray_started_here
    from colasearch.schedule import Schedule

    import ray

    check_cells(config)
    # Each cell's whole run config, checked here: a setting no run takes fails before Ray starts.
    run_configs = {cell.name: cell.run_config(config, out_dir) for cell in cells(config)}
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = [cell for cell in cells(config) if not (out_dir / f"{cell.name}.yaml").is_file()]
    errors: dict[str, str] = {}
    with ray_started_here():  # no Ray process of the sweep outlives it, error or not
        if todo:
            init_ray(address)
            present = ray.cluster_resources().get("GPU", 0.0)
            if config.gpus_per_cell > present:
                raise ColasearchError(f"gpus_per_cell {config.gpus_per_cell:g} but the Ray cluster has {present:g} GPUs")
            remote = ray.remote(num_cpus=config.cpus_per_cell, num_gpus=config.gpus_per_cell, max_retries=2)(run_cell)
            references = {remote.remote(run_configs[cell.name], cell.name): cell for cell in todo}
            pending = list(references)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                error = ray.get(done[0])
                if error:
                    errors[references[done[0]].name] = error
    rows = []
    for cell in cells(config):
        path = out_dir / f"{cell.name}.yaml"
        row = {"model": cell.model, "task": cell.task, "searcher": cell.searcher, "target": cell.target,
               "metric": None, "heldout": None, "full_heldout": None, "search": None, "ideal_speedup": None,
               "measured_speedup": None, "skipped": cell not in todo, "error": errors.get(cell.name), "file": path.name}
        if path.is_file():
            metrics = Schedule.load(path).metrics
            if metrics and metrics.quality:
                row.update(metric=metrics.quality.metric, heldout=metrics.quality.heldout,
                           full_heldout=metrics.quality.full_heldout, search=metrics.quality.search)
            if metrics and metrics.speedup:
                row.update(ideal_speedup=metrics.speedup.ideal, measured_speedup=metrics.speedup.measured)
        rows.append(row)
    try:
        write_summary(rows, out_dir)
    except WriteFailed as error:  # the cells' schedules are written; a second submission only writes the summary
        raise WriteFailed(f"{error}; the cells' schedules in {out_dir} are kept: submit the sweep again to "
                          "write the summary") from None
    return rows


def _cell_text(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_summary(rows: list[dict], out_dir: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    # Model and task names come from the sweep file: text a spreadsheet would run as a formula is quoted.
    writer.writerows({column: spreadsheet_safe(value) for column, value in row.items()} for row in rows)
    write_text_atomically(out_dir / "summary.csv", buffer.getvalue())
    columns = ["model", "task", "searcher", "target", "metric", "heldout", "full_heldout", "search",
               "ideal_speedup", "measured_speedup", "error"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell_text(row[column]) for column in columns) + " |" for row in rows]
    write_text_atomically(out_dir / "summary.md", "\n".join(lines) + "\n")
