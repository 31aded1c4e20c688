"""The final choice, checked on items the search never used.

Why: the final choice's bound (``RacingPolicy.choice_bound``) asks a candidate to lead the run's start by more
than the luckiest of the search's candidates would, but it judges that lead on the very items the candidates
were selected on. On PIQA at 1.25x a schedule 15 of 128 search items ahead cleared it and was 1.4 standard
errors *behind* the start on held-out items. A lead that is real holds on fresh items; a lucky one has no
reason to. So the few candidates that clear the bound are scored again, with the start, on the confirmation
split (items after the held-out ones in the split's hash order, never seen by the search nor by the report),
and one ships only where it still leads there by more than chance would: Holm's step-down test, one-sided, at
the family-wise rate ``FAMILY_ALPHA`` over the contenders confirmed (a lead "above zero" let at least one of
three contenders equal to the start through in most runs). A quarter of the budget is held back for it once there is a
contender, and it is split evenly among the start and the contenders, as many confirmation items each as it
affords: few items decide little (HellaSwag's one contender at 1.25x read −4.7 points on 128 confirmation
items and −1.0 on 512), so the fewer the schedules to confirm, the more items each gets. A task with no items
to spare keeps the bound's choice as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import t as student_t

from colasearch.evaluator.evaluator import FIDELITY_MIN_ITEMS
from colasearch.results import EvalResult
from colasearch.engine.racing import FAMILY_ALPHA, paired_difference

#: At most this share of the run's item budget is held back for confirmation.
CONFIRM_SHARE = 0.25
#: The study attribute that keeps confirmation results, so a resumed run does not score them again.
CONFIRM_ATTRIBUTE = "confirmation"


@dataclass(frozen=True)
class Confirmation:
    """One contender's lead over the start on the confirmation items (higher is better), the lead in standard
    errors it had to exceed (``needed``, its step of Holm's test), and whether it did."""

    schedule_key: str
    chain: str
    mean: float
    error: float
    items: int
    needed: float = 0.0
    holds: bool = False

    @property
    def t(self) -> float:
        """The lead in standard errors (infinite for a lead without spread, as a dense metric can have)."""
        if self.error > 0:
            return self.mean / self.error
        return math.copysign(math.inf, self.mean) if self.mean else 0.0

    def to_dict(self) -> dict:
        return {"schedule": self.chain, "lead": self.mean, "standard_error": self.error, "items": self.items,
                "needed_standard_errors": self.needed, "holds": self.holds}


def needed_t(alpha: float, hypotheses: int, items: int) -> float:
    """The paired t above which a lead holds at one-sided level ``alpha / hypotheses`` on ``items`` items:
    Student's t quantile with ``items - 1`` degrees of freedom (the normal one's 1.645 at 5% once items are
    many; more on the smallest confirmation, 16 items)."""
    return float(student_t.ppf(1 - alpha / hypotheses, df=max(1, items - 1)))


def holm(checks: list[Confirmation], alpha: float = FAMILY_ALPHA) -> list[Confirmation]:
    """``checks`` judged by Holm's step-down test at family-wise rate ``alpha``, one-sided, in their order.

    The largest t is held to ``alpha / m`` (Bonferroni's level for ``m`` contenders), the next to
    ``alpha / (m - 1)``, and so on, until one fails: it and every smaller one do not hold. The chance that any
    contender no better than the start holds is at most ``alpha`` whatever the others are (Holm 1979), and it
    is never less powerful than Bonferroni's one level for all. Each contender's lead is an independent look
    at fresh items, so ``alpha`` bounds how often a run ships a schedule that is only as good as its start.
    """
    order = sorted(range(len(checks)), key=lambda index: -checks[index].t)
    judged: dict[int, Confirmation] = {}
    rejecting = True
    for rank, index in enumerate(order):
        check = checks[index]
        needed = needed_t(alpha, len(checks) - rank, check.items)
        rejecting = rejecting and check.t > needed
        judged[index] = Confirmation(check.schedule_key, check.chain, check.mean, check.error, check.items,
                                     needed, rejecting)
    return [judged[index] for index in range(len(checks))]


def confirmation_reserve(item_budget: int, confirm_items: int) -> int:
    """The item-evaluations held back from the search once there is a contender: ``CONFIRM_SHARE`` of the
    budget, or 0 where that does not pay for the start and one contender on the smallest level each, or
    where there are no confirmation items."""
    reserve = int(item_budget * CONFIRM_SHARE)
    return reserve if confirm_items >= FIDELITY_MIN_ITEMS and reserve >= 2 * FIDELITY_MIN_ITEMS else 0


def confirmation_plan(left: int, contenders: int, confirm_items: int) -> tuple[int, int]:
    """How many contenders to confirm (of ``contenders``, best first) and on how many items each, with
    ``left`` item-evaluations for them and the start: the most contenders that still get the smallest level,
    each on an even share (a multiple of that level, at most the split). ``(0, 0)``: none can be."""
    for count in range(contenders, 0, -1):
        share = left // (count + 1)
        items = confirm_items if share >= confirm_items else share // FIDELITY_MIN_ITEMS * FIDELITY_MIN_ITEMS
        if items >= FIDELITY_MIN_ITEMS:
            return count, items
    return 0, 0


def confirm(entries: list, on_confirm: dict[str, EvalResult], start_confirm: EvalResult, metric: str,
            sign: float, alpha: float = FAMILY_ALPHA) -> tuple[list[Confirmation], tuple | None]:
    """Each contender's lead over the start on the confirmation items, and the contender to ship: of those
    whose lead holds there (:func:`holm`), the one with the largest lead; ``None`` when none holds (the start
    ships). Ties keep the order of the search's bound. Any choice among the holding ones keeps the test's
    error rate; the lead that ships is the largest of them, so it reads a little high: the held-out report,
    on other items, is the unbiased one."""
    checks = []
    for schedule, _ in entries:
        mean, error, count = paired_difference(on_confirm[schedule.key], start_confirm, metric, sign)
        checks.append(Confirmation(schedule.key, schedule.chain, mean, error, count))
    checks = holm(checks, alpha)
    chosen, best = None, -math.inf
    for entry, check in zip(entries, checks):
        if check.holds and check.mean > best:
            chosen, best = entry, check.mean
    return checks, chosen


def unconfirmed_reason(start, shipped, confirmations: list, confirm_items: int) -> str | None:
    """Why a schedule other than the run's start ships without a confirmation, or ``None`` where it needs none
    (the start ships, a baseline has no start) or had one. Worth saying: on multiple choice most leads of this
    kind did not hold on fresh items (BENCHMARKS.md, "Confirmation on unused items")."""
    if confirmations or start is None or shipped is None or shipped.key == start.key:
        return None
    if not confirm_items:
        return "there is no confirmation split: --confirm-size 0, or no items left after the held-out split"
    # Racing's per-item values are what a confirmation compares; a speculative objective has none.
    return "the budget left paid for too few confirmation items, or the results have no per-item values"


class ConfirmationStep:
    """The confirmation of one run: the share of the budget it holds back, how many contenders it affords, and
    the scoring of the anchor and those contenders on the confirmation items (read back from the study where a
    resumed run has them, else scored and kept with the study)."""

    def __init__(self, most: int, alpha: float, item_budget: int, confirm_items: int, store=None):
        self.most = most
        self.alpha = alpha
        self.confirm_items = confirm_items
        self.store = store
        #: Held back from the search once there is a contender; 0: there is no confirmation to pay for.
        self.reserve = confirmation_reserve(item_budget, confirm_items) if most > 0 else 0

    def plan(self, left: int, contenders: int) -> tuple[int, int]:
        """How many of ``contenders`` to confirm and on how many items each (:func:`confirmation_plan`)."""
        if not self.reserve:
            return 0, 0
        return confirmation_plan(left, min(self.most, contenders), self.confirm_items)

    def run(self, anchor: tuple, ranked: list, items: int, executor, metric: str, sign: float, on_scored,
            on_search_result) -> tuple[list[Confirmation], tuple | None]:
        """Score the anchor and the ``ranked`` contenders ((schedule, result) pairs) on the first ``items``
        confirmation items and judge the leads (:func:`confirm`). ``on_scored(reused, items)`` is called once
        per schedule scored (``reused``: read back from the study); ``on_search_result(schedule, result)`` takes a
        search evaluation still in flight when the search stopped."""
        saved = dict((self.store.attribute(CONFIRM_ATTRIBUTE) if self.store is not None else None) or {})
        on_confirm: dict[str, EvalResult] = {}
        missing = []
        for schedule, _ in [anchor, *ranked]:
            known = saved.get(schedule.key)
            known = EvalResult.from_dict(known) if known is not None else None
            if known is not None and known.items == items:
                on_confirm[schedule.key] = known
                on_scored(True, items)
            elif schedule.key not in missing:
                missing.append(schedule.key)
                executor.submit(schedule, items, "confirm")
        while missing:
            schedule, result = executor.next_finished()
            if result.split != "confirm":
                on_search_result(schedule, result)
                continue
            on_confirm[schedule.key] = result
            missing.remove(schedule.key)
            on_scored(False, items)
            if self.store is not None:   # kept with the study, not as a trial: trials are search-split results only
                saved[schedule.key] = result.to_dict()
                self.store.set_attribute(CONFIRM_ATTRIBUTE, saved)
        return confirm(ranked, on_confirm, on_confirm[anchor[0].key], metric, sign, self.alpha)
