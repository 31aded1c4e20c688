"""Layer importance alpha_l: how far the output moves when layer l loses all its routed experts."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from colasearch.devices import model_device
from colasearch.errors import ColasearchError
from colasearch.moe.gating import LayerGate, threshold_vector
from colasearch.moe.patching import install_gates, remove_expert_skipping, sparse_blocks


def _token_kl(reference_log_probs: torch.Tensor, log_probs: torch.Tensor) -> torch.Tensor:
    """KL(reference || skipped) per token."""
    return F.kl_div(log_probs, reference_log_probs, log_target=True, reduction="none").sum(-1)


@torch.no_grad()
def calibrate_importance(
    model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, batch_size: int = 8,
) -> tuple[float, ...]:
    """alpha_l for every decoder layer, normalised to sum to 1 (0 for layers without routed experts).

    alpha_l is the mean over the calibration tokens (padding excluded) of KL(full model || model with
    layer l's routed experts skipped for every token); shared experts keep running. Run on the
    unscheduled model; a schedule applied to ``model`` is taken off for the duration and put back.
    """
    from colasearch.runtime import applied_schedule, apply_schedule, restore

    previous = applied_schedule(model)
    restore(model)
    try:
        family, blocks = sparse_blocks(model)
        num_layers = len(model.get_decoder().layers)
        device = model_device(model)
        kl_sums = torch.zeros(num_layers, dtype=torch.float64, device=device)
        token_count = 0
        no_thresholds = threshold_vector({})
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
        for start in range(0, input_ids.shape[0], batch_size):
            ids, mask = input_ids[start:start + batch_size], attention_mask[start:start + batch_size]
            valid = mask.bool()
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
            # A split model's logits come from its last device.
            valid = valid.to(logits.device)
            reference = logits.float().log_softmax(-1)[valid]
            token_count += int(valid.sum())
            for layer in blocks:
                gate = LayerGate(layer, 0.0, no_thresholds, renormalize=False, skip_all=True)
                install_gates(model, family, {layer: blocks[layer]}, {layer: gate})
                try:
                    logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
                finally:
                    remove_expert_skipping(model)
                divergence = _token_kl(reference, logits.float().log_softmax(-1)[valid]).double().sum()
                kl_sums[layer] += divergence.to(kl_sums.device)
    finally:
        if previous is not None:
            apply_schedule(model, previous, force=True)
    if token_count == 0:
        raise ColasearchError("the calibration batch has no tokens (its attention mask is all zero)")
    divergence = (kl_sums.cpu() / token_count).clamp_min(0.0)
    total = float(divergence.sum())
    if total <= 0.0:
        raise ColasearchError("calibration found no layer whose experts change the output; cannot rank layers")
    return tuple(float(value) / total for value in divergence)
