"""Generation scored by exact match of the greedy completion: normalisation or a regex extractor.

Decoding token by token is slow, so without an extractor a completion is first looked at through
one teacher-forced forward of ``prompt + answer`` (a ``ScoringTask``, so the evaluator's fast path
and prefix cache serve it): the argmax after each answer token says how far greedy decoding
follows the answer and which token it takes where it leaves it. ``GenerationBase.outcome`` turns
such a known start of the completion into a hit, a miss, or "undecided" - only when that is
provable from the exact-match rule below. Undecided items are decoded with ``model.generate``,
continuing from their known start, and every row stops as soon as its outcome is known.

Exact match: the completion (ending at the first end-of-sequence token or after ``max_new_tokens``)
is decoded; without an extractor its first non-blank line is compared with the answer after
``normalise``; with one, the extracted text is.
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from colasearch.errors import TaskError
from colasearch.tasks.base import (
    Item, ModelTask, PackedSequence, ScoringTask, SequenceScores, Task, file_digest, identified_records,
)


class GenerationOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_new_tokens: int = Field(default=16, ge=1, le=1024)
    chat: bool = False
    extract: str | None = None
    batch_size: int = Field(default=16, ge=1)
    # Decide items from one teacher-forced forward where that provably equals greedy decoding
    # (no extractor); False decodes every item with model.generate.
    teacher_forced: bool = True

    @field_validator("extract")
    @classmethod
    def _compiles(cls, value):
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"invalid regex: {error}") from None
        return value


@dataclass(frozen=True)
class Prompt:
    prompt: str
    answer: str


_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = ("a", "an", "the")
# Generation settings that do not change which token greedy decoding picks; any other setting that
# differs from its default (a repetition penalty, min_new_tokens, beams, ...) may, so with one of
# those every item is decoded.
_ARGMAX_NEUTRAL = {
    "bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id", "use_cache", "cache_implementation",
    "cache_config", "return_legacy_cache", "output_attentions", "output_hidden_states", "output_scores",
    "output_logits", "return_dict_in_generate", "num_return_sequences", "max_length", "max_new_tokens", "do_sample",
    "temperature", "top_k", "top_p", "typical_p", "min_p", "epsilon_cutoff", "eta_cutoff", "renormalize_logits",
    "compile_config", "disable_compile", "is_assistant", "transformers_version", "_from_model_config",
}


def normalise(text: str) -> str:
    """Lower case, no punctuation or articles, single spaces (the SQuAD convention)."""
    text = text.lower().translate(_PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def word_characters(text: str) -> str:
    """What ``normalise`` keeps of ``text`` apart from spaces and dropped articles: lower-cased word
    characters without ASCII punctuation. Growing the text only appends to it (tokenizer clean-up
    removes spaces, an unfinished UTF-8 character shows as U+FFFD, neither is a word character);
    final and medial sigma count as one letter, since ``str.lower`` picks between them by what follows."""
    return "".join(re.findall(r"\w", text.lower().replace("ς", "σ"))).translate(_PUNCTUATION)


def could_normalise_to(start: str, target: str) -> bool:
    """Whether some text beginning with ``start`` can normalise to ``target``. If ``normalise(x) == target``,
    the word characters of ``x`` are those of ``target`` with article letters slipped in; this checks that
    ``start``'s word characters begin such a string, articles allowed anywhere (so it never says no wrongly)."""
    goal = word_characters(target)
    states = {(0, "")}  # (characters of the goal matched, rest of an article being read)
    for char in word_characters(start):
        following = set()
        for matched, article_rest in states:
            if article_rest:
                if char == article_rest[0]:
                    following.add((matched, article_rest[1:]))
                continue
            if matched < len(goal) and goal[matched] == char:
                following.add((matched + 1, ""))
            following.update((matched, article[1:]) for article in _ARTICLES if article[0] == char)
        states = following
        if not states:
            return False
    return True


def stop_ids(model) -> frozenset[int]:
    """The tokens that end ``model.generate``'s output: its generation config's end-of-sequence ids."""
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        return frozenset()
    return frozenset(int(token) for token in ([eos] if isinstance(eos, int) else eos))


def greedy_is_argmax(model) -> bool:
    """Whether ``model.generate(do_sample=False)`` picks the plain argmax each step (no logits processor,
    no beams), the premise of reading greedy decoding off a teacher-forced forward."""
    from transformers import GenerationConfig

    config = getattr(model, "generation_config", None)
    if config is None:
        return True
    defaults = GenerationConfig().to_dict()
    return all(value == defaults.get(key) for key, value in config.to_dict().items() if key not in _ARGMAX_NEUTRAL)


