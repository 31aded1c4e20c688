"""Everything an :class:`~colasearch.evaluator.Evaluator` is built with beyond its model, tokenizer and task:
the splits and the scoring options, as one value. A run builds it once; its evaluators (this process's, a
fresh one per searcher in ``compare``) and every Ray worker are built from that same value, which a worker
receives as is, so their results cannot differ by a forgotten option."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

# Tokens (rows x width) in one packed batch of the fast path.
DEFAULT_BATCH_TOKENS = 2048


class EvaluatorConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # The splits: items in each, and the seed that shuffles them (confirm: items after the held-out ones).
    search_size: int = 64
    heldout_size: int = 200
    seed: int = 0
    confirm_size: int = 0
    # Scoring
    prefix_cache_mb: int | None = None     # None: sized from the device's free memory
    batch_tokens: int = DEFAULT_BATCH_TOKENS
    force: bool = False
    dense_kl: bool = False                 # KL to the full model at every scored token
    context_kl: bool = False               # ... and at every token of the item's own text
    measure_speed: bool = False            # time every candidate where it is scored (--objective measured)
    # Self-speculative drafts (--objective speculative) and expert skipping
    speculative_prompts: int = 0
    draft_tokens: int = 4
    draft_new_tokens: int = 16
    expert_skip_items: int = 16

    def options(self) -> dict:
        """The settings beyond the splits that differ from the defaults (for a name or a log line)."""
        splits = ("search_size", "heldout_size", "seed")
        return {name: value for name, value in self.model_dump(exclude_defaults=True).items() if name not in splits}
