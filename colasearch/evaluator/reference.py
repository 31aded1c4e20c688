"""The plain evaluator: every continuation run as its own sequence through ``model(...)``.

It is the ground truth the fast path is tested against, the fallback for families the fast path
does not cover, and the baseline of ``bench/eval_throughput.py``.
"""

from __future__ import annotations

import torch

from colasearch.evaluator.forward import kl_of_logprobs
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


def _sequence_rows(model, sequence: PackedSequence) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
    """Log-probability rows for every prediction, keyed by its index in ``predict_at``, and those at the
    sequence's ``context_rows()`` stacked; one plain run per segment."""
    segments = sorted(set(sequence.segment_of_target(k) for k in range(len(sequence.targets))))
    plain = [sequence.unpacked(segment) for segment in segments]
    outputs = _plain_logprobs(model, [tokens for tokens, _ in plain])
    rows = {}
    for segment, (tokens, index_map), logprobs in zip(segments, plain, outputs):
        for k, position in enumerate(sequence.predict_at):
            if sequence.segment_of_target(k) == segment:
                rows[k] = logprobs[index_map[position]]
    # The prefix is in every plain run and computed alike in each: read its rows from the first.
    index_map, logprobs = plain[0][1], outputs[0]
    context = [logprobs[index_map[position]] for position in sequence.context_rows()]
    return rows, torch.stack(context) if context else logprobs[:0]


@torch.no_grad()
def reference_scores(model, schedule: Schedule | None, sequences: list[PackedSequence], with_reference: bool = False,
                     force: bool = False, context_kl: bool = False) -> list[SequenceScores]:
    """Scores of each packed sequence computed the plain way, per item and per continuation."""
    full_rows = None
    if with_reference:
        full_rows = [_sequence_rows(model, sequence) for sequence in sequences]
    with scheduled(model, schedule, force=force):
        results = []
        for number, sequence in enumerate(sequences):
            rows, context = _sequence_rows(model, sequence)
            stacked = torch.stack([rows[k] for k in range(len(sequence.targets))])
            targets = torch.tensor(sequence.targets)
            logprobs = stacked.gather(1, targets[:, None].to(stacked.device))[:, 0].cpu()
            argmax = stacked.argmax(-1).cpu()
            kl = reference_argmax = context_divergence = reference_logprobs = None
            if full_rows is not None:
                full_by_target, full_context = full_rows[number]
                full = torch.stack([full_by_target[k] for k in range(len(sequence.targets))])
                kl = kl_of_logprobs(full, stacked).cpu()
                reference_argmax = full.argmax(-1).cpu()
                reference_logprobs = full.gather(1, targets[:, None].to(full.device))[:, 0].cpu()
                if context_kl:
                    context_divergence = kl_of_logprobs(full_context, context).cpu()
            results.append(SequenceScores(logprobs, argmax, kl, reference_argmax, context_divergence,
                                          reference_logprobs))
    return results


def plain_scores(model, sequences: list[PackedSequence]) -> list[SequenceScores]:
    """Scores of ``model`` as it stands (a schedule already applied), the plain way: the scorer a model task
    that runs scoring sub-tasks receives (``ModelTask.use_scorer``)."""
    return reference_scores(model, None, sequences, with_reference=False)
