import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer

from colasearch import Schedule, load_model, scheduled
from colasearch.cli.app import main
from colasearch.testing import make_tiny_model

FINGERPRINTED = object()  # placeholder: the file gets the tiny llama's fingerprint


def cli(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code or 0, captured.out, captured.err


def test_export_checkpoint_from_the_command_line(tmp_path, capsys, tiny_model_dir):
    model, tokenizer = load_model(str(tiny_model_dir))
    schedule = Schedule.from_layers([0, 2, 2, 1, 5], model=model, name=str(tiny_model_dir))
    schedule.save(tmp_path / "s.yaml")

    code, out, err = cli(["export", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "ckpt")], capsys)

    assert code == 0 and err == ""
    assert out.strip() == f"wrote checkpoint export of 5 entries to {tmp_path / 'ckpt'}"
    ids = tokenizer("w5 w9 w17 w33 w8 w60 w61 w4", return_tensors="pt").input_ids
    with torch.no_grad(), scheduled(model, schedule):
        expected = model(ids).logits
    with torch.no_grad():
        logits = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt")(ids).logits
    assert torch.allclose(logits, expected, atol=1e-5, rtol=0)
    assert AutoTokenizer.from_pretrained(tmp_path / "ckpt")("w5 w9").input_ids == [5, 9]


def test_export_mergekit_and_json_need_no_weights(tmp_path, capsys):
    schedule = Schedule.from_layers([0, 1, 2, 4, 5, 4, 5], name="org/tiny")
    schedule.save(tmp_path / "s.yaml")

    code, _, err = cli(["export", str(tmp_path / "s.yaml"), "-f", "mergekit", "-o", str(tmp_path / "m.yaml")], capsys)
    assert code == 0 and err == ""
    slices = yaml.safe_load((tmp_path / "m.yaml").read_text())["slices"]
    assert [piece["sources"][0]["layer_range"] for piece in slices] == [[0, 3], [4, 6], [4, 6]]
    assert {piece["sources"][0]["model"] for piece in slices} == {"org/tiny"}

    code, _, err = cli(["export", str(tmp_path / "s.yaml"), "--format", "json", "--out", str(tmp_path / "s.json")], capsys)
    assert code == 0 and err == ""
    assert json.loads((tmp_path / "s.json").read_text()) == yaml.safe_load((tmp_path / "s.yaml").read_text())


def test_checkpoint_export_refuses_sub_blocks_before_loading_the_model(tmp_path, capsys):
    Schedule.from_layers([0, {"layer": 1, "run": "mlp"}], name=str(tmp_path / "no-such-model")).save(tmp_path / "s.yaml")
    code, out, err = cli(["export", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "ckpt")], capsys)
    assert code == 2 and out == ""
    assert err == ("colasearch: error: cannot export as a checkpoint: sub-block entries 1m (position 1) "
                   "have no equivalent outside colasearch's runtime\n")
    assert not (tmp_path / "ckpt").exists()


# The bad-input contract of the schedule format: each is one line on stderr and exit code 2.
BAD_FILES = {
    "malformed_yaml": ("colasearch_schedule: 1\nlayers: [0, 1\n", "malformed YAML"),
    "wrong_version": ("colasearch_schedule: 9\nlayers: [0, 1]\n", "unsupported format version 9"),
    "empty_chain": ("colasearch_schedule: 1\nlayers: []\n", "the chain is empty"),
    "out_of_range": (FINGERPRINTED, "layer 6 is out of range"),
}


@pytest.fixture
def bad_files(tmp_path):
    paths = {}
    for name, (text, _) in BAD_FILES.items():
        path = tmp_path / f"{name}.yaml"
        if text is FINGERPRINTED:
            good = Schedule.from_layers([0, 1], model=make_tiny_model("llama"))
            path.write_text(good.to_yaml().replace("layers: [0, 1]", "layers: [0, 6]"))
        else:
            path.write_text(text)
        paths[name] = path
    return paths


@pytest.mark.parametrize("name", list(BAD_FILES))
@pytest.mark.parametrize(
    "command",
    [["show"], ["validate"], ["export", "--format", "json", "--out", "{out}"], ["export", "--format", "mergekit", "--model", "m", "--out", "{out}"],
     ["export", "--out", "{out}"]],
    ids=["show", "validate", "export-json", "export-mergekit", "export-checkpoint"],
)
def test_bad_files_give_one_line_and_exit_2(name, command, bad_files, tmp_path, capsys):
    out_path = tmp_path / "out"
    argv = [part.format(out=out_path) for part in command]
    code, out, err = cli([argv[0], str(bad_files[name]), *argv[1:]], capsys)
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert BAD_FILES[name][1] in err
    assert not out_path.exists()


