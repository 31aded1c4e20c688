"""``load_task``: a task from its spec, by the task kind (``TASK_KINDS``) its prefix names.

Apart from ``base`` because a composite spec (several tasks) is put together by ``composite``, which imports
``base``."""

from __future__ import annotations

from colasearch.tasks.base import TASK_KINDS, Task
from colasearch.tasks.composite import task_spec


def load_task(spec: str | list[str] | tuple[str, ...], aggregate: str = "mean", **options) -> Task:
    """Build a task from its spec: ``builtin:NAME`` (or a bare built-in name), ``jsonl:PATH``,
    ``text:PATH``, ``fidelity:PATH``, ``lm-eval:NAME`` or a plug-in's ``PREFIX:ARGUMENT``; a list of specs
    (each ``SPEC`` or ``SPEC@WEIGHT``) is one composite task whose primary metric is their ``aggregate``
    (``mean``, weighted, or ``min``). ``options`` go to the task (e.g. ``join``, ``chat``, ``max_new_tokens``)."""
    if isinstance(spec, (list, tuple)):
        spec = task_spec(list(spec), aggregate)
    return TASK_KINDS.load(spec, **options)
