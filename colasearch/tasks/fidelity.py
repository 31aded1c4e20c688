"""Task-agnostic fidelity: KL divergence and top-1 agreement of the schedule against the full model.

Needs no labels: any text works (a plain file, or the text fields of a jsonl file).
"""

from __future__ import annotations

from pathlib import Path

from colasearch.errors import TaskError
from colasearch.tasks.base import PackedSequence, jsonl_records
from colasearch.tasks.perplexity import PerplexityTask, WindowOptions, read_text_file

_TEXT_FIELDS = ("text", "prompt", "context")


class FidelityTask(PerplexityTask):
    primary_metric = "top1_agreement"
    metric_directions = {"kl": "minimize", "top1_agreement": "maximize"}
    needs_reference = True

    def __init__(self, path: Path, text: str, options: WindowOptions):
        super().__init__(path, text, options)
        self.name = f"fidelity-{path.stem}"

    def pack(self, items, tokenizer) -> list[PackedSequence]:
        # Every position is compared with the full model, the first one included.
        sequences = super().pack(items, tokenizer)
        for sequence in sequences:
            sequence.predict_at = list(range(len(sequence.tokens) - 1))
            sequence.targets = sequence.tokens[1:]
        return sequences

    def metrics(self, items, packed, scores) -> dict[str, float]:
        count = sum(len(score.kl) for score in scores)
        kl = sum(float(score.kl.sum()) for score in scores) / max(1, count)
        agree = sum(int((score.argmax == score.reference_argmax).sum()) for score in scores) / max(1, count)
        return {"kl": kl, "top1_agreement": agree}

    def item_values(self, items, packed, scores) -> dict[str, list[float]]:
        return {"kl": [float(score.kl.mean()) if len(score.kl) else 0.0 for score in scores],
                "top1_agreement": [float((score.argmax == score.reference_argmax).float().mean())
                                   if len(score.argmax) else 1.0 for score in scores]}


def _text_of(path: Path, text: str) -> str:
    if path.suffix != ".jsonl":
        return text
    pieces = []
    for number, record in jsonl_records(path, text):
        field = next((name for name in _TEXT_FIELDS if isinstance(record.get(name), str)), None)
        if field is None:
            raise TaskError(f"{path}:{number}: no text field (one of {', '.join(_TEXT_FIELDS)})")
        pieces.append(record[field])
    return "\n\n".join(pieces)


def load_fidelity_task(argument: str, **options) -> FidelityTask:
    from colasearch.tasks.base import options_from

    path, text = read_text_file(argument)
    return FidelityTask(path, _text_of(path, text), options_from(WindowOptions, options, str(path)))
