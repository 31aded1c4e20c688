"""Multi-fidelity racing: a candidate is scored on growing, nested item subsets and compared item by item
with the incumbent, and one that is clearly worse stops early.

Why: the best of many schedules picked on a few dozen items is mostly the luckiest one. Spending the
items where they decide something (on candidates that still might win) buys both more candidates and
more items per decision from the same compute. The comparison is paired (same items, same order), so
the item-to-item difficulty cancels and a small subset already separates a clearly worse candidate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from statistics import NormalDist

import torch

from colasearch.results import EvalResult

#: A candidate stops when its paired mean difference to the incumbent is below -Z standard errors.
DEFAULT_Z = 1.0
#: The final choice leaves the search's starting point only for a paired lower bound above zero.
DEFAULT_CHOICE_Z = 1.0
#: The one-sided, family-wise error rate of a confirmed lead: on a task where no candidate beats the run's start,
#: at most this share of runs with a confirmation ship another schedule (the confirmation's Holm test). 5%: the
#: usual one-sided level, tight enough that a shipped "lead" is rarely luck, loose enough that a gain of 2-3 SE
#: on the confirmation items still ships.
FAMILY_ALPHA = 0.05


@dataclass(frozen=True)
class RacingPolicy:
    """How candidates race: ``z`` standard errors below the incumbent stops one. ``choice_z``: how the final
    schedule is chosen among full-split results (0 = the highest value, as a plain search would)."""

    z: float = DEFAULT_Z
    enabled: bool = True
    choice_z: float = DEFAULT_CHOICE_Z
    #: Raise the final choice's bound with the number of candidates compared (see ``choice_bound``).
    multiplicity: bool = True
    #: At most this many candidates that clear the bound are scored again on the confirmation split, where
    #: the evaluator has one (``colasearch.engine.confirmation``); 0: the bound's choice ships unchecked.
    confirm: int = 3
    #: The family-wise error rate of a shipped lead (see ``FAMILY_ALPHA``).
    alpha: float = FAMILY_ALPHA

    def choice_bound(self, differences: list[list[float]]) -> float:
        """Standard errors a candidate must lead the start by, given every full-split candidate's paired
        differences to the start on the same items (one row per candidate, higher is better).

        The largest of ``K`` noise terms grows with ``K``, so a fixed bound lets the luckiest of many
        candidates through ever more often as the search runs longer. How fast it grows depends on how alike
        the candidates are: ``sqrt(2 ln K)`` for independent ones, hardly at all for neighbours that share
        most units and gain or lose on the same items. So the bound is the max-T of Westfall and Young: the
        largest paired t among the candidates, recomputed with each item's differences sign-flipped at
        random (what "no candidate differs from the start" would look like on these items, correlations
        kept), at the quantile ``Phi(choice_z)``; never below ``choice_z``, the bound for one candidate.

        At the default ``choice_z`` of 1 that is the 84th percentile: by design about 16% of runs where no
        candidate beats the start let the luckiest through. Where a confirmation follows, its own test
        (``confirmation.holm``) keeps the shipped lead's error rate at ``alpha``; where none can (no items
        left after the held-out split), the bound's choice ships at that rate. The 95th percentile was
        tried for that case and passed over the default task's 9-1 lead on 64 items (2.47 SE against a
        bound of 2.5), a schedule 13 points ahead on held-out items: too much power lost for the rate.
        """
        if self.choice_z <= 0 or not self.multiplicity or len(differences) < 2:
            return self.choice_z
        return max(self.choice_z, _max_t_quantile(differences, NormalDist().cdf(self.choice_z)))


def racing_metric(objective) -> str | None:
    """The per-item metric a race compares on, or ``None`` where the objective cannot be raced (several
    objectives, costs that differ between candidates, or no single quality metric)."""
    if not objective.raceable or len(objective.directions) != 1:
        return None
    return objective.metric


def paired_difference(candidate: EvalResult, incumbent: EvalResult, metric: str, sign: float) -> tuple[float, float, int]:
    """Mean and standard error of (candidate - incumbent) on the candidate's items, oriented so that
    higher is better (``sign`` = -1 for a metric to minimize)."""
    differences = paired_differences(candidate, incumbent, metric, sign)
    count = len(differences)
    mean = sum(differences) / count
    return mean, _standard_error(differences), count


def paired_differences(candidate: EvalResult, incumbent: EvalResult, metric: str, sign: float) -> list[float]:
    """Item by item, ``sign`` * (candidate - incumbent) on the candidate's items (higher is better)."""
    mine = candidate.per_item[metric]
    return [sign * (a - b) for a, b in zip(mine, incumbent.per_item[metric][: len(mine)])]


def _right_or_wrong(differences) -> bool:
    """Both schedules scored every item 0 or 1: the differences get one pseudo-disagreement each way."""
    return all(value in (-1.0, 0.0, 1.0) for value in differences)


def _standard_error(differences: list[float]) -> float:
    """The standard error of the mean difference; for right/wrong items, with one pseudo-item each way.

    Where both schedules score each item 0 or 1, only the items they disagree on carry information, and
    with a handful of those the normal approximation is overconfident: 3 items gained and none lost reads
    as 1.7 standard errors, where a sign test gives p = 0.125 (1.15). Adding one disagreement each way
    (a pseudo-count, as for a binomial proportion) keeps a lead of a few lucky items from passing as a
    sure one, and fades as the disagreements grow. Continuous metrics (KL, NLL) have no such cliff.
    """
    if _right_or_wrong(differences):
        differences = [*differences, 1.0, -1.0]
    count = len(differences)
    mean = sum(differences) / count
    variance = sum((value - mean) ** 2 for value in differences) / max(1, count - 1)
    return math.sqrt(variance / count)


