"""Task plug-ins: what a schedule is scored on. ``load_task(spec)`` builds one from its spec."""

from colasearch.tasks.base import TASK_KINDS, Item, ModelTask, PackedSequence, ScoringTask, SequenceScores, Task
from colasearch.tasks.builtin import BUILTIN_TASKS
from colasearch.tasks.kinds import load_task
from colasearch.tasks.splits import SPLITS, Split, split_items

# The task ``colasearch run`` uses when none is given.
DEFAULT_TASK = "builtin:capitals"

__all__ = [
    "BUILTIN_TASKS", "DEFAULT_TASK", "Item", "ModelTask", "PackedSequence", "SPLITS", "ScoringTask", "SequenceScores",
    "Split", "TASK_KINDS", "Task", "load_task", "split_items",
]
