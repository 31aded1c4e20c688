import random

import pytest
import yaml

from colasearch import Schedule
from colasearch.errors import ScheduleError
from colasearch.export import layer_ranges, mergekit_config, write_mergekit


def expand(ranges):
    return [layer for start, end in ranges for layer in range(start, end)]


@pytest.mark.parametrize("seed", range(25))
def test_ranges_reproduce_random_chains_with_fewest_slices(seed):
    rng = random.Random(seed)
    chain = [rng.randrange(12) if rng.random() < 0.3 else layer for layer in range(12) if rng.random() < 0.8]
    chain = chain or [0]
    ranges = layer_ranges(Schedule.from_layers(chain))
    assert expand(ranges) == chain
    assert all(start < end for start, end in ranges)
    # Maximal: two neighbouring slices could never be one.
    assert all(previous_end != next_start for (_, previous_end), (next_start, _) in zip(ranges, ranges[1:]))


@pytest.mark.parametrize(
    ("chain", "expected"),
    [
        (list(range(30)), [(0, 30)]),
        ([0, 1, 2, 3, 4, 6, 7, 8, 10, 11], [(0, 5), (6, 9), (10, 12)]),
        ([0, 1, 2, 1, 2, 3], [(0, 3), (1, 4)]),  # a repeated block
        ([3, 3, 3], [(3, 4), (3, 4), (3, 4)]),  # a looped layer
        ([5, 6, 0, 1], [(5, 7), (0, 2)]),  # reordered
    ],
)
def test_known_chains(chain, expected):
    assert layer_ranges(Schedule.from_layers(chain)) == expected


def test_config_is_a_passthrough_of_the_named_model(tmp_path):
    schedule = Schedule.from_layers([0, 1, 2, 5, 6], name="HuggingFaceTB/SmolLM2-135M-Instruct")
    config = mergekit_config(schedule, dtype="bfloat16")
    assert config["merge_method"] == "passthrough"
    assert config["dtype"] == "bfloat16"
    assert config["slices"] == [
        {"sources": [{"model": "HuggingFaceTB/SmolLM2-135M-Instruct", "layer_range": [0, 3]}]},
        {"sources": [{"model": "HuggingFaceTB/SmolLM2-135M-Instruct", "layer_range": [5, 7]}]},
    ]
    written = yaml.safe_load(write_mergekit(schedule, tmp_path / "merge.yaml", model="/models/smol").read_text())
    assert [source["model"] for piece in written["slices"] for source in piece["sources"]] == ["/models/smol"] * 2
    assert expand(tuple(source["layer_range"]) for piece in written["slices"] for source in piece["sources"]) == [0, 1, 2, 5, 6]


def test_sub_blocks_and_a_missing_model_are_refused(tmp_path):
    with pytest.raises(ScheduleError, match=r"sub-block entries 2m \(position 1\)"):
        layer_ranges(Schedule.from_layers([0, {"layer": 2, "run": "mlp"}]))
    with pytest.raises(ScheduleError, match="--model"):
        mergekit_config(Schedule.from_layers([0, 1]))
    assert not list(tmp_path.iterdir())


def test_the_embedded_alias_becomes_its_hub_repository():
    config = mergekit_config(Schedule.from_layers([0, 1], name="smollm2-135m"))
    assert config["slices"][0]["sources"][0]["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
