"""``colasearch run --init``: warm-start schedules are read and checked before any evaluation."""

import os
import subprocess
import sys

import pytest

from colasearch import Schedule


def run_cli(*args, timeout=300):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "colasearch", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_malformed_init_schedule_fails_before_loading_the_model(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("colasearch_schedule: 1\nlayers: [0, 1\n")
    result = run_cli("run", "--init", str(bad), "--workers", "0", "--out", str(tmp_path / "out.yaml"))
    assert result.returncode == 2 and "malformed YAML" in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert not (tmp_path / "out.yaml").exists()


@pytest.mark.integration
def test_init_schedule_for_layers_the_model_lacks_is_refused(tmp_path):
    far = Schedule.from_layers([0, 31]).save(tmp_path / "far.yaml")
    result = run_cli("run", "--init", str(far), "--workers", "0", "--budget", "1", "--out", str(tmp_path / "o.yaml"))
    assert result.returncode == 2 and "--init" in result.stderr and "layer 31 is out of range" in result.stderr
    assert result.stderr.strip().count("\n") == 0
