"""The numbers in the shipped ``schedules/`` files, not only their schema: held-out quality within the split's
noise of a fresh evaluation, and a measured speedup that the protocol would ship (within the layer-count bound,
with its interval and pairs beside it)."""

import math
from pathlib import Path

import pytest

from colasearch.cost import CostModel
from colasearch.schedule import Schedule

SHIPPED = sorted((Path(__file__).resolve().parents[1] / "schedules").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[path.name for path in SHIPPED])
def test_the_recorded_speedup_is_one_the_protocol_ships(path):
    speedup = Schedule.load(path).metrics.speedup
    assert speedup.pairs and speedup.pairs % 2 == 0 and speedup.interval and speedup.bound
    if speedup.measured is None:
        assert speedup.flag, "a missing figure says why"
    else:
        low, high = speedup.interval
        assert low <= speedup.measured <= high <= speedup.bound * 1.5
        assert speedup.measured <= speedup.bound


@pytest.mark.integration
@pytest.mark.parametrize("path", SHIPPED, ids=[path.name for path in SHIPPED])
def test_recorded_numbers_hold_on_a_fresh_evaluation(path, smollm):
    from colasearch.evaluator import Evaluator
    from colasearch.tasks import load_task

    model, tokenizer = smollm
    schedule = Schedule.load(path)
    schedule.check_fits(model)
    provenance, quality = schedule.provenance, schedule.metrics.quality
    evaluator = Evaluator.from_options(model, tokenizer, load_task(provenance.task_spec),
                                       search_size=provenance.search_size, heldout_size=provenance.heldout_size,
                                       seed=provenance.split_seed, confirm_size=0)
    items = len(evaluator.split_items("heldout"))
    for variant, recorded in ((schedule, quality.heldout), (None, quality.full_heldout)):
        fresh = evaluator.evaluate(variant, "heldout").quality[quality.metric]
        # The split's own noise: two binomial standard errors of an accuracy on this many items.
        noise = 2 * math.sqrt(max(fresh * (1 - fresh), 0.05) / items)
        assert abs(fresh - recorded) <= noise, (variant is None, fresh, recorded, noise)
    speedup = schedule.metrics.speedup
    assert speedup.bound == pytest.approx(CostModel.from_model(model).layer_bound(schedule), rel=1e-3)
    assert speedup.ideal == pytest.approx(CostModel.from_model(model).ideal_speedup(schedule), rel=1e-6)
    # Worth shipping: the schedule keeps at least half of the full model's held-out quality.
    assert quality.heldout >= 0.5 * quality.full_heldout
