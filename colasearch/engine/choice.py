"""The confident final choice among the search's full-split results.

The anchor is the first full-split result: the protected start, else the searcher's first proposal. A
candidate replaces it only where its paired lower bound over the anchor, on the same items, is above zero; the
bound grows with the number of candidates chosen among and with how unlike each other they are (the max-T of
``RacingPolicy.choice_bound``), so a schedule that is only luckier on the search items does not replace the start.
"""

from __future__ import annotations

from colasearch.engine.racing import RacingPolicy, contenders, paired_differences


class ConfidentChoice:
    """Ranks full-split results against the anchor and ships the best-bounded one, for one ``metric`` compared
    with ``sign`` (+1: higher is better)."""

    def __init__(self, objective, metric: str, sign: float, policy: RacingPolicy):
        self.objective = objective
        self.metric = metric
        self.sign = sign
        self.policy = policy
        self._seen = (-1, False)   # full-split results when last ranked, and whether there was a contender

    def rank(self, records: list) -> tuple:
        """The anchor (a (schedule, result) pair, or ``None``), the bound in paired standard errors (``None``
        with fewer than two feasible full-split results) and the contenders: the results whose paired lower
        bound over the anchor is above zero, best first."""
        metric = self.metric
        full = [(schedule, result) for schedule, result in records
                if not result.estimated and self.objective.feasible(result) and metric in (result.per_item or {})]
        if len(full) < 2:
            return (full[0] if full else None), None, []
        start = full[0][1]
        items = len(start.per_item[metric])
        # Candidates on the start's items only: there is no paired comparison else.
        on_start_items = [entry for entry in full if len(entry[1].per_item[metric]) == items]
        bound = self.policy.choice_bound([paired_differences(result, start, metric, self.sign)
                                          for _, result in on_start_items[1:]])  # the start itself comes first
        return full[0], bound, contenders(on_start_items, start, metric, self.sign, bound)

    def has_contender(self, records: list) -> bool:
        """Whether some full-split result clears the bound over the anchor (ranked anew only when a full-split
        result came in: estimates do not change the answer)."""
        full = sum(1 for _, result in records if not result.estimated)
        if full != self._seen[0]:
            self._seen = (full, bool(self.rank(records)[2]))
        return self._seen[1]

    def choose(self, outcome) -> tuple:
        """Replace ``outcome``'s highest full-split value by the contender with the best lower bound over the
        anchor, else the anchor (see ``racing.confident_choice``). Returns the anchor and the contenders."""
        anchor, bound, ranked = self.rank(outcome.records)
        if bound is None:
            return anchor, []
        outcome.choice_z = bound
        highest = outcome.best
        outcome.ship(*(ranked[0] if ranked else anchor), self.objective)
        if outcome.best.key != highest.key:
            outcome.highest = highest
        return anchor, ranked
