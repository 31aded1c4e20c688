"""MoE expert skipping (MoDES): skip routed expert i of layer l for a token when alpha_l * pi_i < tau.

An extension of the runtime: ``patching`` registers a forward patch (``colasearch.runtime.ForwardPatch``),
so that ``apply_schedule`` applies a schedule's ``experts`` section and ``restore`` removes it. The runtime
knows nothing of this package; ``colasearch/__init__.py`` imports it, so the hook is always registered.
"""

from colasearch.moe.calibration import calibrate_importance
from colasearch.moe.gating import TOKEN_GROUPS, LayerGate, renormalized, skip_mask
from colasearch.moe.measure import (
    expert_skip_ratio, expert_skip_stats, expert_skipping_section, threshold_for_skip_ratio,
)
from colasearch.moe.patching import (
    SkipStats, apply_expert_skipping, installed_gates, recording, remove_expert_skipping, sparse_blocks,
)

__all__ = [
    "LayerGate", "SkipStats", "TOKEN_GROUPS", "apply_expert_skipping", "calibrate_importance", "expert_skip_ratio",
    "expert_skip_stats", "expert_skipping_section", "installed_gates", "recording", "remove_expert_skipping",
    "renormalized", "skip_mask", "sparse_blocks", "threshold_for_skip_ratio",
]
