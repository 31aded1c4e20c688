"""The final choice, checked on items the search never used.

Why: the final choice's bound (``RacingPolicy.choice_bound``) asks a candidate to lead the run's start by more
than the luckiest of the search's candidates would, but it judges that lead on the very items the candidates
were selected on. On PIQA at 1.25x a schedule 15 of 128 search items ahead cleared it and was 1.4 standard
errors *behind* the start on held-out items. A lead that is real holds on fresh items; a lucky one has no
reason to. So the few candidates that clear the bound are scored again, with the start, on the confirmation
split (items after the held-out ones in the split's hash order, never seen by the search nor by the report),
and one ships only where it still leads there. Scoring a handful of schedules costs a few evaluations, held
back from the search's budget; a task with no items to spare keeps the bound's choice as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from colasearch.results import EvalResult
from colasearch.search.racing import paired_difference

#: At most this share of the run's item budget is held back for confirmation.
CONFIRM_SHARE = 0.25
#: The study attribute that keeps confirmation results, so a resumed run does not score them again.
CONFIRM_ATTRIBUTE = "confirmation"


@dataclass(frozen=True)
class Confirmation:
    """One contender's lead over the start on the confirmation items (higher is better)."""

    schedule_key: str
    chain: str
    mean: float
    error: float
    items: int

    @property
    def holds(self) -> bool:
        return self.mean > 0

    def to_dict(self) -> dict:
        return {"schedule": self.chain, "lead": self.mean, "standard_error": self.error, "items": self.items,
                "holds": self.holds}


def confirmation_slots(item_budget: int, confirm_items: int, wanted: int) -> int:
    """How many contenders can be confirmed: each, and the start, costs ``confirm_items`` item-evaluations,
    and together they take at most ``CONFIRM_SHARE`` of the budget (0: none, the search keeps it all)."""
    if confirm_items < 1 or wanted < 1:
        return 0
    return max(0, min(wanted, int(item_budget * CONFIRM_SHARE) // confirm_items - 1))


def confirm(entries: list, on_confirm: dict[str, EvalResult], start_confirm: EvalResult, metric: str,
            sign: float) -> tuple[list[Confirmation], tuple | None]:
    """Each contender's lead over the start on the confirmation items, and the contender to ship: of those
    whose lead holds there (a mean above zero), the one with the largest lead; ``None`` when none holds
    (the start ships). Ties keep the order of the search's bound."""
    checks, chosen, best = [], None, 0.0
    for schedule, result in entries:
        mean, error, count = paired_difference(on_confirm[schedule.key], start_confirm, metric, sign)
        checks.append(Confirmation(schedule.key, schedule.chain, mean, error, count))
        if mean > best:
            chosen, best = (schedule, result), mean
    return checks, chosen
