"""``colasearch run --workers N`` end to end: real evaluators in Ray actors, same schedule as without Ray."""

import os
import subprocess
import sys

import yaml


def _run(sweep_path, out, workers):
    config = yaml.safe_load(sweep_path.read_text())
    env = dict(os.environ, HF_HUB_OFFLINE="1", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    result = subprocess.run(
        [sys.executable, "-m", "colasearch", "run", "--model", config["models"][0], "--task", config["tasks"][0],
         "--searcher", "mcts", "--budget", "6", "--target-speedup", "1.2", "--search-size", "8", "--heldout-size", "8",
         "--baselines", "", "--no-measure", "--workers", str(workers), "--parallel", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    return yaml.safe_load(out.read_text())


def test_ray_workers_and_in_process_write_the_same_schedule(grid, tmp_path):
    with_ray = _run(grid, tmp_path / "ray.yaml", workers=2)
    without = _run(grid, tmp_path / "plain.yaml", workers=0)
    assert with_ray["layers"] == without["layers"]
    assert with_ray["metrics"]["quality"] == without["metrics"]["quality"]
