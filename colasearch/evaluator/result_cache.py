"""Evaluation results persisted as append-only JSON lines, so no schedule is evaluated twice.

A crash can at worst leave a torn last line; it is skipped on load and the result recomputed. A key names
the model (weights, dtype, device kind), the task's content and the split (``Evaluator.result_key``), so a
line written under another model or an older key format is never read back: it is only a miss.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from colasearch.results import EvalResult


class ResultCache:
    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else None
        self._results: dict[str, EvalResult] = {}
        self._torn_tail = False
        if self.path is not None and self.path.exists():
            self._load()

    def _load(self) -> None:
        text = self.path.read_text()
        self._torn_tail = bool(text) and not text.endswith("\n")
        for line in text.splitlines():
            try:
                record = json.loads(line)
                self._results[record["key"]] = EvalResult.from_dict(record["result"])
            except (json.JSONDecodeError, KeyError, TypeError):
                continue

    def __len__(self) -> int:
        return len(self._results)

    def get(self, key: str) -> EvalResult | None:
        return self._results.get(key)

    def put(self, key: str, result: EvalResult) -> None:
        self._results[key] = result
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"key": key, "result": result.to_dict()}, sort_keys=True) + "\n"
        if self._torn_tail:
            line = "\n" + line
            self._torn_tail = False
        # One write of a whole line in append mode; a torn last line is skipped on load.
        with self.path.open("a") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())


def clear_results(path: Path | None) -> None:
    """Start ``path`` empty (``run --overwrite``): a run started afresh must not read back the replaced run's
    results, which may have come from another model, or from code that computed them differently."""
    if path is not None:
        Path(path).unlink(missing_ok=True)
