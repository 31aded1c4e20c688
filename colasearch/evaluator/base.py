"""What the run loop (``colasearch.engine``) reads of an evaluator, declared once with the defaults of one that
scores whole splits only: the planted stand-ins of ``colasearch.engine.testing`` inherit those defaults, the
:class:`~colasearch.evaluator.Evaluator` sets every one, so the loop reads them without probing."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import MappingProxyType
from typing import TYPE_CHECKING, Mapping

from colasearch.errors import ColasearchError

if TYPE_CHECKING:  # annotations only: the loop and the stand-ins import this without the task machinery
    from colasearch.results import EvalResult
    from colasearch.schedule import Schedule
    from colasearch.tasks.splits import Split


class BaseEvaluator(ABC):
    #: Nested item counts a candidate can be scored on, by split (``fidelity_levels``). None: whole splits only,
    #: so the loop counts its budget in whole evaluations and races nothing.
    levels: Mapping[str, tuple[int, ...]] = MappingProxyType({})
    #: The items of each split. ``None``: the evaluator holds no confirmation split, so the loop confirms nothing.
    splits: Split | None = None

    @property
    def per_item(self) -> bool:
        """Whether results carry per-item values (``EvalResult.per_item``), which multi-fidelity racing needs."""
        return False

    def calibration_batch(self, max_items: int = 32):
        """``(input_ids, attention_mask)`` of up to ``max_items`` search-split items, for one forward pass (the
        prior, importance scores). An evaluator with no token text, a stand-in scoring by formula, has none."""
        raise ColasearchError(f"{type(self).__name__} has no token text to calibrate on")

    @abstractmethod
    def evaluate(self, schedule: Schedule | None, split: str = "search", items: int | None = None) -> EvalResult:
        """Quality and speedup of ``schedule`` (``None``: the full model) on the first ``items`` items of ``split``
        (all when ``None``; an evaluator without fidelity levels is never asked for fewer)."""

    def evaluate_many(self, schedules: list[Schedule | None], split: str = "search",
                      items: list[int | None] | None = None) -> list[EvalResult]:
        """One result per schedule, in the caller's order; an evaluator may reorder the work to share prefixes."""
        items = items or [None] * len(schedules)
        return [self.evaluate(schedule, split, count) for schedule, count in zip(schedules, items)]
