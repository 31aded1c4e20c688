"""A character-level tokenizer for the tiny random test models (vocabulary 96): offline, no files."""

from __future__ import annotations

from dataclasses import dataclass

FIRST_ID = 3  # 0 pad, 1 bos, 2 eos, as in colasearch.testing's tiny configs


@dataclass
class Encoding:
    input_ids: list[int]


class CharTokenizer:
    pad_token_id = 0
    bos_token_id = 1
    eos_token_id = 2
    chat_template = None

    def __init__(self, vocab_size: int = 96):
        self.span = vocab_size - FIRST_ID

    def __call__(self, text: str, add_special_tokens: bool = True) -> Encoding:
        return Encoding([FIRST_ID + (ord(char) - 32) % self.span for char in text])

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return "".join(chr(int(token) - FIRST_ID + 32) for token in ids if int(token) >= FIRST_ID)
