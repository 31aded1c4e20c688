import csv

import pytest
import yaml

from colasearch import Schedule
from colasearch.distributed.sweep import SweepConfig, cells, run_sweep, write_summary
from colasearch.errors import ColasearchError


def test_a_two_by_two_sweep_writes_four_schedules_and_a_table(local_ray, grid, tmp_path):
    config = SweepConfig.load(grid)
    assert len(cells(config)) == 4
    out = tmp_path / "out"
    rows = run_sweep(config, out)
    assert [row["error"] for row in rows] == [None] * 4
    assert sorted(p.name for p in out.glob("*.yaml")) == sorted(row["file"] for row in rows)
    assert all(row["heldout"] is not None and row["ideal_speedup"] >= 1.2 for row in rows)
    table = (out / "summary.md").read_text()
    assert table.count("\n") == 2 + 4 and "unified" in table and "random" in table
    assert (out / "summary.csv").read_text().count("\n") == 5

    # Submitting again is idempotent: every cell is already done.
    again = run_sweep(config, out)
    assert all(row["skipped"] for row in again)


def test_bad_sweep_files_are_one_line_errors(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("models: [a]\n")
    with pytest.raises(ColasearchError, match="tasks"):
        SweepConfig.load(path)
    path.write_text("models: [a\n")
    with pytest.raises(ColasearchError, match="malformed YAML"):
        SweepConfig.load(path)


def test_a_cell_evaluating_in_its_task_gets_the_threads_it_reserved(tmp_path):
    from colasearch.distributed.sweep import Cell, SweepConfig

    cell = Cell(model="m", task="builtin:capitals", searcher="random", target=1.2)
    packed = cell.run_config(SweepConfig(models=("m",), tasks=("builtin:capitals",), cpus_per_cell=2.5), tmp_path)
    assert packed.threads == 2
    # A cell with its own Ray workers leaves their threads to the workers' CPUs.
    pooled = cell.run_config(SweepConfig(models=("m",), tasks=("builtin:capitals",), workers_per_cell=2), tmp_path)
    assert pooled.threads is None and pooled.workers == 2


@pytest.mark.parametrize("extra", [["--out", "/tmp/elsewhere.yaml"], ["--out=/tmp/elsewhere.yaml"],
                                   ["--storage", "postgresql://attacker.example/db"], ["--address=ray://attacker:10001"],
                                   ["--overwrite"], ["--measure", "--resume"], ["--config", "c.yaml"],
                                   ["--lm-eval-include", "plugins/"]])
def test_a_sweep_file_cannot_redirect_or_replace_a_cells_outputs(tmp_path, extra):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"models": ["m"], "tasks": ["builtin:capitals"], "extra_args": extra}))
    with pytest.raises(ColasearchError) as refused:
        SweepConfig.load(path)
    message = str(refused.value)
    name = next(token.split("=")[0] for token in extra if token.split("=")[0] != "--measure")
    assert message.startswith(f"{path}: extra_args") and f"{name} cannot come from a sweep file" in message
    assert "\n" not in message


def test_harmless_extra_args_still_reach_the_cell(tmp_path):
    config = SweepConfig(models=("m",), tasks=("builtin:capitals",),
                         extra_args=("--sub-blocks", "--option", "max_swaps=2", "--budget=7", "--no-measure"))
    cell = cells(config)[0]
    run = cell.run_config(config, tmp_path)
    assert run.sub_blocks and run.searcher_options == {"max_swaps": 2} and run.budget == 7 and not run.measure
    assert run.out == tmp_path / f"{cell.name}.yaml" and run.resume and run.searcher == "evolution"


@pytest.mark.parametrize("extra, message", [(["--bogus"], "--bogus is not an option of colasearch run"),
                                            (["--json"], "--json is not an option"),
                                            (["--budget"], "--budget needs a value"),
                                            (["--sub-blocks=yes"], "--sub-blocks takes no value"),
                                            (["-o", "nokeyvalue"], "is not KEY=VALUE")])
def test_extra_args_that_are_no_run_option_fail_when_the_file_is_read(tmp_path, extra, message):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"models": ["m"], "tasks": ["builtin:capitals"], "extra_args": extra}))
    with pytest.raises(ColasearchError, match=message):
        SweepConfig.load(path)


