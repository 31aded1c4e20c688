"""MoE expert skipping (MoDES): skip routed expert i of layer l for a token when alpha_l * pi_i < tau.

Part of the runtime: a schedule's ``experts`` section is applied by ``apply_schedule`` and removed by
``restore``. Nothing here imports ``colasearch.runtime`` at module level, since the runtime imports
this package while it is itself being imported.
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
