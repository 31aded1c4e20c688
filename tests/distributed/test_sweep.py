import pytest

from colasearch.distributed.sweep import SweepConfig, cells, run_sweep
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
    packed = cell.argv(SweepConfig(models=("m",), tasks=("builtin:capitals",), cpus_per_cell=2.5), tmp_path)
    assert packed[packed.index("--threads") + 1] == "2"
    # A cell with its own Ray workers leaves their threads to the workers' CPUs.
    pooled = cell.argv(SweepConfig(models=("m",), tasks=("builtin:capitals",), workers_per_cell=2), tmp_path)
    assert "--threads" not in pooled
