"""How often the full model accepts a draft schedule's tokens, and the speedup that follows (the searchable signal).

The acceptance rate is measured by running the real draft/verify loop on prompts, so it includes the
effect of the shared KV cache, not only the draft's standalone agreement with the full model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from colasearch.cost import CostModel
from colasearch.errors import ColasearchError
from colasearch.schedule import Schedule
from colasearch.speculative.decoding import draft_length_policy, speculative_generate


def expected_speedup(acceptance_rate: float, draft_tokens: int, draft_cost: float) -> float:
    """Expected tokens per round over the cost of a round, in full-model forwards.

    With per-token acceptance ``a`` and ``k`` drafts a round yields (1 - a^(k+1)) / (1 - a) tokens
    and costs k * ``draft_cost`` + 1 (``draft_cost``: the draft's per-token cost relative to the
    full model, 1 / ideal speedup). Leviathan et al. 2023, eq. 1 and theorem 3.8.
    """
    if not 0.0 <= acceptance_rate <= 1.0:
        raise ColasearchError(f"acceptance rate must be in [0, 1], got {acceptance_rate!r}")
    if draft_tokens < 1 or draft_cost < 0:
        raise ColasearchError(f"need draft_tokens >= 1 and draft_cost >= 0, got {draft_tokens!r}, {draft_cost!r}")
    a = acceptance_rate
    tokens = draft_tokens + 1.0 if a >= 1.0 else (1.0 - a ** (draft_tokens + 1)) / (1.0 - a)
    return tokens / (draft_tokens * draft_cost + 1.0)


def _as_batch(prompt) -> torch.Tensor:
    ids = prompt if isinstance(prompt, torch.Tensor) else torch.tensor(prompt, dtype=torch.long)
    if ids.dim() == 1:
        ids = ids.unsqueeze(0)
    if ids.dim() != 2 or ids.shape[0] != 1 or ids.shape[1] == 0:
        raise ColasearchError(f"each prompt must be a non-empty 1-D token list, got shape {tuple(ids.shape)}")
    return ids


def measure_acceptance(model, schedule: Schedule, prompts_input_ids: Sequence, k: int = 4, max_new_tokens: int = 32,
              stop_at_eos: bool = False, force: bool = False) -> dict:
    """Acceptance of ``schedule`` as the draft over greedy continuations of the prompts, and its expected speedup.

    Each prompt runs alone (batch 1), so one prompt's rejections never cut another's rounds.
    Without ``stop_at_eos`` every prompt yields ``max_new_tokens`` tokens, for a steadier estimate.
    """
    draft_length_policy(k)
    if isinstance(k, str):
        raise ColasearchError("measuring acceptance needs a fixed number of draft tokens")
    if len(prompts_input_ids) == 0:
        raise ColasearchError("measuring acceptance needs at least one prompt")
    device = next(model.parameters()).device
    totals = dict(rounds=0, drafted=0, accepted=0, rejections=0, new_tokens=0, full_forward_calls=0)
    for prompt in prompts_input_ids:
        ids = _as_batch(prompt).to(device)
        _, stats = speculative_generate(model, schedule, ids, max_new_tokens=max_new_tokens, draft_tokens=k,
                                        eos_token_id=None if stop_at_eos else (), force=force)
        for name in totals:
            totals[name] += getattr(stats, name)
    trials = totals["accepted"] + totals["rejections"]
    acceptance = totals["accepted"] / trials if trials else 0.0
    ideal = CostModel.from_model(model).ideal_speedup(schedule)
    draft_cost = 1.0 / ideal
    return {
        "acceptance_rate": acceptance,
        "accepted_fraction": totals["accepted"] / totals["drafted"] if totals["drafted"] else 0.0,
        "draft_tokens": k,
        "draft_ideal_speedup": ideal,
        "draft_cost": draft_cost,
        "expected_speedup": expected_speedup(acceptance, k, draft_cost),
        "tokens_per_full_forward": totals["new_tokens"] / totals["full_forward_calls"],
        "prompts": len(prompts_input_ids),
        **totals,
    }


def acceptance_extra(model, schedule: Schedule, prompts_input_ids: Sequence, k: int = 4,
                     max_new_tokens: int = 16, force: bool = False) -> dict:
    """The ``EvalResult`` fields the ``speculative`` objective reads (``acceptance_rate``, ``draft_tokens``) and
    ``accepted_fraction``, as keyword arguments for an evaluator to pass on."""
    measured = measure_acceptance(model, schedule, prompts_input_ids, k=k, max_new_tokens=max_new_tokens, force=force)
    return {"acceptance_rate": measured["acceptance_rate"], "draft_tokens": k,
            "accepted_fraction": measured["accepted_fraction"]}