def test_a_cells_bad_setting_fails_before_ray_starts(tmp_path, monkeypatch):
    import ray

    from colasearch.distributed.sweep import run_sweep

    monkeypatch.setattr(ray, "remote", lambda *args, **kwargs: pytest.fail("a cell ran"))
    config = SweepConfig(models=("m",), tasks=("builtin:capitals",), extra_args=("--option", "max_swaps=many"))
    with pytest.raises(ColasearchError, match="max_swaps='many' must be of type int"):
        run_sweep(config, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_sweep_imports_nothing_from_the_cli():
    """A cell is the library's run (colasearch.find_schedule), never the command line parsed again."""
    import ast

    import colasearch.distributed.sweep as sweep

    tree = ast.parse(open(sweep.__file__).read())
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert imported and not [name for name in imported if name == "colasearch.cli" or name.startswith("colasearch.cli.")]
    assert "typer" not in imported and "click" not in imported


def test_the_sweep_command_refuses_a_redirecting_file_before_ray_starts(tmp_path, capsys, monkeypatch):
    import colasearch.distributed.sweep as sweep
    from colasearch.cli.app import main

    monkeypatch.setattr(sweep, "run_sweep", lambda *args, **kwargs: pytest.fail("the sweep ran"))
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"models": ["m"], "tasks": ["builtin:capitals"], "extra_args": ["--out=/x.yaml"]}))
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", str(path), "--out-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1 and "--out cannot come" in err
    assert not (tmp_path / "out").exists()


def summary_row(**fields):
    row = {"model": "m", "task": "builtin:capitals", "searcher": "random", "target": 1.25, "metric": "acc",
           "heldout": 0.5, "full_heldout": 0.6, "search": -0.125, "ideal_speedup": 1.3, "measured_speedup": None,
           "skipped": False, "error": None, "file": "m.yaml"}
    return {**row, **fields}


def test_summary_cells_a_spreadsheet_would_run_are_quoted_and_numbers_stay_numbers(tmp_path):
    write_summary([summary_row(model="=HYPERLINK(\"http://attacker.example\",\"x\")", task="@SUM(A1)",
                               error="-2+3 cmd|' /C calc'!A0", searcher="+x")], tmp_path)
    with (tmp_path / "summary.csv").open(newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["model"] == "'=HYPERLINK(\"http://attacker.example\",\"x\")" and row["task"] == "'@SUM(A1)"
    assert row["error"] == "'-2+3 cmd|' /C calc'!A0" and row["searcher"] == "'+x"
    assert row["search"] == "-0.125" and row["target"] == "1.25"  # negative numbers are not text


def test_a_summary_on_a_full_disk_is_one_line_that_says_the_schedules_are_kept(tmp_path, monkeypatch):
    import colasearch.distributed.sweep as sweep
    from colasearch.files import WriteFailed

    (tmp_path / "summary.csv").write_text("previous\n")

    def full_disk(rows, out_dir):
        raise WriteFailed(f"cannot write {out_dir / 'summary.csv'}: No space left on device; the previous summary.csv "
                          "is left as it was")

    monkeypatch.setattr(sweep, "write_summary", full_disk)
    monkeypatch.setattr(sweep, "check_cells", lambda config: None)
    config = SweepConfig(models=("m",), tasks=("builtin:capitals",))
    (tmp_path / f"{cells(config)[0].name}.yaml").write_text(Schedule.from_layers([0, 1]).to_yaml())
    with pytest.raises(WriteFailed, match=r"left as it was; the cells' schedules in .* are kept: submit the sweep again"):
        run_sweep(config, tmp_path)
    assert (tmp_path / "summary.csv").read_text() == "previous\n"


def test_a_sweep_stops_the_ray_it_started_even_when_it_fails(tmp_path, monkeypatch):
    import ray

    import colasearch.distributed.cluster as cluster

    started, stopped = [], []
    monkeypatch.setattr(cluster, "ray_running", lambda: bool(started) and not stopped)
    monkeypatch.setattr(cluster, "init_ray", lambda address=None: started.append(address))
    monkeypatch.setattr(cluster, "shutdown_ray", lambda: stopped.append(True))
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    config = SweepConfig(models=("m",), tasks=("builtin:capitals",), gpus_per_cell=1.0)
    with pytest.raises(ColasearchError, match="gpus_per_cell"):
        run_sweep(config, tmp_path / "out")
    assert started == [None] and stopped == [True]


def test_a_sweep_leaves_a_callers_ray_running(tmp_path, monkeypatch):
    import ray

    import colasearch.distributed.cluster as cluster

    stopped = []
    monkeypatch.setattr(cluster, "ray_running", lambda: True)
    monkeypatch.setattr(cluster, "init_ray", lambda address=None: None)
    monkeypatch.setattr(cluster, "shutdown_ray", lambda: stopped.append(True))
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    config = SweepConfig(models=("m",), tasks=("builtin:capitals",), gpus_per_cell=1.0)
    with pytest.raises(ColasearchError, match="gpus_per_cell"):
        run_sweep(config, tmp_path / "out")
    assert stopped == []