class GenerationBase(Task):
    """Items, prompts and the exact-match rule shared by the decoding and the teacher-forced task."""

    metric_directions = {"exact_match": "maximize"}
    primary_metric = "exact_match"

    def __init__(self, name: str, prompts: list[tuple[str, Prompt]], options: GenerationOptions | None = None,
                 source: dict | None = None):
        self.name = name
        self._items = [Item(item_id, prompt) for item_id, prompt in prompts]
        self.options = options or GenerationOptions()
        self._source = source or {}
        # Items decided by the teacher-forced forward and items decoded, over this task's life (for benchmarks).
        self.counts = {"teacher_forced": 0, "decoded": 0}

    def items(self) -> list[Item]:
        return self._items

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "generation", **self.options.model_dump(), **self._source}

    def prompt_text(self, tokenizer, prompt: str) -> str:
        if self.options.chat and getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                 add_generation_prompt=True)
        return prompt

    def item_prompt(self, tokenizer, item: Item) -> str:
        return self.prompt_text(tokenizer, item.data.prompt)

    def prompt_tokens(self, tokenizer, item: Item) -> list[int]:
        tokens = list(tokenizer(self.prompt_text(tokenizer, item.data.prompt)).input_ids)
        if not tokens:
            raise TaskError(f"task {self.name!r}: the prompt of item {item.id!r} is empty after tokenization")
        return tokens

    def extract(self, completion: str) -> str:
        if self.options.extract is None:
            # Without an extractor the answer is the first line of the completion.
            return completion.strip().split("\n")[0]
        match = re.search(self.options.extract, completion)
        if match is None:
            return ""
        return match.group(1) if match.groups() else match.group(0)

    def is_match(self, completion: str, answer: str) -> bool:
        return normalise(self.extract(completion)) == normalise(answer)

    def outcome(self, tokens: list[int], answer: str, tokenizer, stops: frozenset[int],
                complete: bool = False) -> bool | None:
        """Exact match of a greedy completion that begins with ``tokens`` (all of it when ``complete``);
        None when the rest of the completion could still change it."""
        if len(tokens) >= self.options.max_new_tokens:
            tokens, complete = tokens[:self.options.max_new_tokens], True
        end = next((index for index, token in enumerate(tokens) if token in stops), None)
        if end is not None:
            tokens, complete = tokens[:end + 1], True
        text = tokenizer.decode(tokens, skip_special_tokens=True)
        if complete:
            return self.is_match(text, answer)
        if self.options.extract is not None:
            return None  # a regex may match anywhere in what is still to come
        started = text.lstrip()
        if "\n" in started:
            # The first line is closed: later tokens cannot change it (clean-up never crosses a newline).
            return normalise(started.split("\n")[0]) == normalise(answer)
        if not could_normalise_to(started, normalise(answer)):
            return False
        return None

    @torch.no_grad()
    def completions(self, model, tokenizer, items: list[Item]) -> list[str]:
        """Plain ``model.generate`` completions, each cut at its first end token: the reference output."""
        device = next(model.parameters()).device
        pad = _pad_id(tokenizer)
        stops = stop_ids(model)
        outputs = []
        for start in range(0, len(items), self.options.batch_size):
            batch = items[start:start + self.options.batch_size]
            encoded = [self.prompt_tokens(tokenizer, item) for item in batch]
            input_ids, mask, width = _left_padded(encoded, pad, device)
            generated = model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=self.options.max_new_tokens,
                                       do_sample=False, pad_token_id=pad)
            outputs.extend(tokenizer.decode(_until_stop(row[width:].tolist(), stops), skip_special_tokens=True)
                           for row in generated)
        return outputs

    @torch.no_grad()
    def decoded_outcomes(self, model, tokenizer, items: list[Item], starts: list[list[int]] | None = None) -> list[bool]:
        """Exact match of each item by greedy decoding, continuing from its known ``starts`` (the start of
        its greedy completion); a row stops as soon as its outcome is known, a batch once all have."""
        from transformers import StoppingCriteriaList

        if not items:
            return []
        self.counts["decoded"] += len(items)
        if not greedy_is_argmax(model):
            # Generation settings that may not be plain greedy: decode whole completions the ordinary way.
            return [self.is_match(text, item.data.answer) for text, item in zip(self.completions(model, tokenizer, items), items)]
        starts = starts or [[] for _ in items]
        device = next(model.parameters()).device
        pad = _pad_id(tokenizer)
        stops = stop_ids(model)
        results: list[bool] = []
        for first in range(0, len(items), self.options.batch_size):
            batch, known = items[first:first + self.options.batch_size], starts[first:first + self.options.batch_size]
            encoded = [self.prompt_tokens(tokenizer, item) + start for item, start in zip(batch, known)]
            input_ids, mask, width = _left_padded(encoded, pad, device)
            watch = _DecidedRows(lambda tokens, row: self.outcome(tokens, batch[row].data.answer, tokenizer, stops),
                                 known, width)
            budget = max(1, max(self.options.max_new_tokens - len(start) for start in known))
            generated = model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=budget, do_sample=False,
                                       pad_token_id=pad, stopping_criteria=StoppingCriteriaList([watch]))
            for row, decided in enumerate(watch.results):
                if decided is None:  # not reached when every row's budget was decoded; kept for safety
                    tokens = known[row] + generated[row, width:].tolist()
                    decided = self.outcome(tokens, batch[row].data.answer, tokenizer, stops, complete=True)
                results.append(decided)
        return results


