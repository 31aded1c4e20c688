"""Run a schedule's chain ourselves (embed -> chain entries -> norm -> head) on packed sequences.

Going around ``model.forward`` lets the evaluator start from cached hidden states after a shared
prefix of chain entries, pack a context with all its continuations under a custom attention mask,
and apply the output head only where a prediction is scored. The entries are the runtime's own
``ScheduledEntry`` objects, so sub-blocks and their semantics are exactly those of ``apply_schedule``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from colasearch.decoder import decoder_of
from colasearch.devices import model_device, model_dtype
from colasearch.fingerprint import text_config
from colasearch.runtime import PRENORM_FAMILIES, ScheduledEntry, assign_cache_slots, family_of
from colasearch.schedule import LayerEntry, Schedule
from colasearch.tasks.base import PackedSequence, SequenceScores

HEAD_CHUNK_ROWS = 256


@dataclass
class PackedBatch:
    """Right-padded tensors for a fixed group of packed sequences; built once per split."""

    key: tuple[str, int]
    sequences: list[PackedSequence]
    input_ids: torch.Tensor
    position_ids: torch.Tensor
    masks: dict[int | None, torch.Tensor]
    rows: torch.Tensor  # (batch row, position) of every scored prediction, flattened
    row_counts: list[int]
    targets: torch.Tensor
    position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None
    order: list[int] | None = None  # indices of the sequences in their split
    context_rows: torch.Tensor | None = None  # (batch row, position) of each sequence's ``context_rows()``
    context_counts: list[int] | None = None

    @property
    def tokens(self) -> int:
        return int(self.input_ids.numel())


def fast_path_supported(model) -> bool:
    try:
        family = family_of(model)
    except Exception:
        return False
    return family in PRENORM_FAMILIES


def build_mask(positions: torch.Tensor, segments: torch.Tensor, valid: torch.Tensor, window: int | None) -> torch.Tensor:
    """Boolean [B, 1, T, T]: a token sees the shared prefix and its own segment, causally by position."""
    pos_q, pos_k = positions[:, :, None], positions[:, None, :]
    seg_q, seg_k = segments[:, :, None], segments[:, None, :]
    allowed = (pos_k <= pos_q) & ((seg_k == 0) | (seg_k == seg_q)) & valid[:, None, :] & valid[:, :, None]
    if window is not None:
        allowed &= pos_k > pos_q - window
    # Padding rows see themselves only, so attention never divides by an empty set.
    eye = torch.eye(positions.shape[1], dtype=torch.bool, device=positions.device)[None]
    allowed |= eye & ~valid[:, :, None]
    return allowed[:, None]


class ChainRunner:
    def __init__(self, model):
        self.model = model
        self.decoder = decoder_of(model)
        self.layers = getattr(model, "_colasearch_originals", None) or self.decoder.layers
        self.config = text_config(model.config)
        saved = getattr(model, "_colasearch_saved_config", None) or {}
        layer_types = saved.get("layer_types", getattr(self.config, "layer_types", None))
        sliding = getattr(self.config, "sliding_window", None)
        if layer_types is not None:
            self.windows = [sliding if kind == "sliding_attention" else None for kind in layer_types]
        else:
            # Families without per-layer types (Mistral) slide every layer when a window is set.
            self.windows = [sliding] * len(self.layers)
        self.head = model.get_output_embeddings()
        # Inputs go to the embeddings' device; on a split model (device_map) accelerate's hooks move the
        # hidden states from layer to layer, and what reads the last layer's output follows it there.
        self.device = model_device(model)
        self.dtype = model_dtype(model)
        self.pad_id = 0

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def chain(self, schedule: Schedule | None) -> tuple[LayerEntry, ...]:
        if schedule is None:
            return tuple(LayerEntry(layer=index) for index in range(self.num_layers))
        return schedule.layers

    def entries(self, chain: tuple[LayerEntry, ...]) -> list[ScheduledEntry]:
        slots = assign_cache_slots(chain)
        return [ScheduledEntry(self.layers[entry.layer], entry, slot, sandwich=False) for entry, slot in zip(chain, slots)]

    def batch(self, key: tuple[str, int], sequences: list[PackedSequence]) -> PackedBatch:
        width = max(len(sequence) for sequence in sequences)
        shape = (len(sequences), width)
        input_ids = torch.full(shape, self.pad_id, dtype=torch.long)
        positions = torch.zeros(shape, dtype=torch.long)
        segments = torch.zeros(shape, dtype=torch.long)
        valid = torch.zeros(shape, dtype=torch.bool)
        rows, counts, targets, context_rows, context_counts = [], [], [], [], []
        for row, sequence in enumerate(sequences):
            length = len(sequence)
            input_ids[row, :length] = torch.tensor(sequence.tokens)
            positions[row, :length] = torch.tensor(sequence.positions)
            segments[row, :length] = torch.tensor(sequence.segments)
            valid[row, :length] = True
            rows.extend((row, position) for position in sequence.predict_at)
            counts.append(len(sequence.predict_at))
            targets.extend(sequence.targets)
            own = sequence.context_rows()
            context_rows.extend((row, position) for position in own)
            context_counts.append(len(own))
        masks = {window: self._mask_for_attention(build_mask(positions, segments, valid, window))
                 for window in set(self.windows)}
        batch = PackedBatch(key, sequences, input_ids.to(self.device), positions.to(self.device), masks,
                            torch.tensor(rows, dtype=torch.long).reshape(-1, 2).to(self.device), counts,
                            torch.tensor(targets, dtype=torch.long).to(self.device),
                            context_rows=torch.tensor(context_rows, dtype=torch.long).reshape(-1, 2).to(self.device),
                            context_counts=context_counts)
        return batch

    def _mask_for_attention(self, allowed: torch.Tensor) -> torch.Tensor:
        # SDPA takes a boolean mask; eager attention adds the mask to its scores.
        if getattr(self.config, "_attn_implementation", "sdpa") == "sdpa":
            return allowed.to(self.device)
        additive = torch.zeros(allowed.shape, dtype=self.dtype)
        additive.masked_fill_(~allowed, torch.finfo(self.dtype).min)
        return additive.to(self.device)

    @torch.no_grad()
    def embed(self, batch: PackedBatch) -> torch.Tensor:
        return self.decoder.embed_tokens(batch.input_ids)

    @torch.no_grad()
    def run(self, hidden: torch.Tensor, entry: ScheduledEntry, batch: PackedBatch) -> torch.Tensor:
        if batch.position_embeddings is None:
            batch.position_embeddings = self.decoder.rotary_emb(hidden, batch.position_ids)
        output = entry(hidden, attention_mask=batch.masks[self.windows[entry.entry.layer]],
                       position_embeddings=batch.position_embeddings, position_ids=batch.position_ids,
                       cache=None, use_cache=False)
        return output[0] if isinstance(output, tuple) else output

    @torch.no_grad()
    def final_states(self, hidden: torch.Tensor, batch: PackedBatch, context: bool = False) -> torch.Tensor:
        """Normed hidden states at the scored positions only (the head runs nowhere else), or with
        ``context`` at the prefix's own predictions, for the dense KL."""
        rows = (batch.context_rows if context else batch.rows).to(hidden.device)
        picked = hidden[rows[:, 0], rows[:, 1]]
        return self.decoder.norm(picked)

    @torch.no_grad()
    def context_kl(self, states: torch.Tensor, reference: torch.Tensor, batch: PackedBatch) -> list[torch.Tensor]:
        """KL(full || schedule) at each sequence's context rows, one tensor per sequence."""
        parts = [_kl(self.head(reference[start:start + HEAD_CHUNK_ROWS]), self.head(states[start:start + HEAD_CHUNK_ROWS]))
                 for start in range(0, states.shape[0], HEAD_CHUNK_ROWS)]
        values = torch.cat(parts).cpu() if parts else torch.zeros(0)
        return list(torch.split(values, batch.context_counts))

    @torch.no_grad()
    def score(self, states: torch.Tensor, batch: PackedBatch, reference: torch.Tensor | None = None) -> list[SequenceScores]:
        logprob_parts, argmax_parts, kl_parts, reference_parts, reference_logprob_parts = [], [], [], [], []
        for start in range(0, states.shape[0], HEAD_CHUNK_ROWS):
            stop = start + HEAD_CHUNK_ROWS
            logprobs = torch.log_softmax(self.head(states[start:stop]).float(), dim=-1)
            logprob_parts.append(logprobs.gather(1, batch.targets[start:stop, None].to(logprobs.device))[:, 0])
            argmax_parts.append(logprobs.argmax(-1))
            if reference is not None:
                full = torch.log_softmax(self.head(reference[start:stop]).float(), dim=-1)
                kl_parts.append(kl_of_logprobs(full, logprobs))
                reference_parts.append(full.argmax(-1))
                reference_logprob_parts.append(full.gather(1, batch.targets[start:stop, None].to(full.device))[:, 0])
        return split_scores(batch.row_counts, torch.cat(logprob_parts).cpu(), torch.cat(argmax_parts).cpu(),
                            torch.cat(kl_parts).cpu() if kl_parts else None,
                            torch.cat(reference_parts).cpu() if reference_parts else None,
                            torch.cat(reference_logprob_parts).cpu() if reference_logprob_parts else None)


def kl_of_logprobs(full: torch.Tensor, schedule: torch.Tensor) -> torch.Tensor:
    """KL(full || schedule) per row, from log-probabilities."""
    return (full.exp() * (full - schedule)).sum(-1)


def _kl(full_logits: torch.Tensor, schedule_logits: torch.Tensor) -> torch.Tensor:
    return kl_of_logprobs(torch.log_softmax(full_logits.float(), dim=-1), torch.log_softmax(schedule_logits.float(), dim=-1))


def split_scores(counts, logprobs, argmax, kl=None, reference_argmax=None,
                 reference_logprobs=None) -> list[SequenceScores]:
    scores, start = [], 0
    for count in counts:
        part = slice(start, start + count)

        def sliced(values):
            return None if values is None else values[part]

        scores.append(SequenceScores(logprobs[part], argmax[part], sliced(kl), sliced(reference_argmax),
                                     reference_logprobs=sliced(reference_logprobs)))
        start += count
    return scores
