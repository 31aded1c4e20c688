"""What an evaluation returns; the one record that flows from evaluator to objective to searcher."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class EvalResult:
    schedule_key: str
    task: str
    split: str
    quality: dict[str, float]
    ideal_speedup: float
    measured_speedup: float | None = None
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EvalResult:
        return cls(**data)
