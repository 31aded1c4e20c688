"""The plain evaluator: every continuation run as its own sequence through ``model(...)``.

It is the ground truth the fast path is tested against, the fallback for families the fast path
does not cover, and the baseline of ``bench/eval_throughput.py``.
"""

from __future__ import annotations

import torch

from colasearch.runtime import scheduled
from colasearch.schedule import Schedule
from colasearch.tasks.base import PackedSequence, SequenceScores


@torch.no_grad()
def _plain_logprobs(model, sequences: list[list[int]], pad_id: int = 0) -> list[torch.Tensor]:
    """Full-vocabulary log-probabilities of each right-padded sequence, one tensor per sequence."""
    device = next(model.parameters()).device
    width = max(len(tokens) for tokens in sequences)
    input_ids = torch.tensor([tokens + [pad_id] * (width - len(tokens)) for tokens in sequences], device=device)
    mask = torch.tensor([[1] * len(tokens) + [0] * (width - len(tokens)) for tokens in sequences], device=device)
    logits = model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits
    return [torch.log_softmax(logits[row, :len(tokens)].float(), dim=-1) for row, tokens in enumerate(sequences)]


def _sequence_rows(model, sequence: PackedSequence) -> dict[int, torch.Tensor]:
    """Log-probability rows for every prediction, keyed by its index in ``predict_at``; one plain run per segment."""
    segments = sorted(set(sequence.segment_of_target(k) for k in range(len(sequence.targets))))
    plain = [sequence.unpacked(segment) for segment in segments]
    outputs = _plain_logprobs(model, [tokens for tokens, _ in plain])
    rows = {}
    for segment, (tokens, index_map), logprobs in zip(segments, plain, outputs):
        for k, position in enumerate(sequence.predict_at):
            if sequence.segment_of_target(k) == segment:
                rows[k] = logprobs[index_map[position]]
    return rows


@torch.no_grad()
def reference_scores(model, schedule: Schedule | None, sequences: list[PackedSequence], with_reference: bool = False,
                     force: bool = False) -> list[SequenceScores]:
    """Scores of each packed sequence computed the plain way, per item and per continuation."""
    full_rows = None
    if with_reference:
        full_rows = [_sequence_rows(model, sequence) for sequence in sequences]
    with scheduled(model, schedule, force=force):
        results = []
        for number, sequence in enumerate(sequences):
            rows = _sequence_rows(model, sequence)
            stacked = torch.stack([rows[k] for k in range(len(sequence.targets))])
            targets = torch.tensor(sequence.targets)
            logprobs = stacked.gather(1, targets[:, None].to(stacked.device))[:, 0].cpu()
            argmax = stacked.argmax(-1).cpu()
            kl = reference_argmax = None
            if full_rows is not None:
                full = torch.stack([full_rows[number][k] for k in range(len(sequence.targets))])
                kl = (full.exp() * (full - stacked)).sum(-1).cpu()
                reference_argmax = full.argmax(-1).cpu()
            results.append(SequenceScores(logprobs, argmax, kl, reference_argmax))
    return results

