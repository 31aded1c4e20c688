"""What an evaluation returns; the one record that flows from evaluator to objective to searcher."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass(frozen=True)
class EvalResult:
    schedule_key: str
    task: str
    split: str
    quality: dict[str, float]
    ideal_speedup: float
    measured_speedup: float | None = None
    seconds: float = 0.0
    #: A plug-in evaluator's own values; colasearch reads none of them (what it reads has a field below).
    extra: dict = field(default_factory=dict)
    #: How many of the split's items were scored (a fidelity level: its first ``items``); ``None``: not counted
    #: in items (a stand-in evaluator), read as the whole split.
    items: int | None = None
    #: Per metric, each item's value in item order: what racing, the final choice and the confirmation compare
    #: item by item. ``None``: the evaluator reports means only (such a result cannot race).
    per_item: dict[str, list[float]] | None = None
    #: The measured share of routed expert work a schedule's ``experts`` section skips (``colasearch.moe``).
    expert_skip_ratio: float | None = None
    #: Draft/verify decoding of the schedule as a draft for the full model (``colasearch.speculative``): the
    #: per-token acceptance, the share of drafted tokens accepted, and the lookahead it was measured at.
    acceptance_rate: float | None = None
    accepted_fraction: float | None = None
    draft_tokens: int | None = None
    #: A race stopped the schedule on a subset: ``quality`` is its full-split estimate
    #: (``racing.paired_estimate``) and ``subset_quality`` what the subset itself scored.
    estimated: bool = False
    subset_quality: dict[str, float] | None = None

    def __post_init__(self):
        # Results written before these fields kept them in ``extra`` (results files, studies, confirmations):
        # they load into their fields, so an old file reads as it always did.
        moved = {name: value for name, value in self.extra.items() if name in _TYPED}
        if not moved:
            return
        for name, value in moved.items():
            if getattr(self, name) == _DEFAULTS[name]:
                object.__setattr__(self, name, value)
        object.__setattr__(self, "extra", {name: value for name, value in self.extra.items() if name not in _TYPED})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EvalResult:
        return cls(**data)


_TYPED = ("items", "per_item", "expert_skip_ratio", "acceptance_rate", "accepted_fraction", "draft_tokens",
          "estimated", "subset_quality")
_DEFAULTS = {entry.name: entry.default for entry in fields(EvalResult) if entry.name in _TYPED}
