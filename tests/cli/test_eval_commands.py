import json

import pytest

from colasearch.cli.app import main
from colasearch.cli.eval_commands import evaluation_report
from colasearch.evaluator import Evaluator
from colasearch.schedule import Schedule
from colasearch.tasks import load_task
from colasearch.tasks.char_tokenizer import CharTokenizer


def test_report_has_the_documented_shape(tiny_llama):
    evaluator = Evaluator.from_options(tiny_llama, CharTokenizer(), load_task("builtin:capitals"), search_size=4,
                                       heldout_size=4)
    schedule = Schedule.from_layers([0, 2, 5], model=tiny_llama)
    report = evaluation_report(evaluator, schedule)
    assert report["task"] == "capitals" and report["measured_speedup"] is None and report["speed"] is None
    for variant in ("full", "schedule"):
        assert set(report[variant]) == {"search", "heldout"}
        assert set(report[variant]["heldout"]) == {"acc", "acc_norm", "prob", "prob_norm", "answer_nll", "choice_nll"}
    assert report["ideal_speedup"] == pytest.approx(evaluator.cost_model.ideal_speedup(schedule))
    assert report["cost"]["flops_per_token"] < report["full_cost"]["flops_per_token"]
    json.dumps(report)


def test_bad_schedule_file_fails_before_the_model_loads(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("colasearch_schedule: 1\nlayers: []\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--schedule", str(path), "--model", "/no/such/model"])
    assert exit_info.value.code == 2 and "layers" in capsys.readouterr().err


@pytest.mark.integration
def test_eval_json_on_smollm(tmp_path, capsys, smollm):
    schedule = Schedule.from_layers([layer for layer in range(30) if layer not in (20, 25)], model=smollm[0])
    path = schedule.save(tmp_path / "s.yaml")
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--task", "builtin:capitals", "--schedule", str(path), "--search-size", "4", "--heldout-size", "4",
              "--no-measure", "--json"])
    assert exit_info.value.code == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["schedule"]["heldout"]) == {"acc", "acc_norm", "prob", "prob_norm", "answer_nll", "choice_nll"}
    assert report["ideal_speedup"] > 1.0
    assert report["measured_speedup"] is None


def test_threads_sets_this_processes_torch_threads(assets, capsys):
    import torch

    before = torch.get_num_threads()
    try:
        with pytest.raises(SystemExit) as exit_info:
            main(["eval", "--model", str(assets / "tiny"), "--task", f"jsonl:{assets / 'T.jsonl'}", "--search-size", "4",
                  "--heldout-size", "4", "--no-measure", "--json", "--threads", "1"])
        assert exit_info.value.code == 0, capsys.readouterr().err
        assert torch.get_num_threads() == 1
        assert "heldout" in json.loads(capsys.readouterr().out)["full"]
    finally:
        torch.set_num_threads(before)
