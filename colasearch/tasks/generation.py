"""Generation scored by exact match: greedy decoding, normalisation or a regex extractor."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from colasearch.errors import TaskError
from colasearch.tasks.base import Item, ModelTask, file_digest


class GenerationOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_new_tokens: int = Field(default=16, ge=1, le=1024)
    chat: bool = False
    extract: str | None = None
    batch_size: int = Field(default=16, ge=1)

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


def normalise(text: str) -> str:
    """Lower case, no punctuation or articles, single spaces (the SQuAD convention)."""
    text = text.lower().translate(_PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


class GenerationTask(ModelTask):
    metric_directions = {"exact_match": "maximize"}
    primary_metric = "exact_match"

    def __init__(self, name: str, prompts: list[tuple[str, Prompt]], options: GenerationOptions | None = None,
                 source: dict | None = None):
        self.name = name
        self._items = [Item(item_id, prompt) for item_id, prompt in prompts]
        self.options = options or GenerationOptions()
        self._source = source or {}

    def items(self) -> list[Item]:
        return self._items

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "generation", **self.options.model_dump(), **self._source}

    def prompt_text(self, tokenizer, prompt: str) -> str:
        if self.options.chat and getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                 add_generation_prompt=True)
        return prompt

    def extract(self, completion: str) -> str:
        if self.options.extract is None:
            # Without an extractor the answer is the first line of the completion.
            return completion.strip().split("\n")[0]
        match = re.search(self.options.extract, completion)
        if match is None:
            return ""
        return match.group(1) if match.groups() else match.group(0)

    @torch.no_grad()
    def completions(self, model, tokenizer, items: list[Item]) -> list[str]:
        device = next(model.parameters()).device
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
        outputs = []
        for start in range(0, len(items), self.options.batch_size):
            batch = items[start:start + self.options.batch_size]
            encoded = [tokenizer(self.prompt_text(tokenizer, item.data.prompt)).input_ids for item in batch]
            width = max(len(tokens) for tokens in encoded)
            # Left padding keeps every prompt's last token in the final column.
            input_ids = torch.tensor([[pad] * (width - len(t)) + t for t in encoded], device=device)
            mask = torch.tensor([[0] * (width - len(t)) + [1] * len(t) for t in encoded], device=device)
            generated = model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=self.options.max_new_tokens,
                                       do_sample=False, pad_token_id=pad)
            outputs.extend(tokenizer.decode(row[width:], skip_special_tokens=True) for row in generated)
        return outputs

    def run(self, model, tokenizer, items: list[Item]) -> dict[str, float]:
        completions = self.completions(model, tokenizer, items)
        hits = sum(normalise(self.extract(text)) == normalise(item.data.answer) for text, item in zip(completions, items))
        return {"exact_match": hits / max(1, len(items))}


def generation_from_records(path: Path, records: list[tuple[int, dict]], **options) -> GenerationTask:
    from colasearch.tasks.multiple_choice import options_from

    settings = options_from(GenerationOptions, options, str(path))
    prompts, seen = [], set()
    for number, record in records:
        where = f"{path}:{number}"
        for name in ("prompt", "answer"):
            if name not in record:
                raise TaskError(f"{where}: missing field {name!r}")
            if not isinstance(record[name], (str, int, float)) or isinstance(record[name], bool):
                raise TaskError(f"{where}: {name!r} must be a string")
        item_id = str(record.get("id", f"line{number}"))
        if item_id in seen:
            raise TaskError(f"{where}: duplicate item id {item_id!r}")
        seen.add(item_id)
        prompts.append((item_id, Prompt(str(record["prompt"]), str(record["answer"]))))
    return GenerationTask(path.stem, prompts, settings, source={"path": str(path.resolve()), "digest": file_digest(path)})
