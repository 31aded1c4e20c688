"""The lm-eval adapter against the real lm-evaluation-harness, on a local JSON task (nothing downloaded)."""

import json
import random

import pytest

from colasearch.cli.app import main
from colasearch.errors import TaskError
from colasearch.evaluator import reference_scores
from colasearch.runtime import scheduled
from colasearch.schedule import Schedule
from colasearch.tasks import load_task
from colasearch.tasks.lm_eval_adapter import task_manager_for, write_multiple_choice_task
from colasearch.testing import make_tiny_tokenizer

pytest.importorskip("lm_eval", reason="needs the lm-eval extra: pip install 'colasearch[lm-eval]'")

ITEMS = 12


@pytest.fixture
def local_task(tmp_path):
    """A multiple-choice JSONL over the tiny tokenizer's words, and an lm-eval YAML reading it from disk."""
    rng = random.Random(0)
    words = [f"w{index}" for index in range(4, 96)]
    records = [{"id": f"q{index}", "context": " ".join(rng.sample(words, 5)),
                "choices": [" ".join(rng.sample(words, rng.randint(1, 3))) for _ in range(4)], "label": rng.randrange(4)}
               for index in range(ITEMS)]
    data = tmp_path / "tiny_mc.jsonl"
    data.write_text("".join(json.dumps(record) + "\n" for record in records))
    write_multiple_choice_task(data, tmp_path / "tasks", "tiny_mc", join=" ")
    return data, tmp_path / "tasks"


def harness_accuracy(model, tokenizer, folder, indices):
    """lm-eval on its own: simple_evaluate with HFLM around the same model object."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    output = simple_evaluate(model=HFLM(pretrained=model, tokenizer=tokenizer, batch_size=4), tasks=["tiny_mc"],
                             task_manager=task_manager_for("tiny_mc", str(folder)), bootstrap_iters=0,
                             samples={"tiny_mc": indices})
    return output["results"]["tiny_mc"]["acc,none"]


# The schedule case also runs a part of the items, as a split does: only those documents may count.
@pytest.mark.parametrize("chain, count", [(None, ITEMS), ([0, 2, 2, 5], 7)], ids=["full", "schedule-7-items"])
def test_adapter_harness_and_jsonl_agree(tiny_llama, local_task, chain, count):
    data, folder = local_task
    tokenizer = make_tiny_tokenizer()
    task = load_task("lm-eval:tiny_mc", include_path=str(folder), batch_size=4)
    assert len(task.items()) == ITEMS  # fewer documents than num_items: the task has what the data has
    items = task.items()[:count]
    mine = load_task(f"jsonl:{data}", join=" ")
    my_items = mine.items()[:count]  # the same documents: both keep the file's order
    packed = mine.pack(my_items, tokenizer)
    schedule = None if chain is None else Schedule.from_layers(chain, model=tiny_llama)
    with scheduled(tiny_llama, schedule):
        adapter = task.run(tiny_llama, tokenizer, items)
        harness = harness_accuracy(tiny_llama, tokenizer, folder, [item.data for item in items])
    ours = mine.metrics(my_items, packed, reference_scores(tiny_llama, schedule, packed))
    assert adapter["acc"] == pytest.approx(harness) == pytest.approx(ours["acc"])
    assert set(adapter) == {"acc", "acc_norm"}  # metrics only, no bookkeeping such as sample_len


def test_missing_include_folder_is_a_task_error(tmp_path):
    with pytest.raises(TaskError, match="include folder .* not found"):
        load_task("lm-eval:tiny_mc", include_path=str(tmp_path / "nowhere"))


def test_cli_bad_include_folder_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--task", "lm-eval:tiny_mc", "--lm-eval-include", str(tmp_path / "nowhere"), "--no-measure"])
    assert exit_info.value.code == 2
    assert "not found" in capsys.readouterr().err
