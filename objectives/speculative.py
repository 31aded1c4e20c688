"""The ``speculative`` objective: the expected speedup of a schedule used as a self-speculative draft.

Quality is not at stake (the full model verifies every token); what matters is how often the draft
agrees with the full model and how cheap it is. The acceptance rate comes from
``EvalResult.acceptance_rate`` (fill it with :func:`colasearch.speculative.acceptance_extra`),
the draft's cost from ``EvalResult.ideal_speedup``.
"""

from __future__ import annotations

import math
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from colasearch.errors import ColasearchError
from colasearch.objectives.base import BaseObjective, Direction
from colasearch.results import EvalResult
from colasearch.speculative.acceptance import expected_speedup
from colasearch.target import Target


class SpeculativeConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    draft_tokens: int = Field(default=4, ge=1, le=32)
    min_acceptance: float = Field(default=0.0, ge=0.0, le=1.0)
    target_speedup: float | None = Field(default=None, gt=0.0)


class SpeculativeObjective(BaseObjective):
    """Maximize (1 - a^(k+1)) / (1 - a) / (k * draft_cost + 1), with draft_cost = 1 / ideal speedup.

    ``metric`` and ``direction`` are accepted so that ``make_objective`` can build it like the other
    objectives, and are not used: the output is the full model's, so no quality metric is at stake.
    ``target_speedup``, when given, is a floor on the expected speedup.
    """

    name: ClassVar[str] = "speculative"
    #: A run's ``--target-speedup`` is the draft's ideal speedup (it bounds the search space); the expected
    #: speedup, which this objective maximizes, gets no floor from it.
    run_target_is_floor: ClassVar[bool] = False

    def __init__(self, metric: str | None = None, direction: Direction = "maximize",
                 target_speedup: Target | float | None = None, draft_tokens: int = 4, min_acceptance: float = 0.0):
        target = Target.of(target_speedup)
        try:
            self.config = SpeculativeConfig(draft_tokens=draft_tokens, min_acceptance=min_acceptance,
                                            target_speedup=target.speedup if target is not None else None)
        except ValidationError as error:
            first = error.errors()[0]
            raise ColasearchError(f"speculative objective: {first['loc'][0]}: {first['msg']}") from None
        self.target = target

    @classmethod
    def from_settings(cls, metric: str | None = None, direction: Direction = "maximize", target_speedup=None,
                      lam=None, draft_tokens=None) -> SpeculativeObjective:
        cls.refuse_settings(lam=lam)
        return cls(metric, direction, target_speedup=target_speedup,
                   **({} if draft_tokens is None else {"draft_tokens": draft_tokens}))

    @property
    def directions(self) -> tuple[Direction, ...]:
        return ("maximize",)

    def _acceptance(self, result: EvalResult) -> float:
        value = result.acceptance_rate
        if value is None:
            raise ColasearchError(
                "the speculative objective needs the evaluation's acceptance_rate "
                "(colasearch.speculative.acceptance_extra computes it)"
            )
        return float(value)

    def _draft_tokens(self, result: EvalResult) -> int:
        # The acceptance was measured at some lookahead; the formula must use that same k.
        return int(result.draft_tokens if result.draft_tokens is not None else self.config.draft_tokens)

    def values(self, result: EvalResult) -> tuple[float, ...]:
        acceptance = self._acceptance(result)
        if not result.ideal_speedup or not math.isfinite(result.ideal_speedup) or result.ideal_speedup <= 0:
            return (-math.inf,)
        return (expected_speedup(acceptance, self._draft_tokens(result), 1.0 / result.ideal_speedup),)

    def feasible(self, result: EvalResult) -> bool:
        acceptance = self._acceptance(result)
        if not (math.isfinite(acceptance) and acceptance >= self.config.min_acceptance):
            return False
        return self.target is None or self.target.reaches(self.values(result)[0])
