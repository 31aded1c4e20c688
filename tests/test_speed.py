"""The one speed protocol (colasearch.speed): ABBA order, the interval, the flags, driven by a fake clock."""

import itertools

import numpy as np
import pytest
import torch

from colasearch.benchmark import measure_speedup
from colasearch.cost import CostModel
from colasearch.decoder import decoder_of
from colasearch.schedule import Schedule
from colasearch.speed import FULL, SCHEDULE, SpeedProtocol, summarize, time_pairs
from colasearch.testing import LayerClock

PROTOCOL = SpeedProtocol(pairs=12, tokens=8, resamples=500)


def test_pairs_run_in_abba_order_after_one_warm_up_of_each():
    calls = []

    def time_run(variant):
        calls.append(variant)
        return 1.0

    samples = time_pairs(time_run, PROTOCOL)
    assert len(samples) == 12
    assert calls[:2] == [FULL, SCHEDULE]  # the warm-up, not counted
    pairs = [tuple(calls[index:index + 2]) for index in range(2, len(calls), 2)]
    assert pairs == [(FULL, SCHEDULE), (SCHEDULE, FULL)] * 6
    firsts = [pair[0] for pair in pairs]
    assert firsts.count(FULL) == firsts.count(SCHEDULE)  # neither variant runs first more often


def test_odd_pair_counts_are_refused():
    with pytest.raises(ValueError, match="even"):
        SpeedProtocol(pairs=5)


def test_steady_times_give_their_ratio_and_a_tight_interval():
    samples = [(1.0, 0.8)] * 12
    measurement = summarize(samples, bound=1.3, protocol=PROTOCOL)
    assert measurement.shipped and measurement.flag is None
    assert measurement.speedup == pytest.approx(1.25)
    assert measurement.interval == pytest.approx((1.25, 1.25))
    assert measurement.record()["measured"] == pytest.approx(1.25)


def test_a_figure_above_the_layer_count_bound_is_flagged_never_shipped():
    samples = [(1.0, 0.5)] * 12  # 2x, where the schedule keeps 22 of 30 layers
    measurement = summarize(samples, bound=30 / 22, protocol=PROTOCOL)
    assert measurement.speedup is None and not measurement.shipped
    assert "above the layer-count bound" in measurement.flag
    assert measurement.estimate == pytest.approx(2.0)  # kept as evidence, beside the flag
    record = measurement.record()
    assert record["measured"] is None and record["flag"] == measurement.flag and record["interval"] == [2.0, 2.0]


def test_every_wording_of_a_flagged_figure_says_flagged_and_never_shows_it_as_a_number():
    shipped = summarize([(1.0, 0.8)] * 12, bound=1.3, protocol=PROTOCOL)
    flagged = summarize([(1.0, 0.5)] * 12, bound=30 / 22, protocol=PROTOCOL)
    assert shipped.verdict() == shipped.cell() == "1.250x" and shipped.describe() == "1.250x [1.250-1.250]"
    assert "95% interval 1.250-1.250 over 12 pairs" in shipped.sentence("x")
    for text in (flagged.verdict(), flagged.describe(), flagged.cell()):
        assert text.startswith("flagged (")  # the estimate only ever appears inside the flag, as doubtful
    assert flagged.sentence("x") == f"measured speedup of x not shipped: {flagged.flag}"
    assert flagged.cell() == "flagged (2.000x?)" and flagged.flag in flagged.verdict()


def test_a_wide_interval_is_flagged():
    generator = np.random.default_rng(0)
    samples = [(float(generator.uniform(0.5, 2.0)), float(generator.uniform(0.5, 2.0))) for _ in range(12)]
    measurement = summarize(samples, bound=10.0, protocol=PROTOCOL)
    low, high = measurement.interval
    assert low < measurement.estimate < high and high - low > 0.1 * measurement.estimate
    assert measurement.speedup is None and "wider than" in measurement.flag