#: Sign flips drawn for the max-T bound, with a fixed seed so that a resumed run chooses the same schedule.
NULL_DRAWS = 2000


def _max_t_quantile(differences: list[list[float]], quantile: float) -> float:
    """The ``quantile`` of the largest paired t over the rows of ``differences`` under random item sign flips.

    Flipping an item's sign flips it for every candidate at once, which keeps the candidates' correlation.
    The draws come from a generator of their own with a fixed seed: a resumed run chooses the same
    schedule, and the caller's random state is neither used nor moved.
    """
    generator = torch.Generator().manual_seed(0)
    items = len(differences[0])
    signs = torch.randint(0, 2, (NULL_DRAWS, items), generator=generator, dtype=torch.float64) * 2 - 1
    return float(torch.quantile(_sign_flipped_t(differences, signs).max(dim=1).values, quantile))


def _sign_flipped_t(differences: list[list[float]], signs: torch.Tensor) -> torch.Tensor:
    """The paired t (mean over standard error, as :func:`paired_difference` gives them) of every row of
    ``differences`` with its items' signs multiplied by each row of ``signs``: draws x candidates.

    A flip leaves each row's sum of squares as it is, so every t follows from one matrix product. Rows of
    right/wrong items get the pseudo-disagreements of :func:`_standard_error` in their error, as the observed
    t does; the mean stays the one over the real items, so that the null t and the observed t are the same
    statistic (a mean over the ``n + 2`` items with the pseudo ones would shrink every null t by
    ``n / (n + 2)`` and let leads through that the null reaches more often than the quantile says).
    """
    rows = torch.tensor(differences, dtype=torch.float64)
    binary = torch.tensor([_right_or_wrong(row) for row in differences])
    sums = signs @ rows.T                                          # draws x candidates
    extra = binary.to(torch.float64) * 2                           # one pseudo-disagreement each way
    count = rows.shape[1] + extra
    padded_means = sums / count                                    # the pseudo-disagreements add nothing to the sum
    squares = (rows ** 2).sum(dim=1) + extra
    variances = ((squares - count * padded_means ** 2) / (count - 1).clamp(min=1)).clamp(min=0)
    errors = (variances / count).sqrt()
    means = sums / rows.shape[1]
    return torch.where(errors > 0, means / errors.clamp(min=1e-300), torch.zeros_like(means))


def clearly_worse(candidate: EvalResult, incumbent: EvalResult, metric: str, sign: float, z: float) -> bool:
    mean, error, _ = paired_difference(candidate, incumbent, metric, sign)
    return mean + z * error < 0


def paired_estimate(candidate: EvalResult, incumbent: EvalResult) -> EvalResult:
    """The candidate's full-split quality estimated from a subset: the incumbent's full value plus the paired
    mean difference on the subset. Unlike the raw subset mean it is comparable with full-split results
    (an easy subset lifts both schedules alike). Metrics without per-item values keep the subset value."""
    per_item = candidate.per_item or {}
    quality = dict(candidate.quality)
    for metric, values in per_item.items():
        if metric not in incumbent.quality or metric not in (incumbent.per_item or {}):
            continue
        mean, _, _ = paired_difference(candidate, incumbent, metric, 1.0)
        if metric == "perplexity":
            # Per item the perplexity task reports NLL, so the difference is one of log-perplexity.
            quality[metric] = math.exp(min(math.log(max(incumbent.quality[metric], 1e-300)) + mean, 700.0))
        else:
            quality[metric] = incumbent.quality[metric] + mean
    return replace(candidate, quality=quality, per_item=None, estimated=True, subset_quality=dict(candidate.quality))


def contenders(results: list, anchor: EvalResult, metric: str, sign: float, z: float) -> list:
    """The entries of ``results`` ((schedule, result) pairs) whose paired lower bound over ``anchor``,
    mean - z * SE of the difference on the same items, is above zero: the highest bound first, ties in the
    order given."""
    ranked = []
    for entry in results:
        if entry[1] is anchor:
            continue
        mean, error, _ = paired_difference(entry[1], anchor, metric, sign)
        if mean - z * error > 0:
            ranked.append((mean - z * error, len(ranked), entry))
    return [entry for _, _, entry in sorted(ranked, key=lambda row: (-row[0], row[1]))]


def confident_choice(results: list, anchor: EvalResult, metric: str, sign: float, z: float):
    """The entry of ``results`` with the highest paired lower bound over ``anchor`` (see :func:`contenders`);
    the anchor's own entry where no other's bound is above zero.

    Why: the highest of many values measured on the same items is mostly the luckiest one (the winner's
    curse), and its lead shrinks or vanishes on unseen items. Asking for a lead of ``z`` standard errors
    over the run's start (``--init`` or the one-shot answer, which the run loop evaluates first) keeps a pick
    that is only luckier, and still takes one that is clearly better. An equal candidate never displaces the
    start.
    """
    ranked = contenders(results, anchor, metric, sign, z)
    return ranked[0] if ranked else next(entry for entry in results if entry[1] is anchor)
