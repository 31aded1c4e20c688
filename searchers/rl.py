"""DAS-style policy-gradient search: one logit per unit; each round samples units to skip.

Sampling is Plackett-Luce (Gumbel top-k) over the logits, so the most likely units to skip are
sampled first; units are added in that order until the round's cost target is met. The target ramps
from the full model to the user's speed target over the first rounds (a curriculum, as DAS ramps m).
The reward is the objective's quality, against a moving-average baseline. The last evaluation of the
budget goes to the deterministic schedule that skips the most probable units, which is what DAS reports.
"""

from __future__ import annotations

import math

import torch

from colasearch.results import EvalResult
from colasearch.schedule import Schedule
from colasearch.searchers.base import BaseSearcher


class RLSearcher(BaseSearcher):
    name = "rl"

    def __init__(self, space, objective, seed: int = 0, budget: int | None = None, *, learning_rate: float = 0.5,
                 baseline_momentum: float = 0.8, ramp_rounds: int = 4, batch: int = 4, **options):
        super().__init__(space, objective, seed, budget, **options)
        self.units = list(space.units)
        self.logits = torch.zeros(len(self.units), dtype=torch.float64)
        self.learning_rate = learning_rate
        self.baseline_momentum = baseline_momentum
        self.ramp_rounds = ramp_rounds
        self.batch = batch
        self.generator = torch.Generator().manual_seed(seed)
        self.baseline: float | None = None
        self.round = 0
        self._pending: dict[str, list[int]] = {}
        self._round_results: list[tuple[list[int], float]] = []
        self._round_asked = 0
        self._asked_total = 0
        self._final_asked = False
        self._final_told = False

    # -- sampling --------------------------------------------------------------------------------

    def _round_target(self) -> float:
        share = min(1.0, (self.round + 1) / max(self.ramp_rounds, 1))
        return 1.0 + (self.space.target_speedup - 1.0) * share

    def _take_until(self, order: list[int], target: float) -> list[int]:
        chosen: list[int] = []
        for index in order:
            chain = self.space.chain_skipping([self.units[i] for i in chosen])
            if self.space.speedup(chain) >= target * (1 - 1e-9):
                break
            chosen.append(index)
        return chosen

    def _sample(self) -> list[int]:
        uniform = torch.rand(len(self.units), generator=self.generator, dtype=torch.float64).clamp_min(1e-12)
        gumbel = -torch.log(-torch.log(uniform))
        order = torch.argsort(self.logits + gumbel, descending=True).tolist()
        return self._take_until(order, self._round_target())

    def final_schedule(self) -> Schedule:
        order = torch.argsort(self.logits, descending=True, stable=True).tolist()
        return self.space.schedule_skipping([self.units[i] for i in self._take_until(order, self.space.target_speedup)])

    # -- protocol --------------------------------------------------------------------------------

    def _final_due(self) -> bool:
        return self.budget is not None and self._asked_total >= self.budget - 1

    def ask(self, n: int = 1) -> list[Schedule]:
        if self._final_due():
            if self._final_asked or self._pending:
                return []
            self._final_asked = True
            return [self.final_schedule()]
        proposals = []
        while len(proposals) < n and self._round_asked < self.batch and not self._final_due():
            chosen = self._sample()
            schedule = self.space.schedule_skipping([self.units[i] for i in chosen])
            self._round_asked += 1
            self._asked_total += 1
            self._pending.setdefault(schedule.key, []).append(chosen)
            if len(self._pending[schedule.key]) == 1:
                proposals.append(schedule)
        return proposals

    def tell(self, schedule: Schedule, result: EvalResult) -> None:
        if self._final_asked and not self._pending:
            self._final_told = True
            return
        reward = self.quality(result)
        for chosen in self._pending.pop(schedule.key, []):
            self._round_results.append((chosen, reward))
        if not self._pending and self._round_results and len(self._round_results) >= self._round_asked:
            self._update()

    def _update(self) -> None:
        rewards = [reward for _, reward in self._round_results]
        if self.baseline is None:
            self.baseline = sum(rewards) / len(rewards)
        spread = max(math.sqrt(sum((r - self.baseline) ** 2 for r in rewards) / len(rewards)), 1e-6)
        logits = self.logits.clone().requires_grad_(True)
        loss = logits.new_zeros(())
        for chosen, reward in self._round_results:
            loss = loss - (reward - self.baseline) / spread * _plackett_luce_log_prob(logits, chosen)
        (loss / len(self._round_results)).backward()
        with torch.no_grad():
            self.logits -= self.learning_rate * logits.grad
        self.baseline = self.baseline_momentum * self.baseline + (1 - self.baseline_momentum) * sum(rewards) / len(rewards)
        self._round_results = []
        self._round_asked = 0
        self.round += 1

    @property
    def finished(self) -> bool:
        return self._final_told


def _plackett_luce_log_prob(logits: torch.Tensor, chosen: list[int]) -> torch.Tensor:
    """Log-probability of drawing ``chosen`` first, in that order, without replacement."""
    mask = torch.zeros_like(logits, dtype=torch.bool)
    total = logits.new_zeros(())
    for index in chosen:
        available = logits.masked_fill(mask, -math.inf)
        total = total + logits[index] - torch.logsumexp(available, dim=0)
        mask = mask.clone()
        mask[index] = True
    return total
