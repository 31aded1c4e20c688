import re
from pathlib import Path

import pytest

from colasearch import Schedule
from colasearch.cli.app import main
from colasearch.errors import ScheduleError
from colasearch.testing import make_tiny_model
from colasearch.validate import load_valid, schedule_problems, validate_schedule_file

VALID = """\
colasearch_schedule: 1
model:
  name: tiny-llama
layers: [0, 1, {layer: 2, run: attn}, 2, 5]
"""

# Five ways to break a schedule, each with the message that must name what is wrong.
BROKEN = {
    "malformed_yaml": ("colasearch_schedule: 1\nlayers: [0, 1\n", r"^line \d+: malformed YAML"),
    "wrong_version": ("colasearch_schedule: 7\nlayers: [0, 1]\n", r"^colasearch_schedule: unsupported format version 7"),
    "bad_entry": ("colasearch_schedule: 1\nlayers: [0, {layer: 1, run: both}]\n", r"^layers\.1\.run: Input should be 'all', 'attn' or 'mlp'"),
    "empty_chain": ("colasearch_schedule: 1\nlayers: []\n", r"^layers: the chain is empty"),
    "out_of_range": ("colasearch_schedule: 1\nlayers: [0, 6]\n", r"^layers\.1: layer 6 is out of range: the model has 6 layers \(0-5\)"),
    "foreign_model": (None, r"^model\.fingerprint: written for another model \(schedule vs model: architecture 'Qwen2ForCausalLM' != 'LlamaForCausalLM'"),
}


