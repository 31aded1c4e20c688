"""Per-family sparse MoE blocks (transformers 5.x): how to run one with a gated expert dispatch.

Every family splits its block into a router (``gate``: hidden -> logits, top-k weights, top-k index)
and an ``experts`` module (hidden, top-k index, top-k weights -> weighted sum). Only what sits around
them differs: Qwen2-MoE adds a shared expert that always runs, Mixtral adds training-time jitter.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

# (experts, flat hidden, router logits, top-k weights, top-k index) -> routed output, same shape as hidden.
RoutedDispatch = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class SparseBlockFamily(ABC):
    """How one family's sparse MoE block computes its output around the routed experts."""

    block_class_name: str

    def is_sparse_block(self, module: nn.Module) -> bool:
        return type(module).__name__ == self.block_class_name and hasattr(module, "gate") and hasattr(module, "experts")

    @abstractmethod
    def forward(self, block: nn.Module, hidden_states: torch.Tensor, dispatch: RoutedDispatch) -> torch.Tensor:
        """The block's forward with ``dispatch`` in place of its plain ``experts`` call."""


class PlainSparseBlock(SparseBlockFamily):
    """Router then routed experts, nothing else (Qwen3-MoE, OLMoE)."""

    def __init__(self, block_class_name: str):
        self.block_class_name = block_class_name

    def forward(self, block, hidden_states, dispatch):
        batch_size, sequence_length, hidden_dim = hidden_states.shape
        flat = hidden_states.view(-1, hidden_dim)
        router_logits, top_k_weights, top_k_index = block.gate(flat)
        return dispatch(block.experts, flat, router_logits, top_k_weights, top_k_index).reshape(
            batch_size, sequence_length, hidden_dim)


class MixtralSparseBlock(PlainSparseBlock):
    def __init__(self):
        super().__init__("MixtralSparseMoeBlock")

    def forward(self, block, hidden_states, dispatch):
        if block.training and block.jitter_noise > 0:
            noise = block.jitter_noise
            hidden_states *= torch.empty_like(hidden_states).uniform_(1.0 - noise, 1.0 + noise)
        return super().forward(block, hidden_states, dispatch)


class Qwen2MoeSparseBlock(SparseBlockFamily):
    """Routed experts plus a sigmoid-gated shared expert; the shared expert is never skipped."""

    block_class_name = "Qwen2MoeSparseMoeBlock"

    def forward(self, block, hidden_states, dispatch):
        batch_size, sequence_length, hidden_dim = hidden_states.shape
        flat = hidden_states.view(-1, hidden_dim)
        shared_output = block.shared_expert(flat)
        router_logits, top_k_weights, top_k_index = block.gate(flat)
        routed_output = dispatch(block.experts, flat, router_logits, top_k_weights, top_k_index)
        shared_output = F.sigmoid(block.shared_expert_gate(flat)) * shared_output
        return (routed_output + shared_output).reshape(batch_size, sequence_length, hidden_dim)


FAMILIES: dict[str, SparseBlockFamily] = {
    "mixtral": MixtralSparseBlock(),
    "qwen2_moe": Qwen2MoeSparseBlock(),
    "qwen3_moe": PlainSparseBlock("Qwen3MoeSparseMoeBlock"),
    "olmoe": PlainSparseBlock("OlmoeSparseMoeBlock"),
}