def test_interference_only_adds_time_and_the_low_quantile_sees_through_it():
    """A busy neighbour slows a few runs of either variant; the figure stays that of the quiet runs."""
    samples = [(1.0, 0.8)] * 12
    samples[1] = (3.0, 0.8)  # the full model was hit
    samples[6] = (1.0, 2.4)  # the schedule was hit
    measurement = summarize(samples, bound=1.3, protocol=PROTOCOL)
    assert measurement.speedup == pytest.approx(1.25)


def test_the_interval_covers_the_truth_under_noise():
    generator = np.random.default_rng(3)
    # Per-token times: the schedule truly takes 0.8 of the full model's, plus positive (one-sided) noise.
    samples = [(1.0 + float(generator.exponential(0.02)), 0.8 + float(generator.exponential(0.016)))
               for _ in range(12)]
    measurement = summarize(samples, bound=1.3, protocol=PROTOCOL)
    low, high = measurement.interval
    assert low <= 1.25 * 1.01 and high >= 1.25 * 0.97
    assert measurement.shipped


def test_measure_speedup_times_the_model_by_the_clock_it_is_given(tiny_llama):
    layers = len(decoder_of(tiny_llama).layers)
    schedule = Schedule.from_layers(list(range(layers - 2)), model=tiny_llama)
    clock = LayerClock(tiny_llama, seconds_per_layer=0.01, seconds_per_forward=0.005)
    measurement = measure_speedup(tiny_llama, schedule, PROTOCOL, clock=clock)
    expected = (0.005 + layers * 0.01) / (0.005 + (layers - 2) * 0.01)
    assert measurement.speedup == pytest.approx(expected)
    assert measurement.full_seconds_per_token == pytest.approx(0.005 + layers * 0.01)
    assert measurement.bound == pytest.approx(CostModel.from_model(tiny_llama).layer_bound(schedule))
    assert measurement.speedup <= measurement.bound
    assert measurement.pairs == 12 and measurement.tokens == 8


def test_the_layer_count_bound_counts_sub_blocks_by_their_share(tiny_llama):
    cost = CostModel.from_model(tiny_llama)
    layers = cost.num_layers
    whole = Schedule.from_layers(list(range(layers - 1)), model=tiny_llama)
    assert cost.layer_bound(whole) == pytest.approx(layers / (layers - 1))
    half = Schedule.from_layers([*range(layers - 1), {"layer": layers - 1, "run": "mlp"}], model=tiny_llama)
    per_layer = cost.attention[0] + cost.mlp[0]
    assert cost.layer_bound(half) == pytest.approx(layers * per_layer / ((layers - 1) * per_layer + cost.mlp[0]))
    assert cost.layer_bound(whole) > cost.ideal_speedup(whole)  # the head costs the same in both
    repeated = Schedule.from_layers([*range(layers), 0], model=tiny_llama)
    assert cost.layer_bound(repeated) < 1


def test_a_schedule_file_refuses_a_figure_above_its_own_bound(tiny_llama):
    from colasearch.errors import ScheduleError

    data = Schedule.from_layers([0, 1], model=tiny_llama).to_dict()
    data["metrics"] = {"speedup": {"ideal": 1.2, "measured": 1.9, "bound": 1.36}}
    with pytest.raises(ScheduleError, match="above its layer-count bound"):
        Schedule.from_dict(data)
    data["metrics"] = {"speedup": {"ideal": 1.2, "measured": None, "bound": 1.36, "flag": "noise",
                                   "interval": [1.7, 2.1]}}
    assert Schedule.from_dict(data).metrics.speedup.flag == "noise"


@torch.no_grad()
def test_real_timing_on_a_tiny_model_is_either_within_the_bound_or_flagged(tiny_llama):
    """Real clocks on a shared CI machine: whatever they say, nothing above the bound ships."""
    layers = len(decoder_of(tiny_llama).layers)
    schedule = Schedule.from_layers(list(range(layers // 2)), model=tiny_llama)
    for _ in itertools.repeat(None, 2):
        measurement = measure_speedup(tiny_llama, schedule, SpeedProtocol(pairs=4, tokens=4, resamples=200))
        assert measurement.speedup is None or measurement.speedup <= measurement.bound
        assert measurement.speedup is not None or measurement.flag
        assert measurement.interval[0] <= measurement.estimate <= measurement.interval[1]
