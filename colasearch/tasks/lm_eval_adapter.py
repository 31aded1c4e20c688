"""lm-evaluation-harness tasks by name (optional extra ``lm-eval``): hands it the schedule-patched model.

Not a reimplementation: lm-eval builds its requests and metrics; colasearch only restricts it to
the items of a split, so its search and held-out figures stay apart. ``include_path`` adds a folder
of task YAMLs (e.g. ``dataset_path: json`` over local files, so nothing is downloaded).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from colasearch.errors import TaskError
from colasearch.tasks.base import Item, ModelTask


class LmEvalOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    num_items: int = Field(default=1000, ge=2)
    batch_size: int = Field(default=8, ge=1)
    num_fewshot: int = Field(default=0, ge=0)
    include_path: str | None = None


def lm_eval_available() -> bool:
    return importlib.util.find_spec("lm_eval") is not None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@functools.lru_cache(maxsize=8)
def _task_manager(include_path: str | None, with_defaults: bool):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include_path, include_defaults=with_defaults)


def task_manager_for(task_name: str, include_path: str | None):
    """The include folder alone when it defines the task: indexing lm-eval's own few thousand task
    YAMLs takes about a minute on a small machine, and a local task needs none of them."""
    if include_path is not None:
        local = _task_manager(include_path, False)
        if task_name in local.all_tasks:
            return local
    return _task_manager(include_path, True)


class LmEvalTask(ModelTask):
    """Items are the indices of the harness's evaluation documents (the first ``num_items``)."""

    def __init__(self, task_name: str, options: LmEvalOptions):
        self.name = task_name
        self.task_name = task_name
        self.options = options
        self.primary_metric = "acc"
        self.metric_directions = {"acc": "maximize", "acc_norm": "maximize", "exact_match": "maximize",
                                  "perplexity": "minimize", "word_perplexity": "minimize"}
        self._document_count: int | None = None

    @property
    def task_manager(self):
        return task_manager_for(self.task_name, self.options.include_path)

    def document_count(self) -> int:
        """How many evaluation documents the harness has for this task (loads its dataset once)."""
        if self._document_count is None:
            try:
                task = self.task_manager.load([self.task_name])["tasks"][self.task_name]
                self._document_count = len(task.eval_docs)
            except Exception as error:  # noqa: BLE001  (the harness and datasets raise many kinds)
                raise TaskError(f"lm-eval task {self.task_name!r}: {_first_line(error)}") from None
        return self._document_count

    def items(self) -> list[Item]:
        count = min(self.options.num_items, self.document_count())
        return [Item(f"{self.task_name}-{index}", index) for index in range(count)]

    def describe(self) -> dict[str, Any]:
        described = {"name": self.name, "kind": "lm-eval", **self.options.model_dump()}
        if self.options.include_path is not None:
            # An edited task YAML is another task: the result cache must not serve its old scores.
            digest = hashlib.sha256()
            for path in sorted(Path(self.options.include_path).rglob("*.yaml")):
                digest.update(path.name.encode() + b"\0" + path.read_bytes())
            described["include_digest"] = digest.hexdigest()[:16]
        return described

    def run(self, model, tokenizer, items: list[Item]) -> dict[str, float]:
        from lm_eval import simple_evaluate

        from colasearch.tasks.lm_eval_model import ColasearchLM

        wrapped = ColasearchLM(pretrained=model, tokenizer=tokenizer, batch_size=self.options.batch_size)
        try:
            output = simple_evaluate(model=wrapped, tasks=[self.task_name], num_fewshot=self.options.num_fewshot,
                                     samples={self.task_name: [item.data for item in items]},
                                     task_manager=self.task_manager, bootstrap_iters=0, log_samples=False)
        except Exception as error:  # noqa: BLE001  (the harness raises many kinds for missing local data)
            raise TaskError(f"lm-eval task {self.task_name!r} failed: {_first_line(error)}") from None
        metrics = {}
        for name, value in output["results"][self.task_name].items():
            metric, _, _filter = name.partition(",")
            if isinstance(value, (int, float)) and not metric.endswith("_stderr") and metric != "sample_len":
                metrics[metric] = float(value)
        if self.primary_metric not in metrics and metrics:
            self.primary_metric = next(iter(metrics))
        return metrics


def write_multiple_choice_task(data_path: str | Path, folder: str | Path, name: str, join: str = "\nAnswer: ") -> Path:
    """An lm-eval task YAML in ``folder`` over a colasearch multiple-choice JSONL file (context, choices,
    label), read from disk by the ``json`` dataset builder. The prompt is built the way ``jsonl:`` builds
    it: the join's trailing whitespace becomes lm-eval's target delimiter, as colasearch glues it to the
    choice, so both score the same tokens."""
    from colasearch.files import write_text_atomically
    from colasearch.tasks.multiple_choice import _split_join

    prompt_end, delimiter = _split_join(join)
    config = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(Path(data_path).resolve())}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "{{context}}" + prompt_end,
        "doc_to_choice": "{{choices}}",
        "doc_to_target": "label",
        "target_delimiter": delimiter,
        "metric_list": [{"metric": metric, "aggregation": "mean", "higher_is_better": True}
                        for metric in ("acc", "acc_norm")],
    }
    return write_text_atomically(Path(folder) / f"{name}.yaml", yaml.safe_dump(config, sort_keys=False))


def load_lm_eval_task(argument: str, **options) -> LmEvalTask:
    from colasearch.tasks.base import options_from

    if not lm_eval_available():
        raise TaskError(f"lm-eval:{argument} needs the optional extra: pip install 'colasearch[lm-eval]'")
    chosen = options_from(LmEvalOptions, options, f"lm-eval:{argument}")
    if chosen.include_path is not None:
        folder = Path(chosen.include_path).expanduser()
        if not folder.is_dir():
            raise TaskError(f"lm-eval include folder {chosen.include_path} not found")
        chosen = chosen.model_copy(update={"include_path": str(folder.resolve())})
    return LmEvalTask(argument, chosen)
