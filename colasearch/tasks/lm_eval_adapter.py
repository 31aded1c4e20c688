"""lm-evaluation-harness tasks by name (optional extra ``lm-eval``): hands it the schedule-patched model.

Not a reimplementation: lm-eval builds its requests and metrics; colasearch only restricts it to
the items of a split, so its search and held-out figures stay apart.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from colasearch.errors import TaskError
from colasearch.tasks.base import TASK_LOADERS, Item, ModelTask


class LmEvalOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    num_items: int = Field(default=1000, ge=2)
    batch_size: int = Field(default=8, ge=1)
    num_fewshot: int = Field(default=0, ge=0)


def lm_eval_available() -> bool:
    return importlib.util.find_spec("lm_eval") is not None


class LmEvalTask(ModelTask):
    """Items are the indices of the harness's evaluation documents (the first ``num_items``)."""

    def __init__(self, task_name: str, options: LmEvalOptions):
        self.name = task_name
        self.task_name = task_name
        self.options = options
        self.primary_metric = "acc"
        self.metric_directions = {"acc": "maximize", "acc_norm": "maximize", "exact_match": "maximize",
                                  "perplexity": "minimize", "word_perplexity": "minimize"}

    def items(self) -> list[Item]:
        return [Item(f"{self.task_name}-{index}", index) for index in range(self.options.num_items)]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "lm-eval", **self.options.model_dump()}

    def run(self, model, tokenizer, items: list[Item]) -> dict[str, float]:
        from lm_eval import simple_evaluate
        from lm_eval.models.huggingface import HFLM

        wrapped = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=self.options.batch_size)
        try:
            output = simple_evaluate(model=wrapped, tasks=[self.task_name], num_fewshot=self.options.num_fewshot,
                                     samples={self.task_name: [item.data for item in items]})
        except Exception as error:  # the harness raises many kinds for missing local data
            raise TaskError(f"lm-eval task {self.task_name!r} failed: {str(error).splitlines()[0] if str(error) else error}") from None
        metrics = {}
        for name, value in output["results"][self.task_name].items():
            metric, _, _filter = name.partition(",")
            if isinstance(value, (int, float)) and not metric.endswith("_stderr"):
                metrics[metric] = float(value)
        if self.primary_metric not in metrics and metrics:
            self.primary_metric = next(iter(metrics))
        return metrics


@TASK_LOADERS.register("lm-eval")
def load_lm_eval_task(argument: str, **options) -> LmEvalTask:
    from colasearch.tasks.multiple_choice import options_from

    if not lm_eval_available():
        raise TaskError(f"lm-eval:{argument} needs the optional extra: pip install 'colasearch[lm-eval]'")
    return LmEvalTask(argument, options_from(LmEvalOptions, options, f"lm-eval:{argument}"))
