"""Self-speculative greedy decoding: a schedule drafts, the full model verifies, the output is the full model's.

Each round the draft (the model with the schedule applied) proposes ``k`` tokens one at a time, and
the full model scores the pending token plus all ``k`` drafts in one forward. The longest prefix of
drafts that equals the full model's own greedy choice is kept, followed by the full model's token at
the first mismatch (or its bonus token after the last draft), so every committed token is the full
model's argmax given the committed prefix: greedy output is identical to plain greedy decoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from colasearch.benchmark import cache_kwarg
from colasearch.errors import ColasearchError
from colasearch.runtime import applied_schedule, scheduled
from colasearch.schedule import Schedule
from colasearch.speculative.cache import SharedDraftCache

ADAPTIVE = "adaptive"
MAX_DRAFT_TOKENS = 32
_MODEL_DEFAULT = object()


@dataclass(frozen=True)
class SpeculativeStats:
    """What one speculative run did.

    ``acceptance_rate`` is the per-token acceptance probability (alpha of the speculative decoding
    literature), estimated as accepted / (accepted + rejections): each draft position is a trial
    until the first rejection of its round. ``accepted_fraction`` is the plainer accepted / drafted.
    With a batch, a round keeps the shortest accepted prefix over the unfinished rows, and the counts
    are of those batch-wide rounds.
    """

    batch_size: int
    new_tokens: int
    rounds: int
    drafted: int
    accepted: int
    rejections: int
    draft_forward_calls: int
    full_forward_calls: int
    shared_cache_slots: int
    private_cache_slots: int

    @property
    def acceptance_rate(self) -> float:
        trials = self.accepted + self.rejections
        return self.accepted / trials if trials else 0.0

    @property
    def accepted_fraction(self) -> float:
        return self.accepted / self.drafted if self.drafted else 0.0

    @property
    def mean_draft_tokens(self) -> float:
        return self.drafted / self.rounds if self.rounds else 0.0

    @property
    def tokens_per_full_forward(self) -> float:
        return self.new_tokens / self.full_forward_calls if self.full_forward_calls else 0.0

    def to_dict(self) -> dict:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for name in ("acceptance_rate", "accepted_fraction", "mean_draft_tokens", "tokens_per_full_forward"):
            data[name] = getattr(self, name)
        return data


class FixedDraftLength:
    def __init__(self, tokens: int):
        self.tokens = tokens

    def next(self) -> int:
        return self.tokens

    def update(self, drafted: int, accepted: int) -> None:
        pass


class AdaptiveDraftLength:
    """Grow the lookahead after a fully accepted round, shrink it after a rejection.

    The heuristic of transformers' assisted generation (+2 / -1), bounded to [1, ``maximum``].
    """

    def __init__(self, start: int = 4, maximum: int = 12):
        self.tokens = start
        self.maximum = maximum

    def next(self) -> int:
        return self.tokens

    def update(self, drafted: int, accepted: int) -> None:
        if drafted == 0:
            return
        self.tokens = min(self.maximum, self.tokens + 2) if accepted == drafted else max(1, self.tokens - 1)


def draft_length_policy(draft_tokens: int | str):
    if draft_tokens == ADAPTIVE:
        return AdaptiveDraftLength()
    if isinstance(draft_tokens, str):
        try:
            draft_tokens = int(draft_tokens)
        except ValueError:
            raise ColasearchError(f"draft tokens must be an integer or 'adaptive', got {draft_tokens!r}") from None
    if isinstance(draft_tokens, bool) or not isinstance(draft_tokens, int) or not 1 <= draft_tokens <= MAX_DRAFT_TOKENS:
        raise ColasearchError(f"draft tokens must be between 1 and {MAX_DRAFT_TOKENS} or 'adaptive', got {draft_tokens!r}")
    return FixedDraftLength(draft_tokens)


def _positions(mask: torch.Tensor, count: int) -> torch.Tensor:
    """Position ids the way ``generate`` derives them from a left-padded mask."""
    positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
    return positions[:, -count:]


def _forward(model, tokens, mask, cache, logits_to_keep: int):
    kwargs = {cache_kwarg(model): cache}
    return model(input_ids=tokens, attention_mask=mask, position_ids=_positions(mask, tokens.shape[1]),
                 use_cache=True, logits_to_keep=logits_to_keep, **kwargs).logits


def _eos_ids(model, eos_token_id) -> tuple[int, ...]:
    if eos_token_id is _MODEL_DEFAULT:
        config = getattr(model, "generation_config", None)
        eos_token_id = getattr(config, "eos_token_id", None) if config is not None else None
    if eos_token_id is None:
        return ()
    return (int(eos_token_id),) if isinstance(eos_token_id, int) else tuple(int(token) for token in eos_token_id)


class _Committer:
    """Appends verified tokens the way ``generate`` would: a finished row continues with padding."""

    def __init__(self, input_ids, mask, eos_ids, pad_token_id):
        self.sequence = input_ids
        self.mask = mask
        self.eos = torch.tensor(eos_ids, dtype=input_ids.dtype, device=input_ids.device)
        self.pad = pad_token_id
        self.finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        self.produced = 0

    @property
    def done(self) -> bool:
        return bool(self.finished.all())

    def commit(self, tokens: torch.Tensor) -> int:
        """Commit columns of ``tokens`` in order; stop once every row has finished. Returns the count."""
        columns = []
        for column in tokens.unbind(1):
            column = torch.where(self.finished, torch.full_like(column, self.pad), column)
            columns.append(column)
            if self.eos.numel():
                self.finished |= torch.isin(column, self.eos)
            if self.done:
                break
        added = torch.stack(columns, 1)
        self.sequence = torch.cat([self.sequence, added], 1)
        self.mask = torch.cat([self.mask, torch.ones_like(added, dtype=self.mask.dtype)], 1)
        self.produced += len(columns)
        return len(columns)


@torch.no_grad()
def speculative_generate(
    model,
    schedule: Schedule,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    max_new_tokens: int = 32,
    draft_tokens: int | str = 4,
    eos_token_id: int | Sequence[int] | None = _MODEL_DEFAULT,  # type: ignore[assignment]
    pad_token_id: int | None = None,
    share_cache: bool = True,
    force: bool = False,
) -> tuple[torch.Tensor, SpeculativeStats]:
    """Greedy decoding of the full model, drafted by ``schedule``; returns ``(output_ids, stats)``.

    ``output_ids`` equals ``model.generate(..., do_sample=False)`` token for token, at any batch
    size with left padding (a finished row is padded, generation stops when all rows are done).
    The rows of a batch advance in lockstep: a round keeps the shortest accepted prefix over the
    unfinished rows (plus each row's own verified token), so one cache length serves every row and
    the output stays exact, but a batch accepts less per round than its rows would alone.
    ``draft_tokens`` is a fixed lookahead or ``"adaptive"``. ``eos_token_id`` defaults to the
    model's generation config; pass ``()`` to never stop early. ``share_cache`` lets the draft's
    attention read and write the full model's verified KV (Draft & Verify); without it the draft keeps
    a cache of its own and behaves exactly like the schedule run alone.
    """
    policy = draft_length_policy(draft_tokens)
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ColasearchError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    if input_ids.dim() != 2 or input_ids.shape[1] == 0:
        raise ColasearchError("input_ids must be a non-empty (batch, length) tensor")
    if attention_mask is not None and attention_mask.shape != input_ids.shape:
        raise ColasearchError(f"attention_mask shape {tuple(attention_mask.shape)} != input_ids shape {tuple(input_ids.shape)}")
    if applied_schedule(model) is not None:
        raise ColasearchError("the model already runs a schedule; restore it before speculative decoding")
    schedule.check_fits(model, force=force)

    if pad_token_id is None:
        pad_token_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
    caches = SharedDraftCache.build(model, schedule, share=share_cache)
    committer = _Committer(input_ids, mask, _eos_ids(model, eos_token_id), pad_token_id)
    counts = dict(rounds=0, drafted=0, accepted=0, rejections=0, draft_forward_calls=0, full_forward_calls=1)

    first = _forward(model, input_ids, mask, caches.full, 1)[:, -1].argmax(-1, keepdim=True)
    committer.commit(first)
    if caches.has_private_slots and not committer.done:
        # Draft-only slots need the prompt too; shared slots already hold the full model's.
        with scheduled(model, schedule, force=force):
            _forward(model, input_ids, mask, caches.private_prefill_view(), 1)
        counts["draft_forward_calls"] += 1

    while committer.produced < max_new_tokens and not committer.done:
        remaining = max_new_tokens - committer.produced
        verified = committer.sequence.shape[1] - 1
        pending = committer.sequence[:, verified:]
        # Draft-only slots never see a bonus token, so with them a round commits at most k tokens.
        k = max(1, min(policy.next(), remaining)) if caches.has_private_slots else min(policy.next(), remaining - 1)
        drafts = []
        if k > 0:
            caches.crop_draft(verified)
            draft_mask = committer.mask
            with scheduled(model, schedule, force=force):
                token = pending
                for _ in range(k):
                    token = _forward(model, token, draft_mask, caches.draft_view, 1)[:, -1].argmax(-1, keepdim=True)
                    drafts.append(token)
                    draft_mask = torch.cat([draft_mask, torch.ones_like(token, dtype=draft_mask.dtype)], 1)
            counts["draft_forward_calls"] += k
        caches.crop_full(verified)
        verify_input = torch.cat([pending, *drafts], 1)
        verify_mask = torch.cat([committer.mask, torch.ones((mask.shape[0], k), dtype=mask.dtype, device=mask.device)], 1)
        choices = _forward(model, verify_input, verify_mask, caches.full, 0).argmax(-1)
        counts["full_forward_calls"] += 1

        accepted = 0
        if k > 0:
            matches = (torch.cat(drafts, 1) == choices[:, :k]).long().cumprod(1).sum(1)
            matches = torch.where(committer.finished, torch.full_like(matches, k), matches)
            accepted = int(matches.min())
            counts["rounds"] += 1
            counts["drafted"] += k
            counts["accepted"] += accepted
            counts["rejections"] += int(accepted < k)
            policy.update(k, accepted)
        keep = accepted + 1
        if caches.has_private_slots:
            keep = min(keep, k)
        committer.commit(choices[:, :keep])
        new_verified = committer.sequence.shape[1] - 1
        caches.crop_full(new_verified)
        caches.crop_private(new_verified)

    stats = SpeculativeStats(
        batch_size=input_ids.shape[0], new_tokens=committer.produced, shared_cache_slots=len(caches.shared),
        private_cache_slots=len(caches.private), **counts,
    )
    return committer.sequence, stats
