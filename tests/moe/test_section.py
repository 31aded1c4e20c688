"""The schedule's ``experts`` section: validation, YAML round trip, key, and the gate rule itself."""

import pytest
import torch

from colasearch import Schedule, ScheduleError
from colasearch.cost import CostModel
from colasearch.moe import TOKEN_GROUPS, expert_skip_ratio, expert_skipping_section, skip_mask, threshold_for_skip_ratio
from colasearch.moe.gating import renormalized, threshold_vector

from .conftest import IMPORTANCE, prompts


def test_section_round_trips_through_yaml(tmp_path, moe_model):
    section = expert_skipping_section(IMPORTANCE, 0.05, renormalize=False)
    schedule = Schedule.from_layers([0, 1, 2, 2, 3], model=moe_model, experts=section)
    loaded = Schedule.load(schedule.save(tmp_path / "s.yaml"))
    assert loaded == schedule
    assert loaded.experts.thresholds == {"text": 0.05} and loaded.experts.renormalize is False
    other = schedule.with_fields(experts=expert_skipping_section(IMPORTANCE, 0.06, renormalize=False))
    assert other.key != schedule.key


@pytest.mark.parametrize("experts, message", [
    ({"importance": [0.5, -0.1], "thresholds": {"text": 0.1}}, "finite and >= 0"),
    ({"importance": [], "thresholds": {"text": 0.1}}, "importance"),
    ({"importance": [0.5, 0.5], "thresholds": {"audio": 0.1}}, "unknown token group 'audio'"),
    ({"importance": [0.5, 0.5], "thresholds": {"text": -1.0}}, "thresholds must be finite"),
    ({"importance": [0.5, 0.5], "thresholds": {}}, "thresholds"),
    ({"importance": [0.5, 0.5], "thresholds": {"text": 0.1}, "topk": 2}, "topk"),
])
def test_bad_sections_are_refused_with_one_line(experts, message):
    data = {"colasearch_schedule": 1, "layers": [0, 1], "experts": experts}
    with pytest.raises(ScheduleError, match=message) as caught:
        Schedule.from_dict(data)
    assert "\n" not in str(caught.value)


def test_each_token_group_uses_its_own_threshold():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]] * 4)
    index = torch.tensor([[0, 1]] * 4)
    thresholds = threshold_vector({"text": 0.3, "image": 0.7})
    groups = torch.tensor([TOKEN_GROUPS.index(name) for name in ("text", "image", "text", "image")])
    probabilities = torch.softmax(logits, -1)[0, :2]  # about 0.64 and 0.24
    skipped = skip_mask(logits, index, 1.0, thresholds, groups)
    assert skipped[0].tolist() == (probabilities < 0.3).tolist() == [False, True]
    assert skipped[1].tolist() == (probabilities < 0.7).tolist() == [True, True]
    assert torch.equal(skip_mask(logits, index, 1.0, thresholds), skipped[[0, 2, 0, 2]])


def test_renormalized_keeps_the_original_weight_sum():
    weights = torch.tensor([[0.5, 0.3], [0.6, 0.2], [0.7, 0.1]])
    kept = torch.tensor([[True, True], [True, False], [False, False]])
    result = renormalized(weights, kept)
    assert torch.equal(result[0], weights[0])
    torch.testing.assert_close(result[1], torch.tensor([0.8, 0.0]))
    assert torch.equal(result[2], torch.zeros(2))


def test_threshold_for_a_target_skip_ratio(moe_model):
    input_ids, mask = prompts()
    schedule = Schedule.identity(moe_model).with_fields(experts=expert_skipping_section(IMPORTANCE, 0.0))
    for target in (0.5, 0.8):
        tau = threshold_for_skip_ratio(moe_model, schedule, target, input_ids, mask, tolerance=0.02)
        measured = expert_skip_ratio(moe_model, schedule.with_fields(
            experts=expert_skipping_section(IMPORTANCE, tau)), input_ids, mask)
        assert measured >= target - 0.02
        assert measured <= target + 0.1  # routed pairs are discrete; bisection stops at the first crossing
    with pytest.raises(ScheduleError, match="target skip ratio"):
        threshold_for_skip_ratio(moe_model, schedule, 1.5, input_ids, mask)


def test_ideal_speedup_counts_the_measured_skip_ratio(moe_model):
    costs = CostModel.from_model(moe_model)
    schedule = Schedule.identity(moe_model)
    assert costs.ideal_speedup(schedule, expert_skip_ratio=0.0) == costs.ideal_speedup(schedule) == 1.0
    half, all_skipped = (costs.ideal_speedup(schedule, expert_skip_ratio=ratio) for ratio in (0.5, 1.0))
    assert 1.0 < half < all_skipped
    routed = sum(costs.routed)
    assert routed > 0
    total = costs.params_per_token(None)
    assert all_skipped == pytest.approx(total / (total - routed))
    assert CostModel.from_dict(costs.to_dict()) == costs
    legacy = {key: value for key, value in costs.to_dict().items() if key != "routed"}
    assert CostModel.from_dict(legacy).ideal_speedup(schedule) == 1.0
