"""Where a model runs and in which precision: ``--device``, ``--dtype`` and ``--device-map`` resolved once.

``auto`` means CUDA in bfloat16 where a GPU is visible, else the CPU in float32. Asking for a device
that is not there is the user's error (one line, exit 2), never a silent fallback to the CPU.
Everything that later creates tensors reads device and dtype from the model (:func:`model_device`),
not from here, so a loaded model is the only source of truth.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import torch

from colasearch.errors import ColasearchError

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16", "float": "float32"}
# accelerate's strategies for one replica across several GPUs of a node.
DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")

# The prefix cache's share of the free memory of the model's device, and its bounds.
CACHE_FRACTION = 0.25
CACHE_MIN_BYTES = 256 * 2**20
CACHE_MAX_BYTES = 32 * 2**30


class DeviceError(ColasearchError):
    """A device, dtype or device map that this machine cannot provide."""


def cuda_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """``auto``/``None``: the first CUDA device, else the CPU. Any other device must exist here."""
    text = "auto" if spec is None else str(spec).strip().lower()
    if text == "auto":
        return torch.device("cuda", 0) if cuda_count() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        if not _mps_available():
            raise DeviceError("--device mps: no Apple GPU (MPS) is available on this machine")
        return torch.device("mps")
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if match is None:
        raise DeviceError(f"--device {spec!r} is not one of {DEVICE_CHOICES}")
    index = int(match.group(1) or 0)
    count = cuda_count()
    if count == 0:
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        hint = f", CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else ""
        raise DeviceError(f"--device {spec}: no CUDA device is visible (torch {torch.__version__} is {build}{hint})")
    if index >= count:
        raise DeviceError(f"--device {spec}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    return torch.device("cuda", index)


def resolve_dtype(spec: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``auto``/``None``: bfloat16 on CUDA (float16 where the GPU lacks bfloat16), float32 elsewhere."""
    if isinstance(spec, torch.dtype):
        if spec not in DTYPES.values():
            raise DeviceError(f"--dtype {spec}: expected auto, {', '.join(DTYPES)}")
        return spec
    text = "auto" if spec is None else DTYPE_ALIASES.get(str(spec).strip().lower(), str(spec).strip().lower())
    if text == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if text not in DTYPES:
        raise DeviceError(f"--dtype {spec!r} is not one of auto, {', '.join(DTYPES)}")
    return DTYPES[text]


def check_device_map(spec: str | None) -> str | None:
    """``None`` (one device) or one of accelerate's strategies for splitting a replica over GPUs."""
    if spec is None or str(spec).strip().lower() in ("", "none"):
        return None
    text = str(spec).strip().lower()
    if text not in DEVICE_MAPS:
        raise DeviceError(f"--device-map {spec!r} is not one of none, {', '.join(DEVICE_MAPS)}")
    return text


@dataclass(frozen=True)
class Placement:
    """A resolved (device, dtype, device map); ``device_map`` set means the device is where inputs go."""

    device: torch.device
    dtype: torch.dtype
    device_map: str | None = None

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    def describe(self) -> str:
        where = f"device_map={self.device_map}" if self.device_map else str(self.device)
        return f"{where}, {self.dtype_name}"


def resolve_placement(device: str | None = "auto", dtype: str | None = "auto",
                      device_map: str | None = None) -> Placement:
    """All three flags checked together, before any model is loaded."""
    device_map = check_device_map(device_map)
    resolved = resolve_device(device)
    if device_map is not None and resolved.type != "cuda":
        raise DeviceError(f"--device-map {device_map} splits a model over CUDA devices; this run's device is "
                          f"{resolved} (use --device auto or cuda on a machine with GPUs)")
    return Placement(resolved, resolve_dtype(dtype, resolved), device_map)


def model_device(model) -> torch.device:
    """Where a model takes its inputs: its input embeddings' device (the first device of a split model)."""
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if embeddings is not None and getattr(embeddings, "weight", None) is not None:
        return embeddings.weight.device
    return next(model.parameters()).device


def model_dtype(model) -> torch.dtype:
    return next(model.parameters()).dtype


def free_memory_bytes(device: torch.device) -> int:
    """Free memory of ``device``: the GPU's (``mem_get_info``), else the system's available RAM."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # psutil comes with Ray; without it, POSIX's count of available pages
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def default_cache_bytes(model, fraction: float = CACHE_FRACTION, sharers: int = 1) -> int:
    """The prefix cache's bound for ``model``: a share of its device's free memory, within fixed bounds.

    A split model caches hidden states on the devices of the layers that made them; the first
    device's free memory stands for each of them. ``sharers`` processes that size their caches against the
    same memory (Ray workers on one machine or one GPU) each take that share of the ``fraction``.
    """
    free = free_memory_bytes(model_device(model))
    return int(min(CACHE_MAX_BYTES, max(CACHE_MIN_BYTES, fraction * free / max(1, sharers))))


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so a timer measures work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