def cli(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.fixture(scope="module")
def tiny_llama_model():
    return make_tiny_model("llama")


@pytest.fixture
def broken_files(tmp_path):
    files = {}
    for name, (text, _) in BROKEN.items():
        if text is None:
            Schedule.from_layers([0, 1], model=make_tiny_model("qwen2")).save(tmp_path / f"{name}.yaml")
        else:
            (tmp_path / f"{name}.yaml").write_text(text)
        files[name] = tmp_path / f"{name}.yaml"
    return files


@pytest.fixture
def config_dir(tmp_path, tiny_llama_model):
    """A model folder with only its config: validate reads no weights."""
    folder = tmp_path / "tiny-llama-config"
    tiny_llama_model.config.save_pretrained(folder)
    return folder


def test_a_valid_file_has_no_problems(tmp_path, tiny_llama_model):
    (tmp_path / "ok.yaml").write_text(VALID)
    assert validate_schedule_file(tmp_path / "ok.yaml", model=tiny_llama_model) == []
    assert load_valid(tmp_path / "ok.yaml").chain == "0 1 2a 2 5"


@pytest.mark.parametrize("name", list(BROKEN))
def test_each_broken_file_gets_its_own_message(name, broken_files, tiny_llama_model):
    problems = validate_schedule_file(broken_files[name], model=tiny_llama_model)
    assert len(problems) >= 1
    assert all("\n" not in problem for problem in problems)
    assert re.match(BROKEN[name][1], problems[0]), problems


def test_messages_are_all_different(broken_files, tiny_llama_model):
    firsts = [validate_schedule_file(path, model=tiny_llama_model)[0] for path in broken_files.values()]
    assert len(set(firsts)) == len(firsts)


def test_all_problems_are_collected_at_once(tiny_llama_model):
    document = {
        "colasearch_schedule": 3,
        "model": {"fingerprint": {"architecture": "Other", "num_layers": 6, "hidden_size": 32, "shape_hash": "x"}},
        "layers": [0, -1, {"layer": 1, "run": "nope"}, "two", 9],
        "task": 5,
        "surprise": True,
    }
    problems = schedule_problems(document, model=tiny_llama_model)
    expected_starts = [
        "colasearch_schedule: unsupported format version 3",
        "layers.1: layer index -1 is negative",
        "layers.2.run:",
        "layers.3: 'two' is neither a layer index",
        "task: Input should be a valid string",
        "surprise: Extra inputs are not permitted",
        "model.fingerprint: written for another model (schedule vs model: architecture 'Other' != 'LlamaForCausalLM', shape_hash 'x' != ",
        "layers.4: layer 9 is out of range",
    ]
    assert len(problems) == len(expected_starts)
    for problem, start in zip(problems, expected_starts):
        assert problem.startswith(start), (problem, start)


def test_without_a_model_the_declared_fingerprint_bounds_the_layers(tmp_path, tiny_llama_model):
    Schedule.from_layers([0, 1], model=tiny_llama_model).with_fields(
        layers=Schedule.from_layers([0, 7]).layers).save(tmp_path / "s.yaml")
    assert validate_schedule_file(tmp_path / "s.yaml") == [
        "layers.1: layer 7 is out of range: the schedule's fingerprint has 6 layers (0-5)"
    ]
    with pytest.raises(ScheduleError, match="layer 7 is out of range"):
        load_valid(tmp_path / "s.yaml")


def test_expert_importance_needs_one_value_per_layer(tiny_llama_model):
    document = {"colasearch_schedule": 1, "layers": [0, 1],
                "experts": {"importance": [1.0, 0.5], "thresholds": {"text": 0.1}}}
    assert schedule_problems(document, model=tiny_llama_model) == [
        "experts.importance: has 2 values, one per layer of a 6-layer model"
    ]


def test_top_level_must_be_a_mapping(tmp_path):
    (tmp_path / "list.yaml").write_text("- 0\n- 1\n")
    assert validate_schedule_file(tmp_path / "list.yaml") == ["schedule: expected a mapping at the top level, got list"]
    assert validate_schedule_file(tmp_path / "missing.yaml")[0].startswith("cannot read the file")


def test_cli_prints_every_problem_on_stderr_and_exits_2(tmp_path, capsys, config_dir):
    (tmp_path / "bad.yaml").write_text("colasearch_schedule: 2\nlayers: [0, -3, 40]\n")
    code, out, err = cli(["validate", str(tmp_path / "bad.yaml"), "--model", str(config_dir)], capsys)
    lines = err.splitlines()
    assert code == 2 and out == ""
    assert lines == [
        f"{tmp_path / 'bad.yaml'}: colasearch_schedule: unsupported format version 2 (this colasearch reads version 1)",
        f"{tmp_path / 'bad.yaml'}: layers.1: layer index -3 is negative",
        f"{tmp_path / 'bad.yaml'}: layers.2: layer 40 is out of range: the model has 6 layers (0-5)",
    ]


@pytest.mark.parametrize("name", list(BROKEN))
def test_cli_gives_one_line_for_each_broken_file(name, broken_files, capsys, config_dir):
    code, out, err = cli(["validate", str(broken_files[name]), "--model", str(config_dir)], capsys)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1
    assert str(broken_files[name]) in err


def test_cli_accepts_a_valid_file(tmp_path, capsys, config_dir):
    (tmp_path / "ok.yaml").write_text(VALID)
    code, out, err = cli(["validate", str(tmp_path / "ok.yaml"), "--model", str(config_dir)], capsys)
    assert (code or 0) == 0 and err == ""
    assert out.strip() == f"{tmp_path / 'ok.yaml'}: valid, fits {config_dir}"


def test_cli_refuses_a_missing_model_in_one_line(tmp_path, capsys):
    (tmp_path / "ok.yaml").write_text(VALID)
    code, _, err = cli(["validate", str(tmp_path / "ok.yaml"), "--model", str(tmp_path / "nowhere")], capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("colasearch: error:") and "nowhere" in err


SHIPPED = sorted((Path(__file__).resolve().parents[1] / "schedules").glob("*.yaml"))


@pytest.mark.integration
@pytest.mark.parametrize("path", SHIPPED, ids=[path.name for path in SHIPPED])
def test_shipped_schedules_load_validate_and_apply(path, smollm):
    import torch

    from colasearch import scheduled

    model, tokenizer = smollm
    assert validate_schedule_file(path, model=model) == []
    schedule = load_valid(path)
    ids = tokenizer("Layer schedules ship as", return_tensors="pt").input_ids
    with torch.no_grad(), scheduled(model, schedule):
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], model.config.vocab_size)
    assert torch.isfinite(logits).all()
