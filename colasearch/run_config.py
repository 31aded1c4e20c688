"""Everything one search run needs, as one value: :class:`RunConfig`. Built once (by ``colasearch run`` from
its flags, by a sweep for each cell, or by a Python caller), checked once, then handed whole to
:func:`colasearch.find_schedule`.

Checks that need no model and no file system run when the config is built, with the messages the CLI has
always printed (they name the flags, as the CLI is the usual author of a config). What depends on this
machine (devices, output paths, ``--init`` files) is checked by the pipeline before the model loads.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from colasearch.errors import ColasearchError
from colasearch.files import slug

DEFAULT_SEARCHER = "evolution"
DEFAULT_BUDGET = 100
DEFAULT_TARGET = 1.25


def _default_tasks() -> tuple[str, ...]:
    from colasearch.tasks import DEFAULT_TASK

    return (DEFAULT_TASK,)


class RunConfig(BaseModel):
    """One search run: what to search (model, tasks, space), how (searcher, objective, budget, splits),
    where (device, Ray) and what to write (``out``, ``storage``). Frozen: change one with ``model_copy``.

    Field names follow ``colasearch run``'s flags (``--search-size`` is ``search_size``), except ``tasks``
    (``--task``, repeatable), ``searcher_options`` (``--option KEY=VALUE``) and ``baselines`` (a tuple, or
    the flag's comma-separated text).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # What is searched
    model: str = "smollm2-135m"
    tasks: tuple[str, ...] = Field(default_factory=_default_tasks)
    task_aggregate: str = "mean"          # several tasks: mean (weighted by @WEIGHT) or min
    sub_blocks: bool = False
    repeats: bool = False
    init: tuple[Path, ...] = ()           # schedules proposed first
    # How
    searcher: str = DEFAULT_SEARCHER
    searcher_options: dict[str, Any] = Field(default_factory=dict)
    objective: str = "constrained"
    target_speedup: float = DEFAULT_TARGET
    budget: int = DEFAULT_BUDGET
    seed: int = 0
    search_size: int = 64
    heldout_size: int = 200
    confirm_size: int | None = None       # None: 4 x search_size; 0: no confirmation
    split_seed: int = 0
    search_metric: str = "primary"
    baselines: tuple[str, ...] = ("unified",)
    measure: bool = True
    speculative_prompts: int = 8          # --objective speculative only
    draft_tokens: int = 4
    # Where
    device: str = "auto"
    dtype: str = "auto"
    device_map: str | None = None
    threads: int | None = None
    prefix_cache_mb: int | None = None
    workers: int | None = None            # None: one per GPU on a GPU machine, else 1; 0: no Ray
    address: str | None = None            # a Ray cluster to join instead of starting a local one
    gpus_per_worker: float | None = None
    parallel: int | None = None
    # What is written
    out: Path | None = None               # None: runs/<model>_<task>_<searcher>_x<target>.yaml
    storage: str | None = None            # None: the journal next to ``out``
    resume: bool = False
    overwrite: bool = False

    @field_validator("baselines", mode="before")
    @classmethod
    def _comma_separated(cls, value):
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @field_validator("searcher_options")
    @classmethod
    def _known_options(cls, options: dict, info) -> dict:
        """Unknown keys and values of the wrong type fail now, judged by the searcher's own defaults."""
        from colasearch.run_checks import check_searcher_options

        if "searcher" not in info.data:
            return options  # the searcher's own error is reported
        return check_searcher_options(info.data["searcher"], dict(options))

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        # ColasearchError is no ValueError: pydantic lets it through as it is, one line for the CLI.
        from colasearch.run_checks import check_at_least
        from colasearch.searchers.base import SearcherError, searcher_class

        self.task_spec  # a bad aggregate or weight
        check_run_options(self.searcher, self.budget, self.target_speedup, self.objective)
        check_at_least(self.threads, 1, "--threads")
        for name in self.baselines:
            searcher_class(name)
        check_at_least(self.parallel, 1, "--parallel")
        check_at_least(self.confirm_size, 0, "--confirm-size")
        if self.resume and self.overwrite:
            raise ColasearchError("--resume and --overwrite exclude each other: continue the run, or start it afresh")
        if self.speculative and (self.speculative_prompts < 1 or not 1 <= self.draft_tokens <= 32):
            raise SearcherError(f"--speculative-prompts must be >= 1 and --draft-tokens in 1..32, got "
                                f"{self.speculative_prompts} and {self.draft_tokens}")
        return self

    @property
    def task_spec(self) -> str:
        """The tasks as one spec: a single task as it is, several as one composite task."""
        from colasearch.tasks.composite import task_spec

        return task_spec(list(self.tasks), self.task_aggregate)

    @property
    def speculative(self) -> bool:
        return self.objective == "speculative"

    @property
    def schedule_path(self) -> Path:
        """Where the schedule is written: ``out``, or a name made of the run's model, tasks, searcher and target."""
        return self.out or default_out(self.model, "+".join(self.tasks), self.searcher, self.target_speedup)

    @property
    def study_storage(self) -> str:
        """The Optuna storage of the study: ``storage``, or a journal next to the schedule."""
        return self.storage or str(self.schedule_path.with_suffix(".journal"))

    @property
    def results_path(self) -> Path | None:
        """The evaluator's result cache sits next to a journal, so a resumed run recomputes not even the table."""
        storage = self.study_storage
        return None if "://" in storage else Path(storage).with_suffix(".results.jsonl")

    @property
    def space_options(self) -> dict:
        return {"sub_blocks": self.sub_blocks, "repeats": self.repeats}


def check_run_options(searcher: str, budget: int, target_speedup: float, objective: str = "constrained") -> None:
    """Everything about the search that can be refused before a model is loaded."""
    from colasearch.objectives import objective_class
    from colasearch.searchers.base import SearcherError, searcher_class

    searcher_class(searcher)  # each registry refuses an unknown name with the names it knows
    objective_class(objective)
    if budget < 1:
        raise SearcherError(f"--budget must be at least 1 evaluation, got {budget}")
    if not math.isfinite(target_speedup) or target_speedup < 1.0:
        raise SearcherError(f"--target-speedup must be a number >= 1, got {target_speedup:g}")


def default_out(model: str, task: str, searcher: str, target: float) -> Path:
    return Path("runs") / f"{slug(f'{model}_{task}_{searcher}_x{target:g}')}.yaml"


def parse_options(pairs: list[str] | None) -> dict:
    """``KEY=VALUE`` searcher options; values are read as YAML scalars (numbers, booleans, strings)."""
    import yaml

    options = {}
    for pair in pairs or []:
        key, separator, value = pair.partition("=")
        if not separator or not key.strip():
            raise ColasearchError(f"searcher option {pair!r} is not KEY=VALUE")
        options[key.strip().replace("-", "_")] = yaml.safe_load(value)
    return options
