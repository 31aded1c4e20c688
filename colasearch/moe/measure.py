"""What a searcher needs to treat thresholds as knobs: build a section, measure its skip ratio, invert it."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping

import torch

from colasearch.errors import ScheduleError, validation_message
from colasearch.moe.patching import SkipStats, recording
from colasearch.schedule import ExpertSkipping, Schedule


def expert_skipping_section(
    importance, thresholds: float | Mapping[str, float], renormalize: bool = True,
) -> ExpertSkipping:
    """The schedule's ``experts`` section; a bare number is the text group's threshold."""
    from pydantic import ValidationError

    groups = {"text": float(thresholds)} if isinstance(thresholds, (int, float)) else dict(thresholds)
    try:
        return ExpertSkipping(importance=tuple(float(alpha) for alpha in importance), thresholds=groups,
                              renormalize=renormalize)
    except ValidationError as error:
        raise ScheduleError(f"experts: {validation_message(error, 'schedule')}") from None


@contextlib.contextmanager
def _running(model, schedule: Schedule):
    """Apply ``schedule`` for the block, then put back whatever schedule the model had before."""
    from colasearch.runtime import applied_schedule, apply_schedule, restore

    previous = applied_schedule(model)
    apply_schedule(model, schedule, force=True)
    try:
        yield model
    finally:
        restore(model)
        if previous is not None:
            apply_schedule(model, previous, force=True)


@torch.no_grad()
def expert_skip_stats(model, schedule: Schedule, input_ids: torch.Tensor,
                      attention_mask: torch.Tensor | None = None) -> SkipStats:
    """Routed and skipped (token, expert) pairs per layer when ``schedule`` runs on one batch (padding excluded)."""
    if schedule.experts is None:
        raise ScheduleError("the schedule has no 'experts' section, so it skips no experts")
    with _running(model, schedule), recording(model, attention_mask) as stats:
        model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    return stats


def expert_skip_ratio(model, schedule: Schedule, input_ids: torch.Tensor,
                      attention_mask: torch.Tensor | None = None) -> float:
    """Measured fraction of routed expert work that ``schedule`` skips on this batch."""
    return expert_skip_stats(model, schedule, input_ids, attention_mask).ratio


def threshold_for_skip_ratio(
    model,
    schedule: Schedule,
    target: float,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    group: str = "text",
    tolerance: float = 0.01,
    max_steps: int = 30,
) -> float:
    """The threshold of ``group`` whose measured skip ratio is ``target`` (within ``tolerance``), by bisection.

    The other groups' thresholds, the importance vector and the layer chain come from ``schedule``.
    Skipping in one layer changes the routing of later ones, so the ratio is measured, not predicted;
    it rises with tau, which is all bisection needs. Without convergence the smallest threshold
    found that reaches the target is returned.
    """
    if schedule.experts is None:
        raise ScheduleError("the schedule needs an 'experts' section (importance vector) to search a threshold in")
    if not 0.0 <= target <= 1.0 or not math.isfinite(target):
        raise ScheduleError(f"target skip ratio must lie in [0, 1], got {target}")
    section = schedule.experts

    def ratio_at(tau: float) -> float:
        thresholds = {**section.thresholds, group: tau}
        candidate = schedule.with_fields(experts=section.model_copy(update={"thresholds": thresholds}))
        return expert_skip_ratio(model, candidate, input_ids, attention_mask)

    low, high = 0.0, max(section.importance) * (1.0 + 1e-6) + 1e-12  # pi <= 1, so tau above every alpha skips all
    if target <= 0.0:
        return 0.0
    for _ in range(max_steps):
        middle = 0.5 * (low + high)
        ratio = ratio_at(middle)
        if abs(ratio - target) <= tolerance:
            return middle
        low, high = (middle, high) if ratio < target else (low, middle)
    return high
