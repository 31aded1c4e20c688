"""--device / --dtype / --device-map: resolution, refusals (exit 2, one line), cache sizing, Ray defaults."""

from __future__ import annotations

import pytest
import torch

from colasearch import devices
from colasearch.devices import DeviceError, Placement, resolve_device, resolve_dtype, resolve_placement
from colasearch.errors import ColasearchError
from colasearch.testing import make_tiny_model, make_tiny_tokenizer

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")


def test_auto_is_cuda_in_bfloat16_with_a_gpu_else_cpu_in_float32(monkeypatch):
    monkeypatch.setattr(devices, "cuda_count", lambda: 0)
    assert resolve_placement() == Placement(torch.device("cpu"), torch.float32)
    monkeypatch.setattr(devices, "cuda_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_dtype("auto", torch.device("cuda", 0)) == torch.bfloat16
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(DeviceError, match="2 CUDA device"):
        resolve_device("cuda:2")


def test_explicit_dtypes_and_aliases():
    cpu = torch.device("cpu")
    assert resolve_dtype("bfloat16", cpu) == resolve_dtype("bf16", cpu) == torch.bfloat16
    assert resolve_dtype("float16", cpu) == torch.float16
    assert resolve_dtype(torch.float32, cpu) == torch.float32
    for bad in ("int8", "float64"):
        with pytest.raises(DeviceError, match="--dtype"):
            resolve_dtype(bad, cpu)


@no_cuda
def test_a_device_that_is_not_here_is_refused():
    for spec in ("cuda", "cuda:0", "tpu", "cuda:x"):
        with pytest.raises(DeviceError, match="--device"):
            resolve_device(spec)
    with pytest.raises(DeviceError, match="--device-map"):
        resolve_placement("cpu", "auto", "auto")
    with pytest.raises(DeviceError, match="--device-map"):
        resolve_placement("auto", "auto", "everywhere")


@no_cuda
@pytest.mark.parametrize("command", [
    ["eval"], ["generate", "hello"], ["run", "--budget", "1"], ["compare", "--budget", "1"],
    ["bench", "--schedule", "schedules/smollm2-135m-unified-24.yaml"],
])
def test_commands_exit_2_with_one_line_for_a_missing_gpu(command, capsys):
    from colasearch.cli.app import main

    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--model", "/no/such/model", "--device", "cuda:1"])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert error.count("\n") == 1 and "no CUDA device" in error


def test_load_model_in_bfloat16(tmp_path):
    from colasearch.loading import load_model

    make_tiny_model("llama").save_pretrained(tmp_path)
    make_tiny_tokenizer().save_pretrained(tmp_path)
    model, _ = load_model(str(tmp_path), dtype="bfloat16", device="auto" if not torch.cuda.is_available() else "cpu")
    assert {parameter.dtype for parameter in model.parameters()} == {torch.bfloat16}
    assert devices.model_device(model) == torch.device("cpu")


def test_prefix_cache_is_sized_against_the_device_memory(monkeypatch, tiny_llama):
    from colasearch.evaluator import Evaluator
    from colasearch.tasks import load_task
    from colasearch.tasks.char_tokenizer import CharTokenizer

    monkeypatch.setattr(devices, "free_memory_bytes", lambda device: 40 * 2**30)
    assert devices.default_cache_bytes(tiny_llama) == 10 * 2**30
    monkeypatch.setattr(devices, "free_memory_bytes", lambda device: 2**20)
    assert devices.default_cache_bytes(tiny_llama) == devices.CACHE_MIN_BYTES
    monkeypatch.setattr(devices, "free_memory_bytes", lambda device: 2**40)
    assert devices.default_cache_bytes(tiny_llama) == devices.CACHE_MAX_BYTES
    from colasearch.evaluator import prefix_cache

    monkeypatch.setattr(prefix_cache, "_PROCESS_BUDGETS", {})  # no earlier test's evaluator shares its budget
    evaluator = Evaluator.from_options(tiny_llama, CharTokenizer(), load_task("builtin:capitals"), search_size=2,
                                       heldout_size=2)
    assert evaluator.prefix_cache.max_bytes == devices.CACHE_MAX_BYTES
    monkeypatch.undo()  # the real function reads this machine's available RAM
    assert devices.free_memory_bytes(torch.device("cpu")) > 0


def test_ray_worker_defaults_follow_the_gpus(monkeypatch):
    from colasearch.engine.session import ray_workers

    cpu = Placement(torch.device("cpu"), torch.float32)
    assert ray_workers(cpu, None, None) == (1, 0.0)
    assert ray_workers(cpu, 3, None) == (3, 0.0)
    monkeypatch.setattr(devices, "cuda_count", lambda: 4)
    gpu = Placement(torch.device("cuda", 0), torch.bfloat16)
    assert ray_workers(gpu, None, None) == (4, 1.0)
    assert ray_workers(gpu, None, 0.5) == (8, 0.5)  # two replicas share each GPU
    assert ray_workers(gpu, 2, None) == (2, 1.0)
    split = Placement(torch.device("cuda", 0), torch.bfloat16, "auto")
    assert ray_workers(split, None, None) == (1, 4.0)  # one replica spans the node


def test_a_worker_given_a_gpu_it_cannot_see_fails_loudly(monkeypatch):
    from colasearch.distributed.ray_executor import assigned_gpu_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ColasearchError, match="will not fall back to the CPU"):
        assigned_gpu_device([0])
    with pytest.raises(ColasearchError, match="none"):
        assigned_gpu_device([])


def test_sweep_cells_pass_device_and_dtype(tmp_path):
    from colasearch.distributed.sweep import SweepConfig, cells

    config = SweepConfig(models=("m",), tasks=("t",), device="cuda", dtype="bfloat16", gpus_per_cell=0.5)
    run = cells(config)[0].run_config(config, tmp_path)
    assert run.device == "cuda" and run.dtype == "bfloat16" and run.device_map is None
    with pytest.raises(Exception):
        SweepConfig(models=("m",), tasks=("t",), gpus_per_cell=-1)
