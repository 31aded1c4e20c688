"""Multiple choice scored by log-likelihood: ``acc`` and ``acc_norm`` (per character of the choice), and their
smooth counterparts ``prob`` and ``prob_norm``.

The context is packed once per item and every choice continues from it (see ``PackedSequence``),
so the context is never run once per choice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from colasearch.errors import TaskError
from colasearch.tasks.base import (
    Item, PackedSequence, ScoringTask, SequenceScores, file_digest, identified_records, options_from,
)

DEFAULT_JOIN = "\nAnswer: "
# Joins of the external benchmark data (HellaSwag's continuation follows with a space), recognised by file stem.
KNOWN_JOINS = {"hellaswag": " "}
KNOWN_PRIMARY = {"hellaswag": "acc_norm"}


class MultipleChoiceOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    join: str | None = None
    primary_metric: str | None = Field(default=None, pattern="^(acc|acc_norm)$")
    max_length: int = Field(default=1024, ge=8)


@dataclass(frozen=True)
class Question:
    context: str
    choices: tuple[str, ...]
    label: int


def _split_join(join: str) -> tuple[str, str]:
    """Trailing whitespace of the join goes with the choice, as BPE tokenizers glue a space to the next word."""
    stripped = join.rstrip()
    return stripped, join[len(stripped):]


def _context_tokens(tokenizer, text: str) -> list[int]:
    tokens = tokenizer(text).input_ids
    if not tokens:
        fallback = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        tokens = [fallback if fallback is not None else 0]
    return tokens


class MultipleChoiceTask(ScoringTask):
    # prob / prob_norm: mean probability the model puts on the right choice, the choices' (length-normalised)
    # log-likelihoods softmaxed. A smooth stand-in for acc / acc_norm: on a few dozen search items accuracy
    # moves in steps of one item, and a search that maximizes it picks winners by luck.
    # answer_nll / choice_nll: label-aware and continuous like prob, but not bounded: a confident mistake
    # costs more than a near-tie, where prob saturates.
    metric_directions = {"acc": "maximize", "acc_norm": "maximize", "prob": "maximize", "prob_norm": "maximize",
                         "answer_nll": "minimize", "choice_nll": "minimize",
                         "kl": "minimize", "prob_kl": "maximize", "text_kl": "minimize", "choice_kl": "minimize"}
    smooth_metrics = {"acc": "prob", "acc_norm": "prob_norm"}
    dense_metric = "text_kl"

    def __init__(self, name: str, questions: list[tuple[str, Question]], join: str = DEFAULT_JOIN,
                 primary_metric: str = "acc", max_length: int = 1024, source: dict | None = None):
        self.name = name
        self._items = [Item(item_id, question) for item_id, question in questions]
        self.join = join
        self.primary_metric = primary_metric
        self.max_length = max_length
        self._source = source or {}

    def items(self) -> list[Item]:
        return self._items

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "multiple_choice", "join": self.join, "max_length": self.max_length,
                **self._source}

    def continuation(self, choice: str) -> str:
        return _split_join(self.join)[1] + choice

    def pack(self, items: list[Item], tokenizer) -> list[PackedSequence]:
        context_join, _ = _split_join(self.join)
        packed = []
        for item in items:
            question: Question = item.data
            context = _context_tokens(tokenizer, question.context + context_join)
            choices = [tokenizer(self.continuation(choice), add_special_tokens=False).input_ids or [0]
                       for choice in question.choices]
            # Keep the choices whole; trim the context from the left if the item is too long.
            room = max(1, self.max_length - max(len(choice) for choice in choices))
            context = context[-room:]
            tokens, positions, segments = list(context), list(range(len(context))), [0] * len(context)
            predict_at, targets, target_segments = [], [], []
            for number, choice in enumerate(choices, start=1):
                for offset, token in enumerate(choice):
                    # The first choice token is predicted by the last context token.
                    predict_at.append(len(context) - 1 if offset == 0 else len(tokens) - 1)
                    targets.append(token)
                    target_segments.append(number)
                    tokens.append(token)
                    positions.append(len(context) + offset)
                    segments.append(number)
            packed.append(PackedSequence(tokens, positions, segments, predict_at, targets, target_segments))
        return packed

    def choice_loglikelihoods(self, sequence: PackedSequence, scores: SequenceScores,
                              reference: bool = False) -> list[float]:
        """Each choice's log-likelihood under the schedule, or with ``reference`` under the full model."""
        totals: dict[int, float] = {}
        logprobs = scores.reference_logprobs if reference else scores.target_logprobs
        for index, value in enumerate(logprobs.tolist()):
            segment = sequence.segment_of_target(index)
            totals[segment] = totals.get(segment, 0.0) + value
        return [totals[segment] for segment in sorted(totals)]

    def metrics(self, items, packed, scores) -> dict[str, float]:
        count = max(1, len(items))
        return {name: sum(values) / count for name, values in self.item_values(items, packed, scores).items()}

    def item_values(self, items, packed, scores) -> dict[str, list[float]]:
        """Each metric per item (their means are the metrics), for paired comparisons between schedules.

        With the full model's reference (the evaluator's ``dense_kl``), also ``kl``: the mean KL divergence
        from the full model over the item's scored tokens, and ``prob_kl`` = ``prob`` - ``kl``, which rewards
        the right answer and penalises drifting from the full model everywhere else. Always ``answer_nll``, the
        right choice's negative log-likelihood per token (the language-model loss on the answer), and
        ``choice_nll``, the negative log of ``prob`` (or of ``prob_norm`` where the primary metric is
        ``acc_norm``): the log loss of the decision over the choices. With the evaluator's
        ``context_kl``, also ``text_kl``: the mean KL over every token of the item, question and choices, a
        label-free signal from many more tokens (the task's text as EvoPress's calibration data). And
        ``choice_kl``: the KL from the full model's distribution over the choices (their log-likelihoods,
        length-normalised where the primary metric is ``acc_norm``, softmaxed) to the schedule's. It is
        label-free too, but measures only what decides the answer, and is continuous where ``acc`` moves
        by whole items.
        """
        values: dict[str, list[float]] = {"acc": [], "acc_norm": [], "prob": [], "prob_norm": [], "answer_nll": [],
                                          "choice_nll": []}
        with_kl = bool(scores) and all(score.kl is not None for score in scores)
        if with_kl:
            values.update(kl=[], prob_kl=[])
        with_choice_kl = with_kl and all(score.reference_logprobs is not None for score in scores)
        if with_choice_kl:
            values["choice_kl"] = []
        with_text_kl = with_kl and all(score.context_kl is not None for score in scores)
        if with_text_kl:
            values["text_kl"] = []
        for item, sequence, score in zip(items, packed, scores):
            question: Question = item.data
            loglikelihoods = self.choice_loglikelihoods(sequence, score)
            lengths = [max(1, len(self.continuation(choice))) for choice in question.choices]
            normalised = [value / length for value, length in zip(loglikelihoods, lengths)]
            values["acc"].append(float(_argmax(loglikelihoods) == question.label))
            values["acc_norm"].append(float(_argmax(normalised) == question.label))
            values["prob"].append(_softmax_at(loglikelihoods, question.label))
            values["prob_norm"].append(_softmax_at(normalised, question.label))
            answer_tokens = sum(1 for index in range(len(sequence.targets))
                                if sequence.segment_of_target(index) == question.label + 1)
            values["answer_nll"].append(-loglikelihoods[question.label] / max(1, answer_tokens))
            decided_by = normalised if self.primary_metric == "acc_norm" else loglikelihoods
            values["choice_nll"].append(-_log_softmax_at(decided_by, question.label))
            if with_kl:
                kl = float(score.kl.mean()) if len(score.kl) else 0.0
                values["kl"].append(kl)
                values["prob_kl"].append(values["prob"][-1] - kl)
            if with_choice_kl:
                full = self.choice_loglikelihoods(sequence, score, reference=True)
                own = loglikelihoods
                if self.primary_metric == "acc_norm":
                    full, own = [value / length for value, length in zip(full, lengths)], normalised
                values["choice_kl"].append(_categorical_kl(full, own))
            if with_text_kl:
                every = torch.cat([score.kl.float(), score.context_kl.float()])
                values["text_kl"].append(float(every.mean()) if len(every) else 0.0)
        return values


