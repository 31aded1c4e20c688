"""The MoDES gate: routed expert i of layer l is skipped for a token when alpha_l * pi_i < tau(group).

pi_i is the token's full-softmax routing probability of expert i (not the top-k-renormalised weight),
so the rule means the same thing whether or not a family renormalises its top-k weights. Each token
belongs to a group (text now; image tokens later, as in MoDES's dual-modality thresholds) and the
group picks its threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Group ids index TOKEN_GROUPS. A vision-language adapter only has to produce ids; the gate is unchanged.
from colasearch.schedule import TOKEN_GROUPS

TEXT = TOKEN_GROUPS.index("text")


def threshold_vector(thresholds: dict[str, float]) -> torch.Tensor:
    """Thresholds in TOKEN_GROUPS order; a group the section does not name skips nothing (tau = 0)."""
    return torch.tensor([float(thresholds.get(group, 0.0)) for group in TOKEN_GROUPS], dtype=torch.float32)


def skip_mask(
    router_logits: torch.Tensor,
    top_k_index: torch.Tensor,
    alpha: float,
    thresholds: torch.Tensor,
    group_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """(tokens, k) booleans: True where the routed pair (token, top-k slot) is skipped.

    ``thresholds`` is indexed by group id; ``group_ids`` (tokens,) defaults to all text.
    """
    probabilities = torch.softmax(router_logits.float(), dim=-1).gather(1, top_k_index)
    thresholds = thresholds.to(probabilities.device)
    tau = thresholds[TEXT].expand(probabilities.shape[0]) if group_ids is None else thresholds[group_ids]
    return alpha * probabilities < tau.unsqueeze(1)


def renormalized(top_k_weights: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """Rescale kept weights so they sum to what all top-k weights summed to (1 for families that normalise).

    A token whose routed experts are all skipped gets no routed output at all.
    """
    kept_weights = top_k_weights * kept
    kept_sum = kept_weights.sum(dim=-1, keepdim=True)
    scale = torch.where(kept_sum > 0, top_k_weights.sum(dim=-1, keepdim=True) / kept_sum.clamp_min(1e-30),
                        torch.zeros_like(kept_sum))
    return kept_weights * scale


@dataclass
class LayerGate:
    """The gate of one decoder layer's sparse block; ``skip_all`` is calibration's 'remove this layer's experts'."""

    layer: int
    alpha: float
    thresholds: torch.Tensor
    renormalize: bool
    skip_all: bool = False

    def skipped(self, router_logits, top_k_index, group_ids=None) -> torch.Tensor:
        if self.skip_all:
            return torch.ones(top_k_index.shape, dtype=torch.bool, device=top_k_index.device)
        return skip_mask(router_logits, top_k_index, self.alpha, self.thresholds, group_ids)
