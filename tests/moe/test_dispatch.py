"""Skipped experts receive no tokens: the expert matmuls shrink exactly as the skip ratio says."""

import pytest
import torch
from torch.nn import functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from colasearch import Schedule, scheduled
from colasearch.moe import expert_skip_stats, expert_skipping_section, sparse_blocks

from .conftest import IMPORTANCE, prompts


class ExpertRowCounter(TorchDispatchMode):
    """Counts the token rows multiplied by each layer's expert up-projection, per expert.

    It watches the matmul kernels themselves (grouped_mm offsets or per-expert mm), so it sees
    the compute that actually ran, not what the dispatch code claims.
    """

    def __init__(self, blocks):
        super().__init__()
        self.storages = {block.experts.gate_up_proj.untyped_storage().data_ptr(): (layer, block.experts)
                         for layer, block in blocks.items()}
        self.rows = {layer: torch.zeros(block.experts.num_experts, dtype=torch.long) for layer, block in blocks.items()}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.ops.aten._grouped_mm.default:
            found = self.storages.get(args[1].untyped_storage().data_ptr())
            if found is not None:
                offsets = kwargs.get("offs", args[2] if len(args) > 2 else None)
                counts = torch.diff(offsets.long(), prepend=offsets.new_zeros(1).long())
                self.rows[found[0]] += counts
        elif func in (torch.ops.aten.mm.default, torch.ops.aten.addmm.default):
            inputs, weight = (args[0], args[1]) if func is torch.ops.aten.mm.default else (args[1], args[2])
            found = self.storages.get(weight.untyped_storage().data_ptr())
            if found is not None:
                layer, experts = found
                stacked = experts.gate_up_proj
                expert = (weight.storage_offset() - stacked.storage_offset()) // stacked.stride(0)
                self.rows[layer][expert] += inputs.shape[0]
        return func(*args, **kwargs)


def _expected_kept_rows(model, blocks, input_ids, tau):
    """Recompute the MoDES rule independently from the routers' own outputs (no skipping installed)."""
    captured = {}
    handles = [block.gate.register_forward_hook(
        lambda module, inputs, output, layer=layer: captured.update({layer: output})) for layer, block in blocks.items()]
    try:
        model(input_ids=input_ids)
    finally:
        for handle in handles:
            handle.remove()
    kept = {}
    for layer, (logits, _, index) in captured.items():
        probabilities = torch.softmax(logits.float(), -1).gather(1, index)
        keep = ~(IMPORTANCE[layer] * probabilities < tau)
        kept[layer] = torch.bincount(index[keep], minlength=blocks[layer].experts.num_experts)
    return kept


@pytest.mark.parametrize("implementation", ["grouped_mm", "eager"])
@pytest.mark.parametrize("tau", [0.0, 0.03, 0.08, 0.5])
def test_expert_rows_drop_as_the_skip_ratio_says(moe_model, implementation, tau):
    input_ids, _ = prompts(padded=False)
    _, blocks = sparse_blocks(moe_model)
    # Only the first layer's routing is independent of skipping elsewhere, so check that layer exactly.
    expected_first = _expected_kept_rows(moe_model, blocks, input_ids, tau)[0]
    schedule = Schedule.identity(moe_model).with_fields(experts=expert_skipping_section(IMPORTANCE, tau))
    stats = expert_skip_stats(moe_model, schedule, input_ids)
    original = moe_model.config._experts_implementation
    moe_model.config._experts_implementation = implementation
    try:
        with torch.no_grad(), scheduled(moe_model, schedule), ExpertRowCounter(blocks) as counter:
            moe_model(input_ids=input_ids)
    finally:
        moe_model.config._experts_implementation = original
    routed_pairs = input_ids.numel() * moe_model.config.num_experts_per_tok
    for layer in blocks:
        computed = int(counter.rows[layer].sum())
        assert computed == stats.routed[layer] - stats.skipped[layer]
        assert computed == round((1.0 - stats.layer_ratio(layer)) * routed_pairs)
    assert torch.equal(counter.rows[0], expected_first)
    total_computed = sum(int(rows.sum()) for rows in counter.rows.values())
    assert total_computed == round((1.0 - stats.ratio) * routed_pairs * len(blocks))
    if tau == 0.5:
        assert total_computed == 0


@pytest.mark.parametrize("renormalize", [True, False])
def test_block_output_matches_zeroed_weight_reference(moe_model, renormalize):
    """The packed dispatch computes what the original block would with skipped weights set to zero."""
    _, blocks = sparse_blocks(moe_model)
    layer, block = next(iter(blocks.items()))
    hidden = torch.randn(3, 7, moe_model.config.hidden_size, generator=torch.Generator().manual_seed(1))
    tau = 0.1
    with torch.no_grad():
        flat = hidden.view(-1, hidden.shape[-1])
        logits, weights, index = block.gate(flat)
        skipped = IMPORTANCE[layer] * torch.softmax(logits.float(), -1).gather(1, index) < tau
        assert skipped.any() and not skipped.all()
        reference_weights = weights.masked_fill(skipped, 0.0)
        if renormalize:
            kept_sum = reference_weights.sum(-1, keepdim=True)
            reference_weights = torch.where(kept_sum > 0, reference_weights * weights.sum(-1, keepdim=True) / kept_sum,
                                            reference_weights)
        reference = block.experts(flat, index, reference_weights)
        if hasattr(block, "shared_expert"):
            reference = reference + F.sigmoid(block.shared_expert_gate(flat)) * block.shared_expert(flat)
        section = expert_skipping_section(IMPORTANCE, tau, renormalize)
        with scheduled(moe_model, Schedule.identity(moe_model).with_fields(experts=section)):
            patched = block(hidden)
    torch.testing.assert_close(patched.view(-1, hidden.shape[-1]), reference, rtol=1e-5, atol=1e-6)