def _softmax_at(values: list[float], index: int) -> float:
    return math.exp(_log_softmax_at(values, index))


def _log_softmax_at(values: list[float], index: int) -> float:
    top = max(values)
    return values[index] - top - math.log(sum(math.exp(value - top) for value in values))


def _categorical_kl(full: list[float], schedule: list[float]) -> float:
    """KL(softmax(full) || softmax(schedule)), from unnormalised log-scores."""
    full_log = torch.log_softmax(torch.tensor(full, dtype=torch.float64), dim=0)
    schedule_log = torch.log_softmax(torch.tensor(schedule, dtype=torch.float64), dim=0)
    return max(0.0, float((full_log.exp() * (full_log - schedule_log)).sum()))


def _argmax(values: list[float]) -> int:
    """First maximum, so ties break the same way in every evaluator."""
    best = 0
    for index, value in enumerate(values):
        if value > values[best]:
            best = index
    return best


def question_from_record(record: dict, where: str) -> Question:
    for name in ("context", "choices", "label"):
        if name not in record:
            raise TaskError(f"{where}: missing field {name!r}")
    context, choices, label = record["context"], record["choices"], record["label"]
    if not isinstance(context, str):
        raise TaskError(f"{where}: 'context' must be a string")
    if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(choice, str) and choice for choice in choices):
        raise TaskError(f"{where}: 'choices' must be a list of at least two non-empty strings")
    if not isinstance(label, int) or isinstance(label, bool):
        raise TaskError(f"{where}: 'label' must be an integer")
    if not 0 <= label < len(choices):
        raise TaskError(f"{where}: label {label} is out of range for {len(choices)} choices")
    return Question(context, tuple(choices), label)


def multiple_choice_from_records(path: Path, records: list[tuple[int, dict]], **options) -> MultipleChoiceTask:
    settings = options_from(MultipleChoiceOptions, options, str(path))
    stem = path.stem.lower()
    known = next((key for key in KNOWN_JOINS if stem.startswith(key)), None)
    join = settings.join if settings.join is not None else KNOWN_JOINS.get(known, DEFAULT_JOIN)
    primary = settings.primary_metric or KNOWN_PRIMARY.get(known, "acc")
    questions = [(item_id, question_from_record(record, f"{path}:{number}"))
                 for item_id, number, record in identified_records(path, records)]
    return MultipleChoiceTask(path.stem, questions, join=join, primary_metric=primary, max_length=settings.max_length,
                              source={"path": str(path.resolve()), "digest": file_digest(path)})


def load_jsonl_task(argument: str, **options):
    from colasearch.tasks.base import read_jsonl
    from colasearch.tasks.generation import generation_from_records

    path, records = read_jsonl(argument)
    first = records[0][1]
    if "prompt" in first or "answer" in first:
        return generation_from_records(path, records, **options)
    if "context" in first or "choices" in first:
        return multiple_choice_from_records(path, records, **options)
    raise TaskError(f"{path}:{records[0][0]}: cannot tell the task type: expected fields context/choices/label "
                    "(multiple choice) or prompt/answer (generation)")
