"""The built-in task kinds, imported so that each registers its loader, and ``load_task`` over them.

Apart from ``base`` so that the loaders, which import ``base``, are not imported back by it.
"""

from __future__ import annotations

from colasearch.tasks import (  # noqa: F401  each registers its loader with TASK_LOADERS
    builtin, fidelity, generation, lm_eval_adapter, multiple_choice, perplexity,
)
from colasearch.tasks.base import TASK_LOADERS, Task
from colasearch.tasks.composite import task_spec


def load_task(spec: str | list[str] | tuple[str, ...], aggregate: str = "mean", **options) -> Task:
    """Build a task from its spec: ``builtin:NAME`` (or a bare built-in name), ``jsonl:PATH``,
    ``text:PATH``, ``fidelity:PATH`` or ``lm-eval:NAME``; a list of specs (each ``SPEC`` or
    ``SPEC@WEIGHT``) is one composite task whose primary metric is their ``aggregate`` (``mean``, weighted,
    or ``min``). ``options`` go to the task (e.g. ``join``, ``chat``, ``max_new_tokens``)."""
    if isinstance(spec, (list, tuple)):
        spec = task_spec(list(spec), aggregate)
    return TASK_LOADERS.load(spec, **options)
