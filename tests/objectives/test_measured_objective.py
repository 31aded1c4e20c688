"""``--objective measured``: candidates are timed by the protocol, and ranked by what the timing says."""

import pytest

from colasearch.evaluator import Evaluator
from colasearch.objectives import MeasuredCost, make_objective
from colasearch.decoder import decoder_of
from colasearch.schedule import Schedule
from colasearch.speed import SpeedProtocol
from colasearch.tasks import load_task
from colasearch.tasks.char_tokenizer import CharTokenizer
from colasearch.testing import LayerClock


def test_equal_ideal_cost_is_ranked_by_the_measured_cost(tiny_llama):
    layers = len(decoder_of(tiny_llama).layers)
    seconds = [0.01] * layers
    seconds[-1] = 0.005  # the last layer is fast on this "device" (say, its inputs stay in cache)
    head = 0.02  # embeddings, head and the loop around them: the same time with or without a layer
    clock = LayerClock(tiny_llama, seconds, head)
    measured = MeasuredCost(tiny_llama, SpeedProtocol(pairs=4, tokens=4, resamples=200), clock=clock)
    evaluator = Evaluator.from_options(tiny_llama, CharTokenizer(), load_task("builtin:capitals"), search_size=4,
                                       heldout_size=4, measured_cost=measured)
    drop_last = Schedule.from_layers(list(range(layers - 1)), model=tiny_llama)
    drop_first = Schedule.from_layers(list(range(1, layers)), model=tiny_llama)
    last_gone, first_gone = evaluator.evaluate(drop_last), evaluator.evaluate(drop_first)
    assert last_gone.ideal_speedup == pytest.approx(first_gone.ideal_speedup)
    total = head + sum(seconds)
    # Dropping the fast last layer saves less time than dropping the first, of the same size.
    assert last_gone.measured_speedup == pytest.approx(total / (total - 0.005))
    assert first_gone.measured_speedup == pytest.approx(total / (total - 0.01))
    target = (last_gone.measured_speedup + first_gone.measured_speedup) / 2
    by_measure = make_objective("measured", "acc", target_speedup=target)
    assert by_measure.feasible(first_gone) and not by_measure.feasible(last_gone)
    assert by_measure.scalar(first_gone) > by_measure.scalar(last_gone)
    # The ideal ratio cannot tell them apart: at its level both pass.
    by_ideal = make_objective("constrained", "acc", target_speedup=first_gone.ideal_speedup)
    assert by_ideal.feasible(last_gone) and by_ideal.feasible(first_gone)
    # Timed once per schedule and device, not once per split or fidelity.
    evaluator.evaluate(drop_last, "heldout")
    assert len(measured.measurements) == 2