class _DecidedRows:
    """A stopping criterion: row by row, stop once the completion so far decides the outcome."""

    def __init__(self, decide, starts: list[list[int]], width: int):
        self.decide, self.starts, self.width = decide, starts, width
        self.results: list[bool | None] = [None] * len(starts)

    def __call__(self, input_ids: torch.Tensor, scores=None, **kwargs) -> torch.Tensor:
        for row, start in enumerate(self.starts):
            if self.results[row] is None:
                self.results[row] = self.decide(start + input_ids[row, self.width:].tolist(), row)
        return torch.tensor([result is not None for result in self.results], device=input_ids.device)


def _pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)


def _left_padded(encoded: list[list[int]], pad: int, device) -> tuple[torch.Tensor, torch.Tensor, int]:
    # Left padding keeps every prompt's last token in the final column.
    width = max(len(tokens) for tokens in encoded)
    input_ids = torch.tensor([[pad] * (width - len(t)) + t for t in encoded], device=device)
    mask = torch.tensor([[0] * (width - len(t)) + [1] * len(t) for t in encoded], device=device)
    return input_ids, mask, width


def _until_stop(tokens: list[int], stops: frozenset[int]) -> list[int]:
    """Up to the first end token, so a row's text does not depend on what the batch decoded after it."""
    end = next((index for index, token in enumerate(tokens) if token in stops), None)
    return tokens if end is None else tokens[:end + 1]


class GenerationTask(GenerationBase, ModelTask):
    """Every item decoded with ``model.generate`` (an extractor, or ``teacher_forced: false``)."""

    def run(self, model, tokenizer, items: list[Item]) -> dict[str, float]:
        outcomes = self.decoded_outcomes(model, tokenizer, items)
        return {"exact_match": sum(outcomes) / max(1, len(items))}


