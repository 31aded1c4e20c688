import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from colasearch import Schedule, apply_schedule, restore
from colasearch.errors import ColasearchError, ScheduleError
from colasearch.export import export_checkpoint, materialized_config_fields
from colasearch.export.checkpoint import SCHEDULE_FILENAME
from colasearch.files import WriteFailed, readable_mode
from colasearch.testing import TINY_FAMILIES, make_tiny_model, tiny_config

# Skips, a repeat, a reorder, and (with 20 tokens against qwen2's window of 8) sliding layers moved around.
CHAIN = [0, 1, 1, 3, 5, 4, 5]


def input_ids(batch=2, length=20, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(3, 96, (batch, length), generator=generator)


@torch.no_grad()
def scheduled_logits(model, schedule, ids):
    apply_schedule(model, schedule)
    try:
        return model(ids).logits
    finally:
        restore(model)


@torch.no_grad()
def exported_logits(folder, ids):
    loaded = AutoModelForCausalLM.from_pretrained(folder).eval()
    return loaded, loaded(ids).logits


@pytest.mark.parametrize("family", TINY_FAMILIES + ("mixtral", "qwen2_moe"))
def test_checkpoint_logits_equal_the_schedule(family, tmp_path):
    model = make_tiny_model(family)
    schedule = Schedule.from_layers(CHAIN, model=model)
    ids = input_ids()
    expected = scheduled_logits(model, schedule, ids)

    export_checkpoint(model, schedule, tmp_path / "out")
    loaded, logits = exported_logits(tmp_path / "out", ids)

    assert loaded.config.num_hidden_layers == len(CHAIN)
    assert torch.allclose(logits, expected, atol=1e-5, rtol=0)


def test_per_layer_types_follow_their_layer(tmp_path):
    model = make_tiny_model("qwen2")  # layers 3-5 slide, 0-2 attend fully
    original_types = list(model.config.layer_types)
    schedule = Schedule.from_layers([4, 0, 2, 2, 5], model=model)
    export_checkpoint(model, schedule, tmp_path / "out")
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["layer_types"] == [original_types[layer] for layer in (4, 0, 2, 2, 5)]
    assert config["max_window_layers"] == model.config.max_window_layers  # no full-then-sliding split to describe
    assert model.config.layer_types == original_types
    prefix = materialized_config_fields(model.config, Schedule.from_layers([0, 1, 3, 4, 4]))
    assert prefix["layer_types"] == ["full_attention"] * 2 + ["sliding_attention"] * 3
    assert prefix["max_window_layers"] == 2


def test_gemma2_alternating_layers_round_trip(tmp_path):
    from transformers import AutoConfig

    torch.manual_seed(0)
    config = AutoConfig.for_model(
        "gemma2", vocab_size=96, hidden_size=32, intermediate_size=64, num_attention_heads=4, num_key_value_heads=2,
        head_dim=8, num_hidden_layers=6, sliding_window=8, max_position_embeddings=256,
    )
    config._attn_implementation = "eager"
    model = AutoModelForCausalLM.from_config(config).eval()
    schedule = Schedule.from_layers(CHAIN, model=model)
    ids = input_ids()
    expected = scheduled_logits(model, schedule, ids)
    export_checkpoint(model, schedule, tmp_path / "out")
    loaded, logits = exported_logits(tmp_path / "out", ids)
    assert loaded.config.layer_types == [model.config.layer_types[layer] for layer in CHAIN]
    assert torch.allclose(logits, expected, atol=1e-5, rtol=0)


def test_qwen_moe_dense_layers_are_renumbered(tmp_path):
    config = tiny_config("qwen2_moe")
    config.decoder_sparse_step = 2  # layers 1, 3, 5 are sparse, 0, 2, 4 dense
    config.mlp_only_layers = [3]
    fields = materialized_config_fields(config, Schedule.from_layers([5, 3, 0, 1]))
    assert fields["mlp_only_layers"] == [1, 2]
    assert fields["decoder_sparse_step"] == 1


def test_sparse_step_export_keeps_logits(tmp_path):
    torch.manual_seed(0)
    config = tiny_config("qwen2_moe")
    config.decoder_sparse_step = 2
    config._attn_implementation = "sdpa"
    model = AutoModelForCausalLM.from_config(config).eval()
    schedule = Schedule.from_layers([1, 0, 3, 3, 4], model=model)
    ids = input_ids()
    expected = scheduled_logits(model, schedule, ids)
    export_checkpoint(model, schedule, tmp_path / "out")
    _, logits = exported_logits(tmp_path / "out", ids)
    assert torch.allclose(logits, expected, atol=1e-5, rtol=0)


def test_tied_embeddings_stay_tied(tmp_path):
    torch.manual_seed(0)
    config = tiny_config("llama")
    config.tie_word_embeddings = True
    config._attn_implementation = "sdpa"
    model = AutoModelForCausalLM.from_config(config).eval()
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    schedule = Schedule.from_layers([0, 2, 2, 5], model=model)
    ids = input_ids()
    expected = scheduled_logits(model, schedule, ids)

    export_checkpoint(model, schedule, tmp_path / "out")
    loaded, logits = exported_logits(tmp_path / "out", ids)

    assert loaded.lm_head.weight.data_ptr() == loaded.model.embed_tokens.weight.data_ptr()
    assert torch.allclose(logits, expected, atol=1e-5, rtol=0)


def test_repeated_layers_are_independent_copies_and_the_model_is_untouched(tmp_path):
    model = make_tiny_model("llama")
    ids = input_ids()
    with torch.no_grad():
        before = model(ids).logits
    parameters_before = {name: parameter.data_ptr() for name, parameter in model.named_parameters()}

    export_checkpoint(model, Schedule.from_layers([2, 2, 2], model=model), tmp_path / "out")

    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    layers = loaded.model.layers
    assert len(layers) == 3
    assert layers[0].self_attn.q_proj.weight.data_ptr() != layers[1].self_attn.q_proj.weight.data_ptr()
    assert torch.equal(layers[0].mlp.up_proj.weight, layers[2].mlp.up_proj.weight)
    assert torch.equal(layers[1].mlp.up_proj.weight, model.model.layers[2].mlp.up_proj.weight)
    with torch.no_grad():
        assert torch.equal(model(ids).logits, before)
    assert {name: parameter.data_ptr() for name, parameter in model.named_parameters()} == parameters_before
    assert model.config.num_hidden_layers == 6


def test_a_schedule_applied_at_export_time_stays_applied(tmp_path):
    model = make_tiny_model("llama")
    running = Schedule.from_layers([0, 1, 2], model=model)
    apply_schedule(model, running)
    ids = input_ids()
    with torch.no_grad():
        before = model(ids).logits
    export_checkpoint(model, Schedule.from_layers([5, 4], model=model), tmp_path / "out")
    with torch.no_grad():
        assert torch.equal(model(ids).logits, before)
    restore(model)


def test_tokenizer_and_schedule_travel_with_the_checkpoint(tmp_path, tokenizer):
    model = make_tiny_model("llama")
    schedule = Schedule.from_layers([0, 1, 3], model=model, name="tiny-llama")
    export_checkpoint(model, schedule, tmp_path / "out", tokenizer=tokenizer)
    reloaded = AutoTokenizer.from_pretrained(tmp_path / "out")
    assert reloaded("w5 w7").input_ids == tokenizer("w5 w7").input_ids == [5, 7]
    assert Schedule.load(tmp_path / "out" / SCHEDULE_FILENAME) == schedule
    # Created like any folder and file under the umask, not with mkdtemp's private 0700.
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == readable_mode(directory=True)
    assert stat.S_IMODE((tmp_path / "out" / SCHEDULE_FILENAME).stat().st_mode) == readable_mode()


def test_plain_transformers_loads_it_without_colasearch(tmp_path):
    model = make_tiny_model("qwen2")
    schedule = Schedule.from_layers(CHAIN, model=model)
    ids = input_ids(batch=1)
    expected = scheduled_logits(model, schedule, ids)
    export_checkpoint(model, schedule, tmp_path / "out")
    torch.save(ids, tmp_path / "ids.pt")
    script = (
        "import sys; sys.modules['colasearch'] = None\n"  # any import of colasearch now fails
        "import torch; from transformers import AutoModelForCausalLM\n"
        f"model = AutoModelForCausalLM.from_pretrained({str(tmp_path / 'out')!r}).eval()\n"
        f"ids = torch.load({str(tmp_path / 'ids.pt')!r})\n"
        f"with torch.no_grad(): torch.save(model(ids).logits, {str(tmp_path / 'logits.pt')!r})\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, timeout=120)
    assert torch.allclose(torch.load(tmp_path / "logits.pt"), expected, atol=1e-5, rtol=0)


def test_sub_block_entries_are_refused_by_name(tmp_path):
    model = make_tiny_model("llama")
    schedule = Schedule.from_layers([0, {"layer": 1, "run": "attn"}, 2, {"layer": 4, "run": "mlp"}], model=model)
    with pytest.raises(ScheduleError, match=r"sub-block entries 1a \(position 1\), 4m \(position 3\)"):
        export_checkpoint(model, schedule, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_expert_thresholds_are_refused_by_name(tmp_path):
    model = make_tiny_model("mixtral")
    experts = {"importance": [1.0] * 6, "thresholds": {"text": 0.1}}
    schedule = Schedule.from_layers(range(6), model=model, experts=experts)
    with pytest.raises(ScheduleError, match=r"expert thresholds \(experts.thresholds: text\)"):
        export_checkpoint(model, schedule, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_out_of_range_and_foreign_schedules_are_refused(tmp_path):
    model = make_tiny_model("llama")
    with pytest.raises(ScheduleError, match="layer 9 is out of range"):
        export_checkpoint(model, Schedule.from_layers([0, 9]), tmp_path / "out")
    foreign = Schedule.from_layers([0, 1], model=make_tiny_model("qwen2"))
    with pytest.raises(ScheduleError, match="written for another model"):
        export_checkpoint(model, foreign, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_existing_folder_is_kept_unless_overwrite(tmp_path):
    model = make_tiny_model("llama")
    target = tmp_path / "out"
    target.mkdir()
    (target / "precious.txt").write_text("keep me")
    with pytest.raises(ColasearchError, match="--overwrite"):
        export_checkpoint(model, Schedule.from_layers([0, 1]), target)
    assert (target / "precious.txt").read_text() == "keep me"

    export_checkpoint(model, Schedule.from_layers([0, 1]), target, overwrite=True)
    assert not (target / "precious.txt").exists()
    assert AutoModelForCausalLM.from_pretrained(target).config.num_hidden_layers == 2
    assert [path.name for path in tmp_path.iterdir()] == ["out"]  # no staging folder left behind


@pytest.mark.integration
def test_smollm_checkpoint_round_trip(smollm, tmp_path):
    model, tokenizer = smollm
    schedule = Schedule.from_layers([0, 1, 2, 3, 3, 28, 29], model=model)
    ids = tokenizer("The capital of France is", return_tensors="pt").input_ids
    expected = scheduled_logits(model, schedule, ids)
    export_checkpoint(model, schedule, tmp_path / "out", tokenizer=tokenizer)
    loaded, logits = exported_logits(tmp_path / "out", ids)
    assert loaded.config.tie_word_embeddings == model.config.tie_word_embeddings
    assert torch.allclose(logits, expected, atol=1e-5, rtol=0)
    assert AutoTokenizer.from_pretrained(tmp_path / "out")("The capital").input_ids == tokenizer("The capital").input_ids


def test_a_failed_export_leaves_no_folder_and_the_model_as_it_was(tmp_path):
    class FullDiskTokenizer:
        def save_pretrained(self, folder):
            raise OSError(28, "No space left on device")

    model = make_tiny_model("qwen2")
    running = Schedule.from_layers([0, 2, 4], model=model)
    apply_schedule(model, running)
    ids = input_ids()
    with torch.no_grad():
        before = model(ids).logits
    with pytest.raises(WriteFailed, match=r"cannot write .*out: No space left on device; nothing was written$"):
        export_checkpoint(model, Schedule.from_layers([5, 5, 1], model=model), tmp_path / "out", tokenizer=FullDiskTokenizer())
    assert list(tmp_path.iterdir()) == []
    with torch.no_grad():
        assert torch.equal(model(ids).logits, before)
    restore(model)
    assert model.config.num_hidden_layers == 6
    assert len(model.config.layer_types) == 6


def _checkpoint_with(tmp_path, text):
    target = tmp_path / "out"
    target.mkdir()
    (target / "precious.txt").write_text(text)
    return target


def _folder_present_at_every_rename(monkeypatch, target):
    """Record, before and after each rename the export makes, whether a folder stands at ``target``."""
    import colasearch.export.checkpoint as checkpoint

    seen = []
    rename = checkpoint.os.replace

    def watched(source, destination):
        if target in (Path(source), Path(destination)):
            seen.append(target.is_dir())
        rename(source, destination)
        if target in (Path(source), Path(destination)):
            seen.append(target.is_dir())

    monkeypatch.setattr(checkpoint.os, "replace", watched)
    return seen


def _can_exchange(folder):
    """Whether this filesystem swaps two paths in one step (the fallback is tested on its own below)."""
    import colasearch.export.checkpoint as checkpoint

    first, second = folder / "probe-a", folder / "probe-b"
    first.mkdir(), second.mkdir()
    try:
        return getattr(checkpoint, "_exchange", lambda *paths: True)(first, second)
    finally:
        first.rmdir(), second.rmdir()


def test_replacing_a_checkpoint_never_leaves_the_name_without_a_folder(tmp_path, monkeypatch):
    if not _can_exchange(tmp_path):
        pytest.skip("this filesystem cannot exchange two paths in one step")
    target = _checkpoint_with(tmp_path, "old")
    folder_there = _folder_present_at_every_rename(monkeypatch, target)
    export_checkpoint(make_tiny_model("llama"), Schedule.from_layers([0, 1]), target, overwrite=True)
    assert all(folder_there)  # before and after every rename that touched the name
    assert not (target / "precious.txt").exists()
    assert AutoModelForCausalLM.from_pretrained(target).config.num_hidden_layers == 2
    assert [path.name for path in tmp_path.iterdir()] == ["out"]


def test_without_an_exchange_the_old_checkpoint_comes_back_when_the_new_one_cannot_move_in(tmp_path, monkeypatch):
    import colasearch.export.checkpoint as checkpoint

    target = _checkpoint_with(tmp_path, "keep me")
    monkeypatch.setattr(checkpoint, "_exchange", lambda first, second: False)
    rename = checkpoint.os.replace

    def second_rename_fails(source, destination):
        if Path(destination) == target and ".partial." in Path(source).name:  # the new folder moving in
            raise OSError(28, "No space left on device")
        rename(source, destination)

    monkeypatch.setattr(checkpoint.os, "replace", second_rename_fails)
    with pytest.raises(WriteFailed, match="No space left on device; the previous out is left as it was"):
        export_checkpoint(make_tiny_model("llama"), Schedule.from_layers([0, 1]), target, overwrite=True)
    assert [path.name for path in tmp_path.iterdir()] == ["out"]
    assert [path.name for path in target.iterdir()] == ["precious.txt"]
    assert (target / "precious.txt").read_text() == "keep me"


def test_without_an_exchange_the_old_checkpoint_goes_only_once_the_new_one_is_in(tmp_path, monkeypatch):
    import colasearch.export.checkpoint as checkpoint

    target = _checkpoint_with(tmp_path, "old")
    monkeypatch.setattr(checkpoint, "_exchange", lambda first, second: False)
    removed_while_missing = []
    remove_tree = checkpoint.shutil.rmtree

    def watched_rmtree(path, *args, **kwargs):
        if ".old." in str(path):
            removed_while_missing.append(not (target / "config.json").is_file())
        remove_tree(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint.shutil, "rmtree", watched_rmtree)
    export_checkpoint(make_tiny_model("llama"), Schedule.from_layers([0, 1]), target, overwrite=True)
    assert removed_while_missing == [False]
    assert AutoModelForCausalLM.from_pretrained(target).config.num_hidden_layers == 2
    assert [path.name for path in tmp_path.iterdir()] == ["out"]


def test_a_checkpoint_is_on_the_disk_before_it_takes_its_name(tmp_path, monkeypatch):
    import colasearch.export.checkpoint as checkpoint
    import colasearch.files as files

    target = tmp_path / "out"
    events = []
    sync = files.os.fsync
    monkeypatch.setattr(files.os, "fsync", lambda descriptor: events.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}"))) or sync(descriptor))
    move = checkpoint._move_into_place
    monkeypatch.setattr(checkpoint, "_move_into_place", lambda staging, out: events.append(("move", str(staging))) or move(staging, out))
    export_checkpoint(make_tiny_model("llama"), Schedule.from_layers([0, 1]), target)
    moved = events.index(next(event for event in events if event[0] == "move"))
    staging = events[moved][1]
    synced_before = {path for kind, path in events[:moved] if kind == "fsync"}
    assert {staging, f"{staging}/config.json", f"{staging}/model.safetensors", f"{staging}/{SCHEDULE_FILENAME}"} <= synced_before
    assert ("fsync", str(tmp_path)) in events[moved:]  # the folder that now holds the new name