def test_a_foreign_fingerprint_gives_one_line_and_exit_2(tmp_path, capsys, tiny_model_dir):
    Schedule.from_layers([0, 1], model=make_tiny_model("qwen2")).save(tmp_path / "qwen.yaml")
    for argv in (["validate", str(tmp_path / "qwen.yaml"), "--model", str(tiny_model_dir)],
                 ["show", str(tmp_path / "qwen.yaml"), "--model", str(tiny_model_dir)],
                 ["export", str(tmp_path / "qwen.yaml"), "--model", str(tiny_model_dir), "--out", str(tmp_path / "ckpt")]):
        code, _, err = cli(argv, capsys)
        assert code == 2, argv
        assert len(err.splitlines()) == 1, err
        assert "another model" in err and "Qwen2ForCausalLM" in err
    assert not (tmp_path / "ckpt").exists()


def test_the_installed_command_keeps_the_contract(bad_files):
    command = Path(sys.executable).parent / "colasearch"
    result = subprocess.run([str(command), "show", str(bad_files["wrong_version"])], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"colasearch: error: {bad_files['wrong_version']}: colasearch_schedule: unsupported format version 9 "
        "(this colasearch reads version 1)"
    ]


def test_an_unwritable_output_is_one_line_and_exit_2(tmp_path, capsys):
    Schedule.from_layers([0, 1], name="org/tiny").save(tmp_path / "s.yaml")
    (tmp_path / "taken").mkdir()
    (tmp_path / "blocker").write_text("a file, not a folder")
    for argv in (["export", str(tmp_path / "s.yaml"), "-f", "json", "-o", str(tmp_path / "taken")],
                 ["export", str(tmp_path / "s.yaml"), "-f", "mergekit", "-o", str(tmp_path / "blocker" / "m.yaml")],
                 ["show", str(tmp_path / "s.yaml"), "--png", str(tmp_path / "blocker" / "s.png")]):
        code, _, err = cli(argv, capsys)
        assert code == 2, argv
        assert len(err.splitlines()) == 1 and err.startswith("colasearch: error:"), err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["blocker", "s.yaml", "taken"]
    assert not list((tmp_path / "taken").iterdir())


def test_checkpoint_export_of_a_gguf_stem_asks_for_the_model_path(tmp_path, capsys):
    """What ``run`` writes for a local GGUF: its stem, which is no hub id; the user must say where the file is."""
    Schedule.from_layers([0, 2, 3], name="qwen2.5-coder-1.5b-instruct-q4_k_m").save(tmp_path / "s.yaml")
    code, out, err = cli(["export", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "ckpt")], capsys)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "colasearch: error: the schedule names its model 'qwen2.5-coder-1.5b-instruct-q4_k_m', which is no alias, "
        "folder or cached hub id here (a local model file is named by its stem): pass --model PATH"]
    assert not (tmp_path / "ckpt").exists()


def test_export_says_when_the_mergekit_config_names_other_weights_than_the_ones_scored(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLASEARCH_CACHE", str(tmp_path / "empty-cache"))  # no converted copy of the embedded GGUF
    Schedule.from_layers([0, 1, 3], name="smollm2-135m").save(tmp_path / "s.yaml")
    code, out, err = cli(["export", str(tmp_path / "s.yaml"), "-f", "mergekit", "-o", str(tmp_path / "m.yaml")], capsys)
    assert code == 0
    assert err.startswith("colasearch: warning: HuggingFaceTB/SmolLM2-135M-Instruct is not the model that was searched")
    assert len(err.strip().splitlines()) == 1
    assert out.strip().endswith("(layers of HuggingFaceTB/SmolLM2-135M-Instruct)")
    assert "# WARNING: HuggingFaceTB/SmolLM2-135M-Instruct is not the model" in (tmp_path / "m.yaml").read_text()


def test_export_names_a_model_folder_given_for_mergekit_after_checking_it(tmp_path, capsys, tiny_model_dir):
    model, _ = load_model(str(tiny_model_dir))
    Schedule.from_layers([0, 2, 3], model=model).save(tmp_path / "s.yaml")
    code, _, err = cli(["export", str(tmp_path / "s.yaml"), "-f", "mergekit", "-o", str(tmp_path / "m.yaml"),
                        "--model", str(tiny_model_dir)], capsys)
    assert code == 0 and err == ""
    slices = yaml.safe_load((tmp_path / "m.yaml").read_text())["slices"]
    assert {piece["sources"][0]["model"] for piece in slices} == {str(tiny_model_dir)}
    Schedule.from_layers([0, 2, 3], model=make_tiny_model("qwen2")).save(tmp_path / "other.yaml")
    code, _, err = cli(["export", str(tmp_path / "other.yaml"), "-f", "mergekit", "-o", str(tmp_path / "o.yaml"),
                        "--model", str(tiny_model_dir)], capsys)
    assert code == 2 and "not the model the schedule was searched on" in err and not (tmp_path / "o.yaml").exists()