class ScoredGenerationTask(GenerationBase, ScoringTask):
    """Packed as ``prompt + answer`` (with and without a leading space, as two continuations) whose
    predictions include the one after the answer; items the forward cannot decide are decoded.

    ``answer_prob`` is the smooth counterpart of exact match: the probability of the answer's tokens
    after the prompt (summed over the two spellings), averaged over items.
    """

    metric_directions = {"exact_match": "maximize", "answer_prob": "maximize"}
    smooth_metrics = {"exact_match": "answer_prob"}

    def answer_spellings(self, tokenizer, answer: str) -> list[list[int]]:
        """Greedy text usually opens with a space after a prompt, so both spellings are followed; longer
        than ``max_new_tokens`` is never decoded, so never scored."""
        spellings = []
        for text in (" " + answer, answer):
            tokens = list(tokenizer(text, add_special_tokens=False).input_ids)[:self.options.max_new_tokens]
            if tokens not in spellings:
                spellings.append(tokens)
        return spellings

    def pack(self, items: list[Item], tokenizer) -> list[PackedSequence]:
        stop = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        packed = []
        for item in items:
            prompt = self.prompt_tokens(tokenizer, item)
            tokens, positions, segments = list(prompt), list(range(len(prompt))), [0] * len(prompt)
            predict_at, targets, target_segments = [], [], []
            for number, answer in enumerate(self.answer_spellings(tokenizer, item.data.answer), start=1):
                # One prediction per answer token and one after the answer (target: the end token).
                for offset, token in enumerate(answer + [stop]):
                    predict_at.append(len(prompt) - 1 if offset == 0 else len(tokens) - 1)
                    targets.append(token)
                    target_segments.append(number)
                    if offset < len(answer):
                        tokens.append(token)
                        positions.append(len(prompt) + offset)
                        segments.append(number)
            packed.append(PackedSequence(tokens, positions, segments, predict_at, targets, target_segments))
        return packed

    @staticmethod
    def known_start(sequence: PackedSequence, scores: SequenceScores) -> list[int]:
        """The start of the greedy completion the forward reveals: the answer tokens greedy follows, then the
        token it takes instead (or after the answer). The spelling followed furthest tells the most."""
        argmax = scores.argmax.tolist()
        best: list[int] = []
        for segment in sorted(set(sequence.target_segments)):
            indices = [k for k, owner in enumerate(sequence.target_segments) if owner == segment]
            answer = [sequence.targets[k] for k in indices[:-1]]
            start = []
            for token, predicted in zip(answer + [None], (argmax[k] for k in indices)):
                start.append(predicted)
                if predicted != token:
                    break
            if len(start) > len(best):
                best = start
        return best

    def outcomes(self, model, tokenizer, items: list[Item], packed: list[PackedSequence],
                 scores: list[SequenceScores]) -> list[bool]:
        """Exact match per item; ``model`` runs the schedule whose ``scores`` these are."""
        stops = stop_ids(model)
        starts: list[list[int]] = [[] for _ in items]
        results: list[bool | None] = [None] * len(items)
        if greedy_is_argmax(model):
            for index, (item, sequence, score) in enumerate(zip(items, packed, scores)):
                starts[index] = self.known_start(sequence, score)
                results[index] = self.outcome(starts[index], item.data.answer, tokenizer, stops)
        undecided = [index for index, result in enumerate(results) if result is None]
        self.counts["teacher_forced"] += len(items) - len(undecided)
        decoded = self.decoded_outcomes(model, tokenizer, [items[i] for i in undecided], [starts[i] for i in undecided])
        for index, result in zip(undecided, decoded):
            results[index] = result
        return results

    @staticmethod
    def answer_probability(sequence: PackedSequence, scores: SequenceScores) -> float:
        totals: dict[int, float] = {}
        for index, value in enumerate(scores.target_logprobs.tolist()):
            segment = sequence.target_segments[index]
            is_last = index + 1 == len(sequence.targets) or sequence.target_segments[index + 1] != segment
            if not is_last:  # the prediction after the answer is not part of it
                totals[segment] = totals.get(segment, 0.0) + value
            else:
                totals.setdefault(segment, 0.0)
        return sum(math.exp(total) for total in totals.values())

    def metrics_with_model(self, items, packed, scores, with_model) -> dict[str, float]:
        outcomes = with_model(lambda model, tokenizer: self.outcomes(model, tokenizer, items, packed, scores))
        count = max(1, len(items))
        return {"exact_match": sum(outcomes) / count,
                "answer_prob": sum(self.answer_probability(s, score) for s, score in zip(packed, scores)) / count}

    def metrics(self, items, packed, scores) -> dict[str, float]:
        raise TaskError(f"task {self.name!r} decodes the items its forward cannot decide, so it needs the model: "
                        "score it through colasearch.evaluator.Evaluator")


def generation_from_records(path: Path, records: list[tuple[int, dict]], **options) -> GenerationBase:
    from colasearch.tasks.base import options_from

    settings = options_from(GenerationOptions, options, str(path))
    prompts = []
    for item_id, number, record in identified_records(path, records):
        where = f"{path}:{number}"
        for name in ("prompt", "answer"):
            if name not in record:
                raise TaskError(f"{where}: missing field {name!r}")
            if not isinstance(record[name], (str, int, float)) or isinstance(record[name], bool):
                raise TaskError(f"{where}: {name!r} must be a string")
        prompts.append((item_id, Prompt(str(record["prompt"]), str(record["answer"]))))
    kind = ScoredGenerationTask if settings.teacher_forced and settings.extract is None else GenerationTask
    return kind(path.stem, prompts, settings, source={"path": str(path.resolve()), "digest": file_digest(path)})
