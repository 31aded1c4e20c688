"""Perplexity of a plain text file, in windows; each window is one item.

Windows are cut with a gap of unscored, unseen text between neighbours. Items land in the search and
held-out splits at random, so without it a held-out window could be the very continuation of a search
window (the next sentence of one paragraph): the search would have fitted the text the held-out split
is meant to judge afresh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from colasearch.errors import TaskError
from colasearch.tasks.base import Item, PackedSequence, ScoringTask, file_digest, read_text_file


class WindowOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    window: int = Field(default=128, ge=2, le=8192)
    # Scored tokens at the end of each window (the tokens before them are its context); all but the first
    # by default. Windows never overlap, so the context of one is never the scored text of another.
    stride: int | None = Field(default=None, ge=1)
    # Tokens skipped between one window's end and the next one's start (see the module's docstring).
    gap: int = Field(default=32, ge=1)
    max_windows: int = Field(default=2000, ge=1)

    @model_validator(mode="after")
    def _stride_fits(self):
        if self.stride is not None and self.stride > self.window:
            raise ValueError(f"stride {self.stride} is larger than window {self.window}")
        return self

    @property
    def step(self) -> int:
        """Tokens from one window's start to the next one's."""
        return self.window + self.gap


@dataclass(frozen=True)
class Window:
    """Token range [start, end) of the text; the last ``scored`` tokens are scored."""

    start: int
    end: int
    scored: int


class TextWindows:
    """Tokenizes the text lazily, once per tokenizer, and cuts it into windows."""

    def __init__(self, path: Path, text: str, options: WindowOptions):
        self.path, self.text, self.options = path, text, options
        self._tokens: list[int] | None = None
        self._tokenizer_id = None

    def tokens(self, tokenizer) -> list[int]:
        if self._tokens is None or self._tokenizer_id != id(tokenizer):
            # Only as much text as the windows can use: about 8 characters per token is generous.
            limit = self.options.max_windows * self.options.step * 8
            self._tokens = tokenizer(self.text[:limit], add_special_tokens=False).input_ids
            self._tokenizer_id = id(tokenizer)
            if len(self._tokens) < 2:
                raise TaskError(f"{self.path}: text is too short to score")
        return self._tokens

    def window_items(self) -> list[Item]:
        """Windows by index; their token ranges are known only once tokenized, so items carry the index."""
        return [Item(f"w{index}", index) for index in range(self.options.max_windows)]

    def window(self, index: int, total_tokens: int) -> Window | None:
        """The ``index``-th window, or None past the text's end (only a first window may be short)."""
        window = self.options.window
        start = index * self.options.step
        if index > 0 and start + window > total_tokens:
            return None
        end = min(start + window, total_tokens)
        scored = min(self.options.stride or window, end - start - 1)
        return Window(start, end, scored)


def window_sequence(tokens: list[int], window: Window) -> PackedSequence:
    chunk = tokens[window.start:window.end]
    first = len(chunk) - 1 - window.scored
    predict_at = list(range(first, len(chunk) - 1))
    return PackedSequence(chunk, list(range(len(chunk))), [0] * len(chunk), predict_at, [chunk[i + 1] for i in predict_at])


class PerplexityTask(ScoringTask):
    primary_metric = "perplexity"
    metric_directions = {"perplexity": "minimize", "nll": "minimize"}

    def __init__(self, path: Path, text: str, options: WindowOptions):
        self.name = path.stem
        self.windows = TextWindows(path, text, options)
        self._source = {"path": str(path.resolve()), "digest": file_digest(path), **options.model_dump()}
        self._items: list[Item] | None = None
        self._tokenizer = None

    def items(self) -> list[Item]:
        # The number of windows depends on the tokenizer; items beyond the text pack to nothing.
        if self._items is None:
            self._items = self.windows.window_items()
        return self._items

    def bind(self, tokenizer) -> None:
        """Drop the windows the text cannot fill, so splits only hold real windows."""
        total = len(self.windows.tokens(tokenizer))
        self._items = [item for item in self.windows.window_items() if self.windows.window(item.data, total) is not None]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": type(self).__name__, **self._source}

    def pack(self, items, tokenizer) -> list[PackedSequence]:
        tokens = self.windows.tokens(tokenizer)
        return [window_sequence(tokens, self.windows.window(item.data, len(tokens))) for item in items]

    def metrics(self, items, packed, scores) -> dict[str, float]:
        total = sum(float(score.target_logprobs.sum()) for score in scores)
        count = sum(len(sequence.targets) for sequence in packed)
        nll = -total / max(1, count)
        return {"perplexity": math.exp(min(nll, 700.0)), "nll": nll}

    def item_values(self, items, packed, scores) -> dict[str, list[float]]:
        """Per window: its mean token NLL, under both names. Perplexity is the exp of the token-weighted
        mean NLL, so per item its NLL is the statistic that ranks schedules the same way."""
        nll = [-float(score.target_logprobs.mean()) if len(score.target_logprobs) else 0.0 for score in scores]
        return {"nll": nll, "perplexity": nll}


def load_text_task(argument: str, **options) -> PerplexityTask:
    from colasearch.tasks.base import options_from

    path, text = read_text_file(argument)
    return PerplexityTask(path, text, options_from(WindowOptions, options, str(path)))
