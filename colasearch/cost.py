"""Analytic cost: the weights each executed sub-block multiplies per token, plus the output projection.

Parameters are counted from the model's own modules, so attention and MLP are weighted by their
real share (grouped-query attention, gated MLPs and active experts included).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

from colasearch.fingerprint import num_experts_of, text_config
from colasearch.schedule import Schedule

_EXPERT_CONTAINERS = ("experts",)


def _count(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def _routed_params(mlp: nn.Module, config) -> float:
    """Per-token weights of the top-k routed experts (0 for a dense MLP); shared experts are not routed."""
    experts = next((getattr(mlp, name) for name in _EXPERT_CONTAINERS if hasattr(mlp, name)), None)
    total_experts = num_experts_of(config)
    if experts is None or not total_experts:
        return 0.0
    top_k = getattr(config, "num_experts_per_tok", 1) or 1
    return _count(experts) * top_k / total_experts


def _active_mlp_params(mlp: nn.Module, config) -> float:
    """Per-token MLP weights: for MoE, only the top-k routed experts run for each token."""
    experts = next((getattr(mlp, name) for name in _EXPERT_CONTAINERS if hasattr(mlp, name)), None)
    if experts is None or not num_experts_of(config):
        return float(_count(mlp))
    return float(_count(mlp) - _count(experts)) + _routed_params(mlp, config)


@dataclass(frozen=True)
class CostModel:
    attention: tuple[float, ...]
    mlp: tuple[float, ...]
    head: float
    kv_bytes_per_entry: float
    # Routed-expert share of ``mlp`` per layer; empty for cost models saved before expert skipping.
    routed: tuple[float, ...] = ()

    @classmethod
    def from_model(cls, model) -> CostModel:
        from colasearch.decoder import decoder_of

        config = text_config(model.config)
        decoder = decoder_of(model)
        layers = getattr(model, "_colasearch_originals", None) or decoder.layers
        attention = tuple(float(_count(layer.self_attn)) for layer in layers)
        mlp = tuple(_active_mlp_params(layer.mlp, config) for layer in layers)
        head = model.get_output_embeddings()
        head_params = float(head.weight.numel()) if head is not None else 0.0
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        dtype_bytes = next(model.parameters()).element_size()
        routed = tuple(_routed_params(layer.mlp, config) for layer in layers)
        return cls(attention, mlp, head_params, float(2 * kv_heads * head_dim * dtype_bytes), routed)

    @property
    def num_layers(self) -> int:
        return len(self.attention)

    def params_per_token(self, schedule: Schedule | None, expert_skip_ratio: float | None = None) -> float:
        """``expert_skip_ratio`` is the *measured* fraction of routed expert work skipped (colasearch.moe);
        every MoE layer routes the same number of equal-sized experts per token, so one ratio is exact."""
        skip = expert_skip_ratio or 0.0
        routed = self.routed or (0.0,) * self.num_layers
        if schedule is None:
            return sum(self.attention) + sum(self.mlp) - skip * sum(routed) + self.head
        total = self.head
        for entry in schedule.layers:
            if entry.runs_attention:
                total += self.attention[entry.layer]
            if entry.runs_mlp:
                total += self.mlp[entry.layer] - skip * routed[entry.layer]
        return total

    def flops_per_token(self, schedule: Schedule | None, expert_skip_ratio: float | None = None) -> float:
        return 2.0 * self.params_per_token(schedule, expert_skip_ratio)

    def ideal_speedup(self, schedule: Schedule | None, expert_skip_ratio: float | None = None) -> float:
        return self.params_per_token(None) / self.params_per_token(schedule, expert_skip_ratio)

    def layer_bound(self, schedule: Schedule | None) -> float:
        """The most any measurement of ``schedule`` can honestly show: full layers over scheduled layers,
        each sub-block counted by its share of its layer, and nothing for the head and embeddings, which
        cost the same time in both. Routed experts of an expert-skipping schedule count as skippable whole,
        so the bound stays an upper one whatever the gate skips."""
        full = sum(self.attention) + sum(self.mlp)
        if schedule is None:
            return 1.0
        routed = self.routed or (0.0,) * self.num_layers
        skippable = 1.0 if schedule.experts is not None else 0.0
        executed = 0.0
        for entry in schedule.layers:
            if entry.runs_attention:
                executed += self.attention[entry.layer]
            if entry.runs_mlp:
                executed += self.mlp[entry.layer] - skippable * routed[entry.layer]
        return full / executed if executed > 0 else float("inf")

    def kv_bytes_per_token(self, schedule: Schedule | None) -> float:
        entries = self.num_layers if schedule is None else sum(entry.runs_attention for entry in schedule.layers)
        return entries * self.kv_bytes_per_entry

    def unit_share(self, layer: int, run: str = "all") -> float:
        """Fraction of the full model's per-token cost that one layer (or sub-block) carries."""
        parts = {"attn": self.attention[layer], "mlp": self.mlp[layer]}
        value = parts[run] if run in parts else sum(parts.values())
        return value / self.params_per_token(None)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> CostModel:
        return cls(tuple(data["attention"]), tuple(data["mlp"]), data["head"], data["kv_bytes_per_entry"],
                   tuple(data.get("routed", ())))

    def summary(self, schedule: Schedule | None) -> dict[str, float]:
        return {
            "ideal_speedup": self.ideal_speedup(schedule),
            "flops_per_token": self.flops_per_token(schedule),
            "kv_bytes_per_token": self.kv_bytes_per_token(schedule),
        }
