"""The task plug-in protocol, its registry, and ``load_task`` for task specs such as ``jsonl:PATH``.

Two kinds of task exist. A *scoring* task turns each item into one packed token sequence whose
next-token predictions the evaluator scores with its fast path (batched, prefix-cached). A *model*
task needs the whole patched model (greedy generation, lm-eval) and is run through it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, ClassVar, Literal, Mapping

import torch
from pydantic import ValidationError

from colasearch.errors import TaskError
from colasearch.registry import Registry

Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class Item:
    """One task item; ``id`` decides its split, ``data`` is whatever the task needs."""

    id: str
    data: Any


@dataclass
class PackedSequence:
    """One item as a single token sequence with shared-prefix structure.

    ``segments[i]`` is 0 for the shared prefix (a multiple-choice context) and ``j >= 1`` for the
    j-th continuation. A token sees the prefix and the earlier tokens of its own segment, with
    ``positions`` restarting after the prefix, so each continuation is computed exactly as if it
    followed the prefix alone. ``predict_at[k]`` is the index whose next-token prediction is
    scored against ``targets[k]``, a token of segment ``target_segments[k]`` (the prediction at a
    context's last token serves the first token of every continuation).
    """

    tokens: list[int]
    positions: list[int]
    segments: list[int]
    predict_at: list[int]
    targets: list[int]
    target_segments: list[int] | None = None

    def segment_of_target(self, index: int) -> int:
        return 0 if self.target_segments is None else self.target_segments[index]

    def unpacked(self, segment: int) -> tuple[list[int], dict[int, int]]:
        """The plain sequence a continuation stands for: prefix then that segment, and the index map."""
        kept = [i for i, owner in enumerate(self.segments) if owner in (0, segment)]
        return [self.tokens[i] for i in kept], {packed: plain for plain, packed in enumerate(kept)}

    def context_rows(self) -> list[int]:
        """Prefix positions that predict the next prefix token and are not already scored."""
        scored = set(self.predict_at)
        return [index for index in range(len(self.tokens) - 1)
                if self.segments[index] == 0 and self.segments[index + 1] == 0 and index not in scored]

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass
class SequenceScores:
    """What the evaluator hands back per packed sequence, one entry per ``predict_at``."""

    target_logprobs: torch.Tensor
    argmax: torch.Tensor
    kl: torch.Tensor | None = None
    reference_argmax: torch.Tensor | None = None
    # KL to the full model at the shared prefix's own next-token predictions (``PackedSequence.context_rows``):
    # the task's text itself as calibration data, many more tokens per item than the scored ones.
    context_kl: torch.Tensor | None = None
    # The full model's log-probability of each target, so a task can compare decisions, not only tokens.
    reference_logprobs: torch.Tensor | None = None


class Task(ABC):
    """A benchmark the evaluator can score a schedule on."""

    #: How the evaluator scores it: ``"scoring"`` from packed sequences' log-probabilities, ``"model"`` by
    #: handing the task the schedule-patched model. (A task *kind*, in a spec's ``PREFIX:``, is its loader.)
    evaluated_as: ClassVar[str]
    name: str
    primary_metric: str
    metric_directions: dict[str, Direction]
    #: A metric's smooth counterpart, where the task has one (multiple choice: ``prob`` for ``acc``): what
    #: ``--search-metric smooth`` searches on. Empty by default: each metric is its own.
    smooth_metrics: Mapping[str, str] = MappingProxyType({})
    #: A label-free signal from every token, where the task has one (multiple choice: ``text_kl``): what
    #: ``--search-metric dense`` searches on. ``None``: the primary metric.
    dense_metric: str | None = None
    #: Whether scoring needs the full model's predictions beside the schedule's (fidelity: the KL to them).
    needs_reference: ClassVar[bool] = False

    @abstractmethod
    def items(self) -> list[Item]:
        """All items, in a stable order; loaded once and validated."""

    def bind(self, tokenizer) -> None:
        """Prepare items that depend on the tokenizer (text windows); most tasks need nothing."""

    def item_prompt(self, tokenizer, item: Item) -> str | None:
        """The text ``item`` prompts the model with, for a task that has none in packed sequences (generation):
        calibration and speculative drafting read it. ``None``: the task has no prompt text."""
        return None

    def relative_to_full(self, quality: dict[str, float], full: dict[str, float]) -> dict[str, float]:
        """``quality`` weighed against the full model's ``full`` on the same items (composite: each sub-task's
        share of the full model's quality). A task that implements it :attr:`compares_with_full`."""
        return quality

    @property
    def compares_with_full(self) -> bool:
        """Whether the evaluator must score the full model on the same items and hand both to
        :meth:`relative_to_full`: true where a task implements it (an extra evaluation, so not for every task)."""
        return type(self).relative_to_full is not Task.relative_to_full

    def metric_sign(self, metric: str) -> float:
        """+1 for a metric to maximize, -1 for one to minimize: a difference times it is positive when better."""
        return 1.0 if self.metric_directions[metric] == "maximize" else -1.0

    def config_key(self) -> str:
        """Identifies the task's data and options for the result cache."""
        payload = json.dumps(self.describe(), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        # "kind" stays the payload's key: it is part of every recorded task key, which a rename must not move.
        return {"name": self.name, "kind": self.evaluated_as}


class ScoringTask(Task):
    """Scored from next-token log-probabilities of packed sequences: the evaluator's fast path."""

    evaluated_as = "scoring"
    @abstractmethod
    def pack(self, items: list[Item], tokenizer) -> list[PackedSequence]:
        """One packed sequence per item, in the same order."""

    @abstractmethod
    def metrics(self, items: list[Item], packed: list[PackedSequence], scores: list[SequenceScores]) -> dict[str, float]:
        """All of the task's metrics over ``items``."""

    def metrics_with_model(self, items: list[Item], packed: list[PackedSequence], scores: list[SequenceScores],
                           with_model) -> dict[str, float]:
        """``metrics``, for tasks whose scores can leave items undecided (generation decodes those):
        ``with_model(work)`` returns ``work(model, tokenizer)`` run with the schedule under evaluation."""
        return self.metrics(items, packed, scores)

    def item_values(self, items: list[Item], packed: list[PackedSequence],
                    scores: list[SequenceScores]) -> dict[str, list[float]]:
        """Each metric item by item, in the order of ``items``: what multi-fidelity racing pairs. A task that
        implements it :attr:`has_item_values`."""
        raise NotImplementedError(f"task {self.name!r} has no per-item values")

    @property
    def has_item_values(self) -> bool:
        """Whether this task's results can carry per-item values: true where it implements :meth:`item_values`."""
        return type(self).item_values is not ScoringTask.item_values


#: Scores packed sequences with ``model`` as it stands (it already runs the schedule under evaluation).
Scorer = Callable[[Any, list[PackedSequence]], list[SequenceScores]]


class ModelTask(Task):
    """Needs the schedule-patched model itself (generation, external harnesses)."""

    evaluated_as = "model"

    @abstractmethod
    def run(self, model, tokenizer, items: list[Item]) -> dict[str, float]:
        """All metrics on ``items``; ``model`` already executes the schedule under evaluation."""

    def use_scorer(self, score: Scorer) -> None:
        """Receive the evaluator's scorer, for a task that scores packed sequences inside :meth:`run` (a composite
        with scoring sub-tasks); most model tasks need none. Handed over because tasks sit below the evaluator."""


def options_from(cls, options: dict[str, Any], where: str):
    """A task's options as its pydantic model ``cls``; the first bad one is named (a TaskError)."""
    try:
        return cls(**options)
    except ValidationError as error:
        first = error.errors()[0]
        name = ".".join(str(part) for part in first["loc"]) or "option"
        raise TaskError(f"{where}: option {name}: {first['msg']}") from None


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def read_text_file(path: str | Path) -> tuple[Path, str]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TaskError(f"{path}: task file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise TaskError(f"{path}: cannot read task file: {error}") from None
    if not text.strip():
        raise TaskError(f"{path}: task file is empty")
    return path, text


def jsonl_records(path: Path, text: str):
    """``(line number, object)`` for every non-blank line; the first bad line is named."""
    # JSON Lines ends a line at "\n" only: str.splitlines() would also split inside a string at U+2028 and kin.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise TaskError(f"{path}:{number}: malformed JSON line ({error.msg})") from None
        if not isinstance(record, dict):
            raise TaskError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        yield number, record


def read_jsonl(path: str | Path) -> tuple[Path, list[dict]]:
    """Every non-blank line must be a JSON object; the first bad one is named by its line number."""
    path, text = read_text_file(path)
    records = list(jsonl_records(path, text))
    if not records:
        raise TaskError(f"{path}: task file has no items")
    return path, records


def record_key(record: dict) -> str:
    """The record's content as canonical JSON: equal for exact duplicates, whatever the order of their fields."""
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def content_id(record: dict) -> str:
    """The id of a record that names none: a hash of its content, so its split does not follow its line number."""
    return "h" + hashlib.sha256(record_key(record).encode()).hexdigest()[:16]


def identified_records(path: Path, records: list[tuple[int, dict]]) -> list[tuple[str, int, dict]]:
    """``(item id, line number, record)``: the record's ``id``, or a hash of its content when it has none.

    Exact duplicates (the same record again, field order aside) are dropped with one warning on stderr:
    scoring an item twice only weighs it double, and a copy could land in the other split. Two
    different records that share an ``id`` are an error.
    """
    kept, seen_ids, seen_records, dropped = [], set(), set(), []
    for number, record in records:
        key = record_key(record)
        if key in seen_records:
            dropped.append(number)
            continue
        seen_records.add(key)
        item_id = str(record["id"]) if "id" in record else content_id(record)
        if item_id in seen_ids:
            raise TaskError(f"{path}:{number}: duplicate item id {item_id!r}")
        seen_ids.add(item_id)
        kept.append((item_id, number, record))
    if dropped:
        lines = ", ".join(str(number) for number in dropped[:5]) + (", ..." if len(dropped) > 5 else "")
        sys.stderr.write(f"colasearch: warning: {path}: dropped {len(dropped)} exact duplicate "
                         f"item{'s' if len(dropped) > 1 else ''} (line{'s' if len(dropped) > 1 else ''} {lines})\n")
    return kept


class TaskKinds(Registry):
    """Task kinds by spec prefix (``PREFIX:ARGUMENT``): each name is a loader ``(argument, **options) -> Task``.

    The built-in kinds are imported on first use, as a third-party package's are (entry-point group
    ``colasearch.tasks``), so listing the kinds imports no task module."""

    def load(self, spec: str, **options) -> Task:
        """The task of one ``PREFIX:ARGUMENT`` spec, by the loader registered for its prefix (a bare name is
        ``builtin:``)."""
        if not isinstance(spec, str) or not spec.strip():
            raise TaskError("empty task spec; expected e.g. builtin:capitals or jsonl:PATH")
        prefix, separator, argument = spec.partition(":")
        if not separator:
            prefix, argument = "builtin", spec
        if prefix not in self:
            known = ", ".join(f"{name}:" for name in self.names())
            raise TaskError(f"unknown task kind {prefix!r} in {spec!r} (known: {known})")
        if not argument:
            raise TaskError(f"task spec {spec!r} names no {prefix} argument")
        return self.get(prefix)(argument, **options)


TASK_KINDS = TaskKinds("task kind", "colasearch.tasks", {
    "builtin": "colasearch.tasks.builtin:builtin_task",
    "jsonl": "colasearch.tasks.multiple_choice:load_jsonl_task",
    "text": "colasearch.tasks.perplexity:load_text_task",
    "fidelity": "colasearch.tasks.fidelity:load_fidelity_task",
    "lm-eval": "colasearch.tasks.lm_eval_adapter:load_lm_eval_task",
    "composite": "colasearch.tasks.composite:load_composite_task",
}, error=TaskError)
