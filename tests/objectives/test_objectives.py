import math

import pytest

from colasearch.objectives import (
    OBJECTIVES, BaseObjective, ConstrainedObjective, MeasuredCost, ObjectiveError, ParetoObjective,
    ScalarizedObjective, make_objective, pareto_front,
)
from colasearch.results import EvalResult
from colasearch.schedule import Schedule


def result(acc=0.6, speedup=1.3, perplexity=12.0, measured=None, key="k"):
    return EvalResult(schedule_key=key, task="t", split="search", quality={"acc": acc, "perplexity": perplexity},
                      ideal_speedup=speedup, measured_speedup=measured)


def test_registry_names_every_objective_and_builds_it():
    assert set(OBJECTIVES) == {"quality", "constrained", "scalarized", "pareto", "measured", "speculative"}
    # The speculative objective reads the draft's acceptance, which an evaluator asked for it puts in extra.
    sample = EvalResult(**{**result().to_dict(), "extra": {"acceptance_rate": 0.8, "draft_tokens": 4}})
    for name, cls in OBJECTIVES.items():
        objective = make_objective(name, "acc", "maximize", target_speedup=1.2)
        assert isinstance(objective, cls) and isinstance(objective, BaseObjective) and cls.name == name
        assert len(objective.values(sample)) == len(objective.directions)


def test_constrained_is_quality_when_fast_enough_and_minus_infinity_otherwise():
    objective = make_objective("constrained", "acc", "maximize", target_speedup=1.25)
    assert objective.scalar(result(speedup=1.3)) == 0.6 and objective.feasible(result(speedup=1.25))
    assert objective.scalar(result(speedup=1.2)) == -math.inf
    assert make_objective("constrained", "perplexity", "minimize", target_speedup=1.0).scalar(result()) == -12.0


def test_scalarized_trades_quality_against_cost():
    objective = make_objective("scalarized", "acc", "maximize", lam=0.5)
    assert objective.directions == ("maximize",)
    assert objective.values(result(acc=0.6, speedup=2.0)) == (pytest.approx(0.6 - 0.5 * 0.5),)
    # A faster schedule with the same quality scores higher; lambda 0 is quality alone.
    assert objective.scalar(result(speedup=2.0)) > objective.scalar(result(speedup=1.5))
    assert make_objective("scalarized", "acc", lam=0.0).scalar(result()) == 0.6
    minimized = ScalarizedObjective("perplexity", "minimize", lam=1.0)
    assert minimized.values(result(perplexity=10.0, speedup=2.0)) == (pytest.approx(-10.5),)


def test_pareto_keeps_both_values_and_finds_the_front():
    objective = make_objective("pareto", "acc", "maximize")
    assert objective.directions == ("maximize", "maximize") and objective.values(result()) == (0.6, 1.3)
    points = [result(0.7, 1.1, key="a"), result(0.6, 1.3, key="b"), result(0.5, 1.2, key="c"), result(0.4, 1.5, key="d")]
    assert [r.schedule_key for r in pareto_front(points, objective)] == ["a", "b", "d"]
    assert not ParetoObjective("acc", target_speedup=1.4).feasible(result(speedup=1.3))


def test_measured_objective_holds_schedules_to_the_measured_speedup_alone():
    objective = make_objective("measured", "acc", target_speedup=1.2)
    assert not objective.feasible(result(speedup=1.5, measured=1.1))
    assert objective.feasible(result(speedup=1.1, measured=1.3))
    # Not timed is not feasible: falling back to the ideal ratio made this objective 'constrained' in disguise.
    assert not objective.feasible(result(speedup=1.5, measured=None))


@pytest.mark.parametrize("call, message", [
    (lambda: make_objective("nope", "acc"), "unknown objective"),
    (lambda: make_objective("constrained", "acc"), "needs a target speedup"),
    (lambda: make_objective("constrained", "acc", target_speedup=0.5), "at least 1.0"),
    (lambda: make_objective("constrained", "acc", target_speedup=1.2, lam=0.1), "takes no lambda"),
    (lambda: make_objective("scalarized", "acc", lam=-1), "non-negative"),
    (lambda: make_objective("quality", "acc", "upward"), "maximize or minimize"),
    (lambda: make_objective("quality", "acc", bogus=1), "unknown option"),
    (lambda: make_objective("quality", "bleu").values(result()), "not reported"),
])
def test_bad_objective_input_is_one_clear_error(call, message):
    with pytest.raises(ObjectiveError, match=message):
        call()


def test_measured_cost_is_full_model_time_over_schedule_time(tiny_llama):
    from colasearch.speed import SpeedProtocol

    # A clock that ticks once per decoder layer run: a token's time is the number of layers it ran, so the
    # speedup of a schedule is exactly full layers over its layers, and a ratio upside down shows.
    ticks = [0]
    for layer in tiny_llama.model.layers:
        layer.register_forward_hook(lambda *args: ticks.__setitem__(0, ticks[0] + 1))
    cost = MeasuredCost(tiny_llama, SpeedProtocol(pairs=2, tokens=3, prompt_tokens=4, resamples=20),
                        clock=lambda: float(ticks[0]))
    short = Schedule.from_layers([0, 5], model=tiny_llama)  # 2 layer runs of the full model's 6
    looped = Schedule.from_layers([0, 1, 2, 3, 4, 5, 5, 5], model=tiny_llama)  # 8 layer runs
    assert cost.speedup(None) == 1.0
    assert cost.speedup(short) == pytest.approx(6 / 2)
    assert cost.speedup(looped) == pytest.approx(6 / 8)
    # Each schedule is timed once per device; asking again runs nothing.
    timed = ticks[0]
    assert cost.speedup(short) == pytest.approx(3.0) and ticks[0] == timed
    assert set(cost.measurements) == {(short.key, cost.device), (looped.key, cost.device)}


def test_constrained_subclass_reads_ideal_speedup():
    assert ConstrainedObjective("acc", target_speedup=1.0).speedup(result(speedup=1.7)) == 1.7
