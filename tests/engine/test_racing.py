import math

import pytest

from colasearch.results import EvalResult
from colasearch.engine.racing import clearly_worse, confident_choice, paired_difference, paired_estimate


def result(values, metric="acc", quality=None):
    quality = quality if quality is not None else {metric: sum(values) / len(values)}
    return EvalResult("k", "t", "search", quality, 1.3, extra={"items": len(values), "per_item": {metric: values}})


def test_the_difference_is_paired_on_the_candidates_items():
    incumbent = result([1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0])
    candidate = result([1.0, 0.0, 0.0, 1.0])
    mean, error, count = paired_difference(candidate, incumbent, "acc", 1.0)
    # The error counts one pseudo-disagreement each way: differences 0, 0, -1, 0 and +1, -1.
    pseudo = [0.0, 0.0, -1.0, 0.0, 1.0, -1.0]
    spread = sum((value + 1 / 6) ** 2 for value in pseudo) / 5
    assert count == 4 and mean == pytest.approx(-0.25) and error == pytest.approx(math.sqrt(spread / 6))
    assert paired_difference(candidate, incumbent, "acc", -1.0)[0] == pytest.approx(0.25)


def test_a_few_right_or_wrong_disagreements_are_not_a_sure_lead():
    """3 items gained and none lost in 256: the plain normal approximation says 1.7 standard errors, an exact
    sign test p = 0.125 (1.15); one pseudo-disagreement each way brings it near the latter."""
    incumbent = result([0.0] * 256)
    candidate = result([1.0] * 3 + [0.0] * 253)
    mean, error, _ = paired_difference(candidate, incumbent, "acc", 1.0)
    assert 1.2 < mean / error < 1.4
    # Many disagreements: the correction fades (30 gained, 10 lost: 3.2 standard errors either way).
    candidate = result([1.0] * 30 + [0.0] * 226)
    incumbent = result([0.0] * 30 + [1.0] * 10 + [0.0] * 216)
    mean, error, _ = paired_difference(candidate, incumbent, "acc", 1.0)
    assert 3.1 < mean / error < 3.3


def test_continuous_differences_keep_the_plain_standard_error():
    incumbent = result([0.5, 0.25, 0.75, 0.5], metric="nll")
    candidate = result([0.25, 0.25, 0.5, 0.25], metric="nll")
    mean, error, _ = paired_difference(candidate, incumbent, "nll", -1.0)
    differences = [0.25, 0.0, 0.25, 0.25]
    plain = math.sqrt(sum((value - 0.1875) ** 2 for value in differences) / 3 / 4)
    assert mean == pytest.approx(0.1875) and error == pytest.approx(plain)


def test_only_a_clearly_worse_candidate_stops():
    incumbent = result([0.9, 0.8, 0.7, 0.9, 0.6, 0.8, 0.9, 0.7])
    much_worse = result([0.5, 0.4, 0.3, 0.5])
    noisy = result([0.95, 0.7, 0.8, 0.85])
    assert clearly_worse(much_worse, incumbent, "acc", 1.0, z=1.0)
    assert not clearly_worse(noisy, incumbent, "acc", 1.0, z=1.0)


def test_the_estimate_adds_the_paired_difference_to_the_incumbents_full_value():
    incumbent = result([1.0, 1.0, 0.0, 0.0])                    # full value 0.5
    candidate = result([1.0, 0.0])                              # easy subset: raw 0.5, paired -0.5
    estimate = paired_estimate(candidate, incumbent)
    assert estimate.quality["acc"] == pytest.approx(0.0)
    assert estimate.estimated and estimate.subset_quality == {"acc": 0.5}
    assert estimate.per_item is None


def test_perplexity_is_estimated_on_the_log_scale():
    incumbent = result([2.0, 2.0], metric="perplexity", quality={"perplexity": math.exp(2.0)})
    candidate = result([2.5], metric="perplexity", quality={"perplexity": math.exp(2.5)})
    assert paired_estimate(candidate, incumbent).quality["perplexity"] == pytest.approx(math.exp(2.5))


def test_the_final_choice_keeps_the_start_against_a_candidate_that_is_only_luckier():
    start = result([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    lucky = result([1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0])   # two items gained, one lost: +0.125, SE 0.23
    assert confident_choice([("start", start), ("lucky", lucky)], start, "acc", 1.0, z=1.0)[0] == "start"
    # With z = 0 the choice is the highest value, as a plain search makes it.
    assert confident_choice([("start", start), ("lucky", lucky)], start, "acc", 1.0, z=0.0)[0] == "lucky"


def test_the_final_choice_takes_a_clearly_better_candidate_and_orients_by_direction():
    start = result([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    better = result([1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0])  # three items gained, none lost
    slightly = result([1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    entries = [("start", start), ("slightly", slightly), ("better", better)]
    assert confident_choice(entries, start, "acc", 1.0, z=1.0)[0] == "better"
    # For a metric to minimize the same values make "start" the best: every candidate is higher.
    nll = [(name, result(r.per_item["acc"], metric="nll")) for name, r in entries]
    assert confident_choice(nll, nll[0][1], "nll", -1.0, z=1.0)[0] == "start"
