import pytest
from rich.console import Console

from colasearch import Schedule
from colasearch.cli.app import main
from colasearch.show import draw_png, render, summarize

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def schedule_with_everything():
    return Schedule.from_layers(
        [0, 1, 1, {"layer": 3, "run": "attn"}, 5, 4],
        name="tiny-llama",
        task="arc_easy",
        metrics={"quality": {"metric": "acc", "heldout": 0.6125, "full_heldout": 0.6400},
                 "speedup": {"ideal": 1.31, "measured": 1.2446, "device": "cpu"}},
        provenance={"searcher": "unified", "seed": 3},
    )


def cli(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code or 0, captured.out, captured.err


def test_summary_tells_each_layers_fate():
    summary = summarize(schedule_with_everything(), num_layers=7)
    assert [use.status for use in summary.uses] == [
        "runs", "repeated x2", "skipped", "attention only", "runs", "runs", "skipped",
    ]
    assert summary.skipped == [2, 6]
    assert summary.repeated == [1]
    assert summary.sub_blocks == [3]
    assert summary.reordered
    assert summary.uses[1].positions == (1, 2)
    assert not summarize(Schedule.from_layers([0, 2, 2, 3])).reordered


def test_layer_count_comes_from_the_fingerprint_or_the_chain():
    from colasearch.testing import make_tiny_model

    assert summarize(Schedule.from_layers([0, 2])).num_layers == 3
    assert summarize(Schedule.from_layers([0, 2], model=make_tiny_model("llama"))).num_layers == 6


def test_render_shows_chain_fates_and_metrics():
    console = Console(record=True, width=140)
    render(schedule_with_everything(), console=console, num_layers=7)
    text = console.export_text()
    assert "chain: 0 1 1 3a 5 4" in text
    assert "skipped: 2, 6; repeated: 1; sub-blocks: 3; order: changed" in text
    assert "repeated x2" in text and "attention only" in text
    assert "0.6125" in text and "0.6400" in text
    assert "1.310x" in text and "1.245x" in text and "0.95 of ideal on cpu" in text
    assert "searcher unified" in text


def test_render_without_metrics_says_so():
    console = Console(record=True, width=120)
    render(Schedule.from_layers([0, 1]), console=console)
    assert "metrics: none recorded" in console.export_text()


def test_render_shows_a_given_ideal_speedup():
    console = Console(record=True, width=120)
    render(Schedule.from_layers([0, 1]), console=console, ideal_speedup=1.5)
    assert "1.500x" in console.export_text()


def test_draw_png_writes_a_png(tmp_path):
    path = draw_png(schedule_with_everything(), tmp_path / "figures" / "s.png", num_layers=7)
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000
    assert [item.name for item in path.parent.iterdir()] == ["s.png"]


def test_show_cli_prints_and_draws(tmp_path, capsys):
    schedule_with_everything().save(tmp_path / "s.yaml")
    code, out, err = cli(["show", str(tmp_path / "s.yaml"), "--png", str(tmp_path / "s.png")], capsys)
    assert code == 0 and err == ""
    assert "chain: 0 1 1 3a 5 4" in out
    assert f"drew {tmp_path / 's.png'}" in out
    data = (tmp_path / "s.png").read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000
